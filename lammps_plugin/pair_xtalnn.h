// pair_style xtalnn: an xtalnn neural-network potential (one TorchScript model file) in LAMMPS.
//
//   pair_style xtalnn [extrapolation_every N] [extrapolation_tolerance X] [deviation_every N]
//                     [deviation_threshold X]
//   pair_coeff * * model.pt Ti O        (one model element per atom type, in type order)
//   pair_style hybrid/overlay xtalnn zbl 1.0 2.0
//   pair_coeff * * xtalnn model.pt Ti O NULL   (NULL: a type the model does not cover; it is neither a
//                                               centre nor a neighbour of the model's atoms)
//
// Units metal (eV, Å), newton pair on. Each step: full neighbour list → edges (centre i local,
// neighbour j local or ghost, edge_vec = x_j − x_i, |edge_vec| < model cutoff) → atomic energies and
// g = ∂E/∂edge_vec from the model (xtalnn_model.h) → f_i += g, f_j −= g (ghost forces go back to
// their owners by LAMMPS's reverse communication), virial W = −Σ edge_vec ⊗ g, shared half and half
// between i and j per atom. Every N steps the atoms whose descriptors leave the training range are
// counted over all ranks and reported in a warning.
//
// Committee model files (`xtalnn train --committee M`): energies and forces are the members' mean.
// Every `deviation_every` steps (default 100; 0: never) and on the steps `fix pair` asks for it, the
// model deviation is computed as DP-GEN defines it: each member's forces (one more backward pass each,
// ghost contributions summed onto their owners by reverse communication), the per-atom force
// deviation ε_i = sqrt(mean_m |F_m,i − F̄_i|²) (eV/Å) and the committee's energy standard deviation
// (eV). Where to read them:
//   fix ID all pair N xtalnn force_deviation 1     per-atom ε_i every N steps (f_ID in dumps, computes)
//   compute ID all pair xtalnn                     c_ID[1] = max_i ε_i (eV/Å), c_ID[2] = σ_E (eV),
//                                                  as of the last step they were computed
// With `deviation_threshold X` (eV/Å) a step whose max_i ε_i exceeds X is reported in a warning.
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
  void *extract(const char *name, int &dim) override;
  void *extract_peratom(const char *name, int &ncol) override;
  int pack_reverse_comm(int n, int first, double *buf) override;
  void unpack_reverse_comm(int n, int *list, double *buf) override;

 private:
  std::unique_ptr<xtalnn_lammps::Model> model_;
  std::string model_path_;
  std::vector<int64_t> type_species_;  // [ntypes + 1]: model element index of each atom type (-1: NULL)
  bool has_null_ = false;              // some type is NULL: the model sees a compacted copy of the atoms

  bigint check_every_ = 100;  // steps between extrapolation checks (0: never)
  double tolerance_ = 1e-6;    // relative slack on the training descriptor range
  bigint last_check_ = -1;

  // committee model deviation
  int64_t n_members_ = 1;
  bigint deviation_every_ = 100;   // steps between model-deviation evaluations (0: only when fix pair asks)
  double deviation_threshold_ = 0;  // eV/Å; warn above it (0: never)
  bigint last_deviation_ = -1;
  int force_deviation_flag_ = 0;    // set by `fix pair … force_deviation 1` on the steps it reads
  int nmax_ = 0;
  double **member_force_ = nullptr;  // [nmax][3M]: each member's forces (eV/Å), ghosts included until reverse comm
  double *force_deviation_ = nullptr;  // [nmax]: ε_i of local atoms (eV/Å)
  std::vector<double> member_energy_, member_grad_;  // [M, nlocal] (eV), [M, E, 3] (eV/Å)

  // per-step buffers, kept between steps
  std::vector<int64_t> species_, edge_index_;  // edge_index_ begins with [2, n_edges_] (centres, neighbours)
  std::vector<double> edge_vec_, edge_grad_, energy_;     // edge_vec_: [n_edges_, 3] (Å)
  int64_t n_edges_ = 0;
  // with NULL types: the model's atoms (covered locals first, then covered ghosts) in its own numbering
  std::vector<int64_t> model_species_, model_edge_index_, model_atom_;  // model_atom_: model index → LAMMPS index
  int64_t model_local_ = 0;  // covered local atoms (the model's centres)

  void allocate();
  void build_edges();
  void compact_atoms(int nlocal, int nall);
  void report_extrapolation(int64_t n_outside_here);
  void model_deviation(int nlocal, int64_t n_model);
};

}  // namespace LAMMPS_NS
