// Definitions of DescriptorKernels<D>; include only from a descriptor's .cpp.
#pragma once

#include "descriptors/environment.h"
#include "descriptors/kernels.h"

namespace xtalnn {

namespace detail {

inline void check_inputs(const torch::Tensor& species, const torch::Tensor& edge_index,
                         const torch::Tensor& edge_vec, int64_t n_local, int64_t n_elements) {
  TORCH_CHECK_VALUE(species.dim() == 1 && species.scalar_type() == torch::kInt64,
                    "species must be a 1-D int64 tensor, got ", species.sizes(), " ", species.scalar_type());
  TORCH_CHECK_VALUE(edge_index.dim() == 2 && edge_index.size(0) == 2 &&
                        edge_index.scalar_type() == torch::kInt64,
                    "edge_index must be an int64 tensor of shape [2, E], got ", edge_index.sizes());
  TORCH_CHECK_VALUE(edge_vec.dim() == 2 && edge_vec.size(1) == 3 && edge_vec.size(0) == edge_index.size(1),
                    "edge_vec must have shape [E, 3] with E = edge_index.size(1), got ", edge_vec.sizes());
  TORCH_CHECK_VALUE(edge_vec.scalar_type() == torch::kFloat64 || edge_vec.scalar_type() == torch::kFloat32,
                    "edge_vec must be float32 or float64, got ", edge_vec.scalar_type());
  TORCH_CHECK_VALUE(species.device().is_cpu() && edge_index.device().is_cpu() && edge_vec.device().is_cpu(),
                    "the compiled xtalnn ops run on CPU tensors; use the pure-torch descriptors "
                    "(backend='torch') for GPU tensors");
  const int64_t n = species.size(0);
  TORCH_CHECK_VALUE(n_local >= 0 && n_local <= n, "n_local = ", n_local, " must lie in [0, ", n, "]");
  if (n > 0) {
    const auto mm = torch::aminmax(species);
    const int64_t lo = std::get<0>(mm).item<int64_t>(), hi = std::get<1>(mm).item<int64_t>();
    TORCH_CHECK_VALUE(lo >= 0 && hi < n_elements, "species index out of range [0, ", n_elements,
                      "): found ", lo < 0 ? lo : hi);
  }
  if (edge_index.size(1) > 0) {
    const auto ci = torch::aminmax(edge_index[0]);
    const auto nj = torch::aminmax(edge_index[1]);
    TORCH_CHECK_VALUE(std::get<0>(ci).item<int64_t>() >= 0 && std::get<1>(ci).item<int64_t>() < n_local,
                      "edge_index[0] (centres) must lie in [0, n_local = ", n_local, ")");
    TORCH_CHECK_VALUE(std::get<0>(nj).item<int64_t>() >= 0 && std::get<1>(nj).item<int64_t>() < n,
                      "edge_index[1] (neighbours) must lie in [0, N = ", n, ")");
  }
}

struct Prepared {
  torch::Tensor species, edge_index, edge_vec;
  Graph graph;
};

template <class D>
Prepared prepare(const D& d, const torch::Tensor& species, const torch::Tensor& edge_index,
                 const torch::Tensor& edge_vec, int64_t n_local) {
  check_inputs(species, edge_index, edge_vec, n_local, d.n_elements);
  Prepared p{species.contiguous(), edge_index.contiguous(), edge_vec.contiguous(), {}};
  p.graph = make_graph(p.species, p.edge_index, n_local, d.n_elements);
  return p;
}

}  // namespace detail

template <class D>
torch::Tensor DescriptorKernels<D>::forward(const torch::Tensor& spec, const torch::Tensor& species,
                                            const torch::Tensor& edge_index, const torch::Tensor& edge_vec,
                                            int64_t n_local) {
  const D d(spec);
  const detail::Prepared p = detail::prepare(d, species, edge_index, edge_vec, n_local);
  torch::Tensor G = torch::zeros({n_local, d.n_features()}, edge_vec.options());
  AT_DISPATCH_FLOATING_TYPES(edge_vec.scalar_type(), "xtalnn_descriptor_forward", [&] {
    run_forward<D, scalar_t>(d, p.graph, p.edge_vec.data_ptr<scalar_t>(), G.data_ptr<scalar_t>());
  });
  return G;
}

template <class D>
torch::Tensor DescriptorKernels<D>::backward(const torch::Tensor& spec, const torch::Tensor& species,
                                             const torch::Tensor& edge_index, const torch::Tensor& edge_vec,
                                             int64_t n_local, const torch::Tensor& dG) {
  const D d(spec);
  const detail::Prepared p = detail::prepare(d, species, edge_index, edge_vec, n_local);
  torch::Tensor dGc = dG.to(edge_vec.scalar_type()).contiguous();
  TORCH_CHECK_VALUE(dGc.size(0) == n_local && dGc.size(1) == d.n_features(), "gradient has shape ",
                    dG.sizes(), ", expected [", n_local, ", ", d.n_features(), "]");
  torch::Tensor out = torch::zeros_like(p.edge_vec);
  AT_DISPATCH_FLOATING_TYPES(edge_vec.scalar_type(), "xtalnn_descriptor_backward", [&] {
    run_backward<D, scalar_t>(d, p.graph, p.edge_vec.data_ptr<scalar_t>(), dGc.data_ptr<scalar_t>(),
                              out.data_ptr<scalar_t>());
  });
  return out;
}

template <class D>
torch::Tensor DescriptorKernels<D>::jvp(const torch::Tensor& spec, const torch::Tensor& species,
                                        const torch::Tensor& edge_index, const torch::Tensor& edge_vec,
                                        int64_t n_local, const torch::Tensor& tangent) {
  const D d(spec);
  const detail::Prepared p = detail::prepare(d, species, edge_index, edge_vec, n_local);
  torch::Tensor t = tangent.to(edge_vec.scalar_type()).contiguous();
  torch::Tensor out = torch::zeros({n_local, d.n_features()}, edge_vec.options());
  AT_DISPATCH_FLOATING_TYPES(edge_vec.scalar_type(), "xtalnn_descriptor_jvp", [&] {
    run_jvp<D, scalar_t>(d, p.graph, p.edge_vec.data_ptr<scalar_t>(), t.data_ptr<scalar_t>(),
                         out.data_ptr<scalar_t>());
  });
  return out;
}

template <class D>
torch::Tensor DescriptorKernels<D>::hvp(const torch::Tensor& spec, const torch::Tensor& species,
                                        const torch::Tensor& edge_index, const torch::Tensor& edge_vec,
                                        int64_t n_local, const torch::Tensor& dG, const torch::Tensor& tangent) {
  const D d(spec);
  const detail::Prepared p = detail::prepare(d, species, edge_index, edge_vec, n_local);
  torch::Tensor dGc = dG.to(edge_vec.scalar_type()).contiguous();
  torch::Tensor t = tangent.to(edge_vec.scalar_type()).contiguous();
  torch::Tensor out = torch::zeros_like(p.edge_vec);
  AT_DISPATCH_FLOATING_TYPES(edge_vec.scalar_type(), "xtalnn_descriptor_hvp", [&] {
    run_hvp<D, scalar_t>(d, p.graph, p.edge_vec.data_ptr<scalar_t>(), dGc.data_ptr<scalar_t>(),
                         t.data_ptr<scalar_t>(), out.data_ptr<scalar_t>());
  });
  return out;
}

}  // namespace xtalnn
