#include "descriptors/environment.h"

namespace xtalnn {

Graph make_graph(const torch::Tensor& species, const torch::Tensor& edge_index, int64_t n_local) {
  Graph g;
  g.n_local = n_local;
  const int64_t E = edge_index.size(1);
  const int64_t* centre = edge_index.data_ptr<int64_t>();
  g.neighbor = centre + E;
  g.species = species.data_ptr<int64_t>();
  g.row_ptr.assign(n_local + 1, 0);
  for (int64_t e = 0; e < E; ++e) ++g.row_ptr[centre[e] + 1];
  for (int64_t i = 0; i < n_local; ++i) g.row_ptr[i + 1] += g.row_ptr[i];
  g.order.resize(E);
  std::vector<int64_t> fill(g.row_ptr.begin(), g.row_ptr.end() - 1);
  for (int64_t e = 0; e < E; ++e) g.order[fill[centre[e]]++] = e;
  return g;
}

}  // namespace xtalnn
