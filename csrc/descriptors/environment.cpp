#include "descriptors/environment.h"

namespace xtalnn {

Graph graph_view(const torch::Tensor& index, const torch::Tensor& species, const torch::Tensor& edge_index,
                 int64_t n_local) {
  const int64_t E = edge_index.size(1);
  TORCH_CHECK(index.scalar_type() == torch::kInt64 && index.is_contiguous() && index.numel() == n_local + 1 + E,
              "xtalnn: the kept edge grouping does not match the inputs");
  Graph g;
  g.n_local = n_local;
  g.index = index;
  g.row_ptr = index.data_ptr<int64_t>();
  g.order = g.row_ptr + n_local + 1;
  g.neighbor = edge_index.data_ptr<int64_t>() + E;
  g.species = species.data_ptr<int64_t>();
  return g;
}

Graph make_graph(const torch::Tensor& species, const torch::Tensor& edge_index, int64_t n_local,
                 int64_t n_species) {
  const int64_t E = edge_index.size(1);
  Graph g = graph_view(torch::empty({n_local + 1 + E}, torch::kInt64), species, edge_index, n_local);
  const int64_t* centre = edge_index.data_ptr<int64_t>();
  int64_t* row_ptr = g.index.data_ptr<int64_t>();
  int64_t* order = row_ptr + n_local + 1;
  // Counting sort by (centre, neighbour species), stable: each centre's edges come grouped by the
  // species of the neighbour, in their input order within a species. Kernels then sum per species
  // over contiguous runs (ACSF's G5 moments), which vectorises.
  std::vector<int64_t> bucket(n_local * n_species + 1, 0);
  auto key = [&](int64_t e) { return centre[e] * n_species + g.species[g.neighbor[e]]; };
  for (int64_t e = 0; e < E; ++e) ++bucket[key(e) + 1];
  for (size_t k = 1; k < bucket.size(); ++k) bucket[k] += bucket[k - 1];
  for (int64_t i = 0; i <= n_local; ++i) row_ptr[i] = bucket[i * n_species];
  for (int64_t e = 0; e < E; ++e) order[bucket[key(e)]++] = e;
  return g;
}

}  // namespace xtalnn
