// Tensor-level entry points of a descriptor D: input checks, dtype dispatch, output allocation.
// Instantiated once per descriptor (acsf.cpp, chebyshev.cpp).
#pragma once

#include <torch/types.h>

namespace xtalnn {

template <class D>
struct DescriptorKernels {
  // G[n_local, F]
  static torch::Tensor forward(const torch::Tensor& spec, const torch::Tensor& species,
                               const torch::Tensor& edge_index, const torch::Tensor& edge_vec,
                               int64_t n_local);
  // ∂(Σ dG·G)/∂edge_vec  [E, 3]
  static torch::Tensor backward(const torch::Tensor& spec, const torch::Tensor& species,
                                const torch::Tensor& edge_index, const torch::Tensor& edge_vec,
                                int64_t n_local, const torch::Tensor& dG);
  // ∂G/∂edge_vec · tangent  [n_local, F]
  static torch::Tensor jvp(const torch::Tensor& spec, const torch::Tensor& species,
                           const torch::Tensor& edge_index, const torch::Tensor& edge_vec,
                           int64_t n_local, const torch::Tensor& tangent);
  // Σ_f dG_f ∂²G_f/∂edge_vec² · tangent  [E, 3]
  static torch::Tensor hvp(const torch::Tensor& spec, const torch::Tensor& species,
                           const torch::Tensor& edge_index, const torch::Tensor& edge_vec,
                           int64_t n_local, const torch::Tensor& dG, const torch::Tensor& tangent);
};

}  // namespace xtalnn
