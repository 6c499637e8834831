// pair_style xtalnn: an xtalnn neural-network potential (one TorchScript model file) in LAMMPS.
//
//   pair_style xtalnn [extrapolation_every N] [extrapolation_tolerance X]
//   pair_coeff * * model.pt Ti O        (one model element per atom type, in type order)
//
// Units metal (eV, Å), newton pair on. Each step: full neighbour list → edges (centre i local,
// neighbour j local or ghost, edge_vec = x_j − x_i, |edge_vec| < model cutoff) → atomic energies and
// g = ∂E/∂edge_vec from the model (xtalnn_model.h) → f_i += g, f_j −= g (ghost forces go back to
// their owners by LAMMPS's reverse communication), virial W = −Σ edge_vec ⊗ g, shared half and half
// between i and j per atom. Every N steps the atoms whose descriptors leave the training range are
// counted over all ranks and reported in a warning.
#pragma once

#include "pair.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace xtalnn_lammps {
class Model;
}

namespace LAMMPS_NS {

class PairXtalnn : public Pair {
 public:
  explicit PairXtalnn(class LAMMPS *lmp);
  ~PairXtalnn() override;

  void settings(int narg, char **arg) override;
  void coeff(int narg, char **arg) override;
  void init_style() override;
  double init_one(int i, int j) override;
  void compute(int eflag, int vflag) override;

 private:
  std::unique_ptr<xtalnn_lammps::Model> model_;
  std::string model_path_;
  std::vector<int64_t> type_species_;  // [ntypes + 1]: model element index of each atom type

  bigint check_every_ = 100;  // steps between extrapolation checks (0: never)
  double tolerance_ = 1e-6;    // relative slack on the training descriptor range
  bigint last_check_ = -1;

  // per-step buffers, kept between steps
  std::vector<int64_t> species_, edge_index_;  // edge_index_ begins with [2, n_edges_] (centres, neighbours)
  std::vector<double> edge_vec_, edge_grad_, energy_;     // edge_vec_: [n_edges_, 3] (Å)
  int64_t n_edges_ = 0;

  void allocate();
  void build_edges();
  void report_extrapolation(int64_t n_outside_here);
};

}  // namespace LAMMPS_NS
