// The torch side of pair_style xtalnn: loads the op library and an xtalnn model file and evaluates
// atomic energies and ∂E/∂edge_vec for one edge list. No LAMMPS and no torch types in this header,
// so the two code bases (which both bundle {fmt}) never meet in one translation unit.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace xtalnn_lammps {

// Raised with a message meant for the user (LAMMPS turns it into an ERROR line).
struct ModelError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One edge list of local centres and their neighbours (local or ghost atoms).
struct EdgeList {
  int64_t n_all = 0;               // local + ghost atoms
  int64_t n_local = 0;             // centres are 0 … n_local − 1
  const int64_t *species = nullptr;  // [n_all] index into Model::elements()
  const int64_t *edge_index = nullptr;  // [2, E]: centres, then neighbours
  const double *edge_vec = nullptr;     // [E, 3] x_j − x_i, Å
  int64_t n_edges = 0;
};

class Model {
 public:
  // Loads `ops_library` (libxtalnn_ops.so) into the process once, then the TorchScript model file.
  // An atom extrapolates when a descriptor leaves the training range widened by `tolerance` × (max − min)
  // (the model file's `extrapolating` method, which the ASE calculator calls too). Throws ModelError naming
  // the file and the problem.
  Model(const std::string &model_path, const std::string &ops_library, double tolerance);
  ~Model();

  const std::vector<std::string> &elements() const { return elements_; }
  double cutoff() const { return cutoff_; }                  // Å
  int64_t n_features() const { return n_features_; }
  int64_t n_members() const { return n_members_; }           // networks of a committee (1: a single model)
  std::string summary() const;                                // one line for the log

  // Atomic energies (eV) of the n_local centres into `energy`, ∂E/∂edge_vec (eV/Å) into `edge_grad`
  // [E, 3], E = Σ energy (for a committee: the members' mean). With `count_extrapolating`, also returns
  // how many centres have descriptors outside the training range; otherwise returns 0.
  // `members` (committees only): each member's atomic energies [M, n_local] (eV) and ∂E_m/∂edge_vec
  // [M, E, 3] (eV/Å) as well, from the one descriptor pass (one backward pass per member; the mean's
  // gradient is their average).
  struct Members {
    double *energy = nullptr;     // [M, n_local]
    double *edge_grad = nullptr;  // [M, E, 3]
  };
  int64_t compute(const EdgeList &edges, double *energy, double *edge_grad, bool count_extrapolating,
                  const Members *members = nullptr);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::vector<std::string> elements_;
  std::string kind_;
  double cutoff_ = 0;
  int64_t n_features_ = 0;
  int64_t n_members_ = 1;
};

}  // namespace xtalnn_lammps
