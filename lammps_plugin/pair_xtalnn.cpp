// pair_style xtalnn (see pair_xtalnn.h). LAMMPS headers only: the torch side is in xtalnn_model.cpp.
#include "pair_xtalnn.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "atom.h"
#include "comm.h"
#include "error.h"
#include "force.h"
#include "memory.h"
#include "neigh_list.h"
#include "neighbor.h"
#include "update.h"
#include "utils.h"
#include "xtalnn_model.h"

using namespace LAMMPS_NS;

PairXtalnn::PairXtalnn(LAMMPS *lmp) : Pair(lmp) {
  single_enable = 0;
  restartinfo = 0;
  one_coeff = 1;
  manybody_flag = 1;
  no_virial_fdotr_compute = 1;  // the virial is summed over edges (also per atom)
  centroidstressflag = CENTROID_NOTAVAIL;
  nextra = 2;  // `compute pair xtalnn`: max force deviation (eV/Å), energy standard deviation (eV)
  pvector = new double[nextra]();
}

PairXtalnn::~PairXtalnn() {
  if (allocated) {
    memory->destroy(setflag);
    memory->destroy(cutsq);
  }
  memory->destroy(member_force_);
  memory->destroy(force_deviation_);
  delete[] pvector;
}

void PairXtalnn::allocate() {
  allocated = 1;
  const int n = atom->ntypes;
  memory->create(setflag, n + 1, n + 1, "pair:setflag");
  memory->create(cutsq, n + 1, n + 1, "pair:cutsq");
  for (int i = 1; i <= n; ++i)
    for (int j = 1; j <= n; ++j) setflag[i][j] = 0;
}

void PairXtalnn::settings(int narg, char **arg) {
  for (int k = 0; k < narg; k += 2) {
    const std::string key = arg[k];
    if (k + 1 >= narg) error->all(FLERR, "pair_style xtalnn: keyword {} needs a value", key);
    if (key == "extrapolation_every") {
      check_every_ = utils::bnumeric(FLERR, arg[k + 1], false, lmp);
      if (check_every_ < 0) error->all(FLERR, "pair_style xtalnn: extrapolation_every must be >= 0 (0: never)");
    } else if (key == "extrapolation_tolerance") {
      tolerance_ = utils::numeric(FLERR, arg[k + 1], false, lmp);
      if (!(tolerance_ >= 0)) error->all(FLERR, "pair_style xtalnn: extrapolation_tolerance must be >= 0");
    } else if (key == "deviation_every") {
      deviation_every_ = utils::bnumeric(FLERR, arg[k + 1], false, lmp);
      if (deviation_every_ < 0) error->all(FLERR, "pair_style xtalnn: deviation_every must be >= 0 (0: never)");
    } else if (key == "deviation_threshold") {
      deviation_threshold_ = utils::numeric(FLERR, arg[k + 1], false, lmp);
      if (!(deviation_threshold_ >= 0))
        error->all(FLERR, "pair_style xtalnn: deviation_threshold must be >= 0 eV/Angstrom (0: no warning)");
    } else {
      error->all(FLERR, "pair_style xtalnn: unknown keyword {} (known: extrapolation_every N, "
                 "extrapolation_tolerance X, deviation_every N, deviation_threshold X)", key);
    }
  }
}

void PairXtalnn::coeff(int narg, char **arg) {
  const int ntypes = atom->ntypes;
  if (narg < 3)  // LAMMPS itself insists on "* *" (one_coeff)
    error->all(FLERR, "pair_coeff for pair_style xtalnn must be: pair_coeff * * model.pt element1 element2 ... "
               "(one model element or NULL per atom type)");
  if (narg - 3 != ntypes)
    error->all(FLERR, "pair_coeff * * {}: got {} element(s) for {} atom type(s); give one model element per "
               "atom type, in type order", arg[2], narg - 3, ntypes);
  if (!allocated) allocate();

  model_path_ = arg[2];
  const char *ops = std::getenv("XTALNN_OPS_LIBRARY");
  try {
    model_ = std::make_unique<xtalnn_lammps::Model>(model_path_, ops && *ops ? ops : XTALNN_OPS_LIBRARY_DEFAULT,
                                                    tolerance_);
  } catch (const std::exception &err) {
    error->all(FLERR, "pair_style xtalnn: {}", err.what());
  }
  const auto &elements = model_->elements();
  type_species_.assign(ntypes + 1, -1);
  has_null_ = false;
  for (int t = 1; t <= ntypes; ++t) {
    const std::string symbol = arg[2 + t];
    if (symbol == "NULL") {  // left to the other styles of a pair_style hybrid
      has_null_ = true;
      continue;
    }
    for (size_t k = 0; k < elements.size(); ++k)
      if (elements[k] == symbol) type_species_[t] = static_cast<int64_t>(k);
    if (type_species_[t] < 0)
      error->all(FLERR, "pair_coeff: element {} (atom type {}) is not in model file {}, whose elements are {}",
                 symbol, t, model_path_, utils::join_words(elements, " "));
  }
  for (int i = 1; i <= ntypes; ++i)
    for (int j = i; j <= ntypes; ++j) setflag[i][j] = type_species_[i] >= 0 && type_species_[j] >= 0;
  n_members_ = model_->n_members();
  comm_reverse = n_members_ > 1 ? static_cast<int>(3 * n_members_) : 0;  // members' forces on ghosts
  if (comm->me == 0) utils::logmesg(lmp, "pair xtalnn: {}: {}\n", model_path_, model_->summary());
}

void PairXtalnn::init_style() {
  if (force->newton_pair == 0)
    error->all(FLERR, "pair_style xtalnn requires newton pair on (forces on ghost atoms are sent back to "
               "their owners); remove `newton off` or use `newton on`");
  if (strcmp(update->unit_style, "metal") != 0)
    error->all(FLERR, "pair_style xtalnn requires units metal (the model is in eV and Angstrom), not units {}",
               update->unit_style);
  if (!model_) error->all(FLERR, "pair_style xtalnn: no model file; use pair_coeff * * model.pt elements...");
  neighbor->add_request(this, NeighConst::REQ_FULL);
}

double PairXtalnn::init_one(int i, int j) {
  if (setflag[i][j] == 0) error->all(FLERR, "pair_style xtalnn: pair_coeff * * model.pt … was not given");
  return model_->cutoff();
}

void PairXtalnn::build_edges() {
  double **x = atom->x;
  const int *type = atom->type;
  const int nall = atom->nlocal + atom->nghost;
  species_.resize(nall);
  for (int i = 0; i < nall; ++i) species_[i] = type_species_[type[i]];

  // Sized for every listed pair (the list includes the skin) and written by index: centres from 0,
  // neighbours from `capacity`, then moved down next to the centres, so edge_index_ starts with the
  // [2, E] array the model takes.
  const double rc = model_->cutoff(), rc2 = rc * rc;
  int64_t capacity = 0;
  for (int ii = 0; ii < list->inum; ++ii) capacity += list->numneigh[list->ilist[ii]];
  edge_index_.resize(2 * capacity);
  edge_vec_.resize(3 * capacity);
  int64_t *centre = edge_index_.data(), *neighbour = centre + capacity;
  double *vec = edge_vec_.data();
  int64_t E = 0;
  for (int ii = 0; ii < list->inum; ++ii) {
    const int i = list->ilist[ii];
    if (species_[i] < 0) continue;  // NULL type
    const int *jlist = list->firstneigh[i];
    const double xi = x[i][0], yi = x[i][1], zi = x[i][2];
    for (int jj = 0; jj < list->numneigh[i]; ++jj) {
      const int j = jlist[jj] & NEIGHMASK;
      if (species_[j] < 0) continue;
      const double dx = x[j][0] - xi, dy = x[j][1] - yi, dz = x[j][2] - zi;
      if (dx * dx + dy * dy + dz * dz >= rc2) continue;
      centre[E] = i;
      neighbour[E] = j;
      vec[3 * E] = dx; vec[3 * E + 1] = dy; vec[3 * E + 2] = dz;
      ++E;
    }
  }
  std::memmove(centre + E, neighbour, sizeof(int64_t) * E);  // E <= capacity: the ranges may overlap
  n_edges_ = E;
}

void PairXtalnn::compact_atoms(int nlocal, int nall) {
  // The model numbers its atoms 0 … n_all − 1 with its centres first; atoms of NULL types are left out.
  std::vector<int64_t> index(nall, -1);
  model_atom_.clear();
  model_species_.clear();
  for (int pass = 0; pass < 2; ++pass)  // covered locals, then covered ghosts
    for (int i = pass ? nlocal : 0; i < (pass ? nall : nlocal); ++i)
      if (species_[i] >= 0) {
        index[i] = static_cast<int64_t>(model_atom_.size());
        model_atom_.push_back(i);
        model_species_.push_back(species_[i]);
      }
  model_local_ = 0;
  while (model_local_ < static_cast<int64_t>(model_atom_.size()) && model_atom_[model_local_] < nlocal) ++model_local_;
  model_edge_index_.resize(2 * n_edges_);
  for (int64_t k = 0; k < 2 * n_edges_; ++k) model_edge_index_[k] = index[edge_index_[k]];
}

void PairXtalnn::compute(int eflag, int vflag) {
  ev_init(eflag, vflag);
  build_edges();
  const int nlocal = atom->nlocal;
  const int64_t E = n_edges_;
  if (has_null_) compact_atoms(nlocal, nlocal + atom->nghost);
  const int64_t n_model = has_null_ ? model_local_ : nlocal;  // the model's centres
  energy_.resize(n_model);
  edge_grad_.resize(3 * E);
  const bool check = check_every_ > 0 && update->ntimestep % check_every_ == 0 && update->ntimestep != last_check_;
  if (force_deviation_flag_ && n_members_ < 2)
    error->all(FLERR, "pair_style xtalnn: force_deviation needs a committee model file (xtalnn train --committee N); "
               "{} has one network", model_path_);
  const bool deviation =
      n_members_ > 1 && (force_deviation_flag_ || (deviation_every_ > 0 && update->ntimestep % deviation_every_ == 0));
  xtalnn_lammps::Model::Members members;
  if (deviation) {
    member_energy_.resize(n_members_ * n_model);
    member_grad_.resize(n_members_ * 3 * E);
    members.energy = member_energy_.data();
    members.edge_grad = member_grad_.data();
  }

  xtalnn_lammps::EdgeList edges;
  edges.n_all = static_cast<int64_t>(has_null_ ? model_species_.size() : species_.size());
  edges.n_local = n_model;
  edges.species = has_null_ ? model_species_.data() : species_.data();
  edges.edge_index = has_null_ ? model_edge_index_.data() : edge_index_.data();
  edges.edge_vec = edge_vec_.data();
  edges.n_edges = E;
  int64_t outside = 0;
  try {
    outside = model_->compute(edges, energy_.data(), edge_grad_.data(), check, deviation ? &members : nullptr);
  } catch (const std::exception &err) {
    error->one(FLERR, "pair_style xtalnn: {}", err.what());
  }

  if (eflag_global)
    for (int64_t k = 0; k < n_model; ++k) eng_vdwl += energy_[k];
  if (eflag_atom)
    for (int64_t k = 0; k < n_model; ++k) eatom[has_null_ ? model_atom_[k] : k] += energy_[k];

  double **f = atom->f;
  for (int64_t e = 0; e < E; ++e) {
    const int i = static_cast<int>(edge_index_[e]), j = static_cast<int>(edge_index_[E + e]);
    const double *g = &edge_grad_[3 * e];
    f[i][0] += g[0]; f[i][1] += g[1]; f[i][2] += g[2];
    f[j][0] -= g[0]; f[j][1] -= g[1]; f[j][2] -= g[2];
    if (vflag_either) {
      const double *d = &edge_vec_[3 * e];
      const double v[6] = {-d[0] * g[0], -d[1] * g[1], -d[2] * g[2], -d[0] * g[1], -d[0] * g[2], -d[1] * g[2]};
      if (vflag_global)
        for (int k = 0; k < 6; ++k) virial[k] += v[k];
      if (vflag_atom)
        for (int k = 0; k < 6; ++k) {
          vatom[i][k] += 0.5 * v[k];
          vatom[j][k] += 0.5 * v[k];
        }
    }
  }
  if (check) report_extrapolation(outside);
  if (deviation) model_deviation(nlocal, n_model);
}

void PairXtalnn::model_deviation(int nlocal, int64_t n_model) {
  const int M = static_cast<int>(n_members_), nall = nlocal + atom->nghost;
  const int64_t E = n_edges_;
  if (atom->nmax > nmax_) {
    nmax_ = atom->nmax;
    memory->destroy(member_force_);
    memory->destroy(force_deviation_);
    memory->create(member_force_, nmax_, 3 * M, "pair:member_force");
    memory->create(force_deviation_, nmax_, "pair:force_deviation");
  }
  for (int i = 0; i < nall; ++i)
    for (int k = 0; k < 3 * M; ++k) member_force_[i][k] = 0.0;
  for (int m = 0; m < M; ++m)  // as the forces: f_i += g, f_j −= g for every edge i → j
    for (int64_t e = 0; e < E; ++e) {
      const int i = static_cast<int>(edge_index_[e]), j = static_cast<int>(edge_index_[E + e]);
      const double *g = &member_grad_[(m * E + e) * 3];
      for (int c = 0; c < 3; ++c) {
        member_force_[i][3 * m + c] += g[c];
        member_force_[j][3 * m + c] -= g[c];
      }
    }
  comm->reverse_comm(this);  // ghosts' member forces onto their owners
  double max_here = 0.0;
  for (int i = 0; i < nlocal; ++i) {
    double mean[3] = {0, 0, 0}, spread = 0.0;
    for (int m = 0; m < M; ++m)
      for (int c = 0; c < 3; ++c) mean[c] += member_force_[i][3 * m + c] / M;
    for (int m = 0; m < M; ++m)
      for (int c = 0; c < 3; ++c) {
        const double d = member_force_[i][3 * m + c] - mean[c];
        spread += d * d;
      }
    force_deviation_[i] = std::sqrt(spread / M);
    max_here = std::max(max_here, force_deviation_[i]);
  }
  std::vector<double> energy_here(M, 0.0), energy(M, 0.0);
  for (int m = 0; m < M; ++m)
    for (int64_t k = 0; k < n_model; ++k) energy_here[m] += member_energy_[m * n_model + k];
  MPI_Allreduce(energy_here.data(), energy.data(), M, MPI_DOUBLE, MPI_SUM, world);
  double max_deviation = 0.0;
  MPI_Allreduce(&max_here, &max_deviation, 1, MPI_DOUBLE, MPI_MAX, world);
  double mean_energy = 0.0, energy_var = 0.0;
  for (double x : energy) mean_energy += x / M;
  for (double x : energy) energy_var += (x - mean_energy) * (x - mean_energy) / M;
  // compute pair sums pvector over the ranks: the global values live on rank 0
  pvector[0] = comm->me == 0 ? max_deviation : 0.0;
  pvector[1] = comm->me == 0 ? std::sqrt(energy_var) : 0.0;

  if (deviation_threshold_ > 0 && max_deviation > deviation_threshold_ && update->ntimestep != last_deviation_) {
    bigint above_here = 0, above = 0;
    for (int i = 0; i < nlocal; ++i) above_here += force_deviation_[i] > deviation_threshold_;
    MPI_Allreduce(&above_here, &above, 1, MPI_LMP_BIGINT, MPI_SUM, world);
    if (comm->me == 0)
      error->warning(FLERR, "pair xtalnn: step {}: force deviation of the {}-member committee up to {:.4g} eV/A, "
                     "above deviation_threshold {:.4g} eV/A on {} of {} atoms (energy std {:.4g} eV)",
                     update->ntimestep, M, max_deviation, deviation_threshold_, above, atom->natoms,
                     std::sqrt(energy_var));
  }
  last_deviation_ = update->ntimestep;
}

int PairXtalnn::pack_reverse_comm(int n, int first, double *buf) {
  const int width = 3 * static_cast<int>(n_members_);
  int k = 0;
  for (int i = first; i < first + n; ++i)
    for (int c = 0; c < width; ++c) buf[k++] = member_force_[i][c];
  return k;
}

void PairXtalnn::unpack_reverse_comm(int n, int *list, double *buf) {
  const int width = 3 * static_cast<int>(n_members_);
  int k = 0;
  for (int i = 0; i < n; ++i)
    for (int c = 0; c < width; ++c) member_force_[list[i]][c] += buf[k++];
}

void *PairXtalnn::extract(const char *name, int &dim) {
  dim = 0;
  if (strcmp(name, "force_deviation_flag") == 0) return &force_deviation_flag_;  // fix pair's trigger
  return nullptr;
}

void *PairXtalnn::extract_peratom(const char *name, int &ncol) {
  ncol = 0;
  if (strcmp(name, "force_deviation") == 0) return force_deviation_;
  return nullptr;
}

void PairXtalnn::report_extrapolation(int64_t n_outside_here) {
  last_check_ = update->ntimestep;
  bigint here = n_outside_here, total = 0;
  MPI_Allreduce(&here, &total, 1, MPI_LMP_BIGINT, MPI_SUM, world);
  if (total > 0 && comm->me == 0)
    error->warning(FLERR, "pair xtalnn: step {}: {} of {} atoms have descriptors outside the training range of "
                   "{}; their energies and forces are extrapolations", update->ntimestep, total, atom->natoms,
                   model_path_);
}
