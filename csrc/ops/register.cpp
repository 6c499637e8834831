// torch.ops.xtalnn.*: the neighbour list and the descriptor ops with their autograd.
//
//   G = descriptor(species, edge_index, edge_vec, n_local, spec)
//   backward:          ∂L/∂edge_vec = VJP(dL/dG)                      (hand-written C++ kernel)
//   double backward:   of the VJP w.r.t. dL/dG  → JVP (forward mode)  (dual-number forward kernel)
//                      of the VJP w.r.t. edge_vec → HVP               (dual-number backward kernel)
// so forces (first derivatives) can be trained on (second derivatives), from Python, TorchScript
// or a C++ host alike. Third derivatives are not provided.
// When edge_vec will be differentiated, ACSF's forward keeps the per-edge radial terms, per-atom G5
// moments and the edges' grouping by centre that the VJP needs (memory linear in edges), so the
// backward neither evaluates them nor sorts the edges again.
#include <torch/autograd.h>

#include <type_traits>
#include <torch/library.h>

#include "descriptors/acsf.h"
#include "descriptors/chebyshev.h"
#include "descriptors/kernels.h"
#include "neighbors/neighbor_list.h"

namespace xtalnn {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

namespace {

// The VJP as a differentiable function of (dG, edge_vec). ecache / acache / graph: the forward's saved
// intermediates (ACSF; empty placeholders when there are none: apply() takes no undefined tensors);
// they only spare the first-order VJP its re-evaluation.
template <class D>
struct DescriptorBackward : public torch::autograd::Function<DescriptorBackward<D>> {
  static Tensor forward(AutogradContext* ctx, const Tensor& dG, const Tensor& edge_vec, const Tensor& species,
                        const Tensor& edge_index, int64_t n_local, const Tensor& spec, const Tensor& ecache,
                        const Tensor& acache, const Tensor& graph, bool kept) {
    ctx->save_for_backward({dG, edge_vec, species, edge_index, spec});
    ctx->saved_data["n_local"] = n_local;
    if constexpr (std::is_same_v<D, ACSF>) {
      if (kept) return acsf_backward_saved(spec, species, edge_index, edge_vec, n_local, dG, ecache, acache, graph);
    }
    return DescriptorKernels<D>::backward(spec, species, edge_index, edge_vec, n_local, dG);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Tensor &dG = saved[0], &edge_vec = saved[1], &species = saved[2], &edge_index = saved[3], &spec = saved[4];
    const int64_t n_local = ctx->saved_data["n_local"].toInt();
    const Tensor& tangent = grads[0];
    Tensor grad_dG, grad_vec;
    if (tangent.defined()) {
      if (ctx->needs_input_grad(0))
        grad_dG = DescriptorKernels<D>::jvp(spec, species, edge_index, edge_vec, n_local, tangent);
      if (ctx->needs_input_grad(1))
        grad_vec = DescriptorKernels<D>::hvp(spec, species, edge_index, edge_vec, n_local, dG, tangent);
    }
    return {grad_dG, grad_vec, Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

template <class D>
struct Descriptor : public torch::autograd::Function<Descriptor<D>> {
  // keep: the caller will differentiate w.r.t. edge_vec (decided before apply(), which turns grad mode off)
  static Tensor forward(AutogradContext* ctx, const Tensor& species, const Tensor& edge_index,
                        const Tensor& edge_vec, int64_t n_local, const Tensor& spec, bool keep) {
    ctx->saved_data["n_local"] = n_local;
    if constexpr (std::is_same_v<D, ACSF>) {
      if (keep) {
        ACSFSaved kept = acsf_forward_saving(spec, species, edge_index, edge_vec, n_local);
        ctx->save_for_backward({species, edge_index, edge_vec, spec, kept.ecache, kept.acache, kept.graph});
        return kept.G;
      }
    }
    ctx->save_for_backward({species, edge_index, edge_vec, spec});
    return DescriptorKernels<D>::forward(spec, species, edge_index, edge_vec, n_local);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const int64_t n_local = ctx->saved_data["n_local"].toInt();
    Tensor grad_vec;
    const bool kept = saved.size() == 7;
    const Tensor none = kept ? Tensor() : torch::empty({0}, saved[2].options());
    if (grads[0].defined() && ctx->needs_input_grad(2))
      grad_vec = DescriptorBackward<D>::apply(grads[0], saved[2], saved[0], saved[1], n_local, saved[3],
                                              kept ? saved[4] : none, kept ? saved[5] : none,
                                              kept ? saved[6] : none, kept);
    return {Tensor(), Tensor(), grad_vec, Tensor(), Tensor(), Tensor()};
  }
};

template <class D>
Tensor descriptor(const Tensor& species, const Tensor& edge_index, const Tensor& edge_vec, int64_t n_local,
                  const Tensor& spec) {
  const bool keep = torch::GradMode::is_enabled() && edge_vec.requires_grad();
  return Descriptor<D>::apply(species, edge_index, edge_vec, n_local, spec, keep);
}

std::tuple<Tensor, Tensor> neighbor_list_op(const Tensor& positions, const Tensor& cell, const Tensor& pbc,
                                            double cutoff, bool self_interaction) {
  return neighbor_list(positions, cell, pbc, cutoff, self_interaction);
}

}  // namespace

TORCH_LIBRARY(xtalnn, m) {
  m.def("neighbor_list(Tensor positions, Tensor cell, Tensor pbc, float cutoff, bool self_interaction=False)"
        " -> (Tensor edge_index, Tensor shifts)",
        &neighbor_list_op);
  m.def("acsf(Tensor species, Tensor edge_index, Tensor edge_vec, int n_local, Tensor spec) -> Tensor",
        &descriptor<ACSF>);
  m.def("chebyshev(Tensor species, Tensor edge_index, Tensor edge_vec, int n_local, Tensor spec) -> Tensor",
        &descriptor<Chebyshev>);
  // Raw kernels (no autograd), for tests and for C++ hosts that want the VJP directly.
  m.def("acsf_backward(Tensor species, Tensor edge_index, Tensor edge_vec, int n_local, Tensor spec, Tensor dG)"
        " -> Tensor",
        [](const Tensor& sp, const Tensor& ei, const Tensor& ev, int64_t nl, const Tensor& spec, const Tensor& dG) {
          return DescriptorKernels<ACSF>::backward(spec, sp, ei, ev, nl, dG);
        });
  m.def("chebyshev_backward(Tensor species, Tensor edge_index, Tensor edge_vec, int n_local, Tensor spec, "
        "Tensor dG) -> Tensor",
        [](const Tensor& sp, const Tensor& ei, const Tensor& ev, int64_t nl, const Tensor& spec, const Tensor& dG) {
          return DescriptorKernels<Chebyshev>::backward(spec, sp, ei, ev, nl, dG);
        });
}

}  // namespace xtalnn
