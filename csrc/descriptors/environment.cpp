#include "descriptors/environment.h"

namespace xtalnn {

Graph make_graph(const torch::Tensor& species, const torch::Tensor& edge_index, int64_t n_local,
                 int64_t n_species) {
  Graph g;
  g.n_local = n_local;
  const int64_t E = edge_index.size(1);
  const int64_t* centre = edge_index.data_ptr<int64_t>();
  g.neighbor = centre + E;
  g.species = species.data_ptr<int64_t>();
  // Counting sort by (centre, neighbour species), stable: each centre's edges come grouped by the
  // species of the neighbour, in their input order within a species. Kernels then sum per species
  // over contiguous runs (ACSF's G5 moments), which vectorises.
  std::vector<int64_t> bucket(n_local * n_species + 1, 0);
  auto key = [&](int64_t e) { return centre[e] * n_species + g.species[g.neighbor[e]]; };
  for (int64_t e = 0; e < E; ++e) ++bucket[key(e) + 1];
  for (size_t k = 1; k < bucket.size(); ++k) bucket[k] += bucket[k - 1];
  g.row_ptr.resize(n_local + 1);
  for (int64_t i = 0; i <= n_local; ++i) g.row_ptr[i] = bucket[i * n_species];
  g.order.resize(E);
  for (int64_t e = 0; e < E; ++e) g.order[bucket[key(e)]++] = e;
  return g;
}

}  // namespace xtalnn
