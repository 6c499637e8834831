// The torch side of pair_style xtalnn (see xtalnn_model.h).
#include "xtalnn_model.h"

#include <dlfcn.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <ATen/Parallel.h>
#include <torch/autograd.h>
#include <torch/script.h>

#include <cstring>
#include <fstream>
#include <sstream>

namespace xtalnn_lammps {

namespace {

constexpr int64_t kFormatVersion = 2;  // the model files this plugin reads (xtalnn.potential.model)

// The message of a torch error without C++ frames or TorchScript tracebacks: for an error raised
// inside the interpreter, the cause is its last unindented "SomethingError: message" line.
std::string first_line(const std::exception &err) {
  const auto *c10_error = dynamic_cast<const c10::Error *>(&err);
  std::istringstream lines(c10_error ? c10_error->what_without_backtrace() : err.what());
  std::string line, first, cause;
  while (std::getline(lines, line)) {
    if (first.empty() && !line.empty()) first = line;
    const auto colon = line.find("Error: ");
    if (!line.empty() && line[0] != ' ' && colon != std::string::npos && line.find(' ') > colon)
      cause = line.substr(colon + 7);
  }
  return cause.empty() ? first : cause;
}

void load_ops_library(const std::string &path) {
  if (dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL) == nullptr) {
    const char *why = dlerror();
    throw ModelError("cannot load the xtalnn op library " + path + ": " + (why ? why : "unknown dlopen error") +
                     " (rebuild the plugin with `xtalnn lammps-plugin-path --rebuild`, or set XTALNN_OPS_LIBRARY "
                     "to the output of `xtalnn ops-library-path`)");
  }
}

}  // namespace

struct Model::Impl {
  torch::jit::Module module;
  double tolerance;  // extrapolation slack, passed to the model's own rule (its `extrapolating` method)
};

Model::Model(const std::string &model_path, const std::string &ops_library, double tolerance)
    : impl_(std::make_unique<Impl>()) {
  if (!std::ifstream(model_path).good())
    throw ModelError("cannot open model file " + model_path + " (missing or unreadable)");
  load_ops_library(ops_library);
  // The profiling executor would re-specialise the graph during the first calls; these models are
  // a descriptor op and a few small matrix products, so plain interpretation is what we want.
  torch::jit::setGraphExecutorOptimize(false);
  try {
    impl_->module = torch::jit::load(model_path, torch::kCPU);
  } catch (const std::exception &err) {
    throw ModelError("cannot load model file " + model_path + " as a TorchScript xtalnn potential: " +
                     first_line(err));
  }
  torch::jit::Module &m = impl_->module;
  m.eval();
  for (const char *name : {"format_version", "elements", "cutoff", "descriptor_max"})
    if (!m.hasattr(name))
      throw ModelError("model file " + model_path + " is not an xtalnn potential (no attribute '" + name +
                       "'); export it with `xtalnn export`");
  const int64_t version = m.attr("format_version").toInt();
  if (version != kFormatVersion)
    throw ModelError("model file " + model_path + " has format version " + std::to_string(version) +
                     "; this plugin reads version " + std::to_string(kFormatVersion) +
                     " (rebuild the plugin with the xtalnn that wrote the file)");
  for (const auto &element : m.attr("elements").toListRef()) elements_.push_back(element.toStringRef());
  cutoff_ = m.attr("cutoff").toDouble();
  n_features_ = m.attr("descriptor_max").toTensor().size(1);
  n_members_ = m.hasattr("n_members") ? m.attr("n_members").toInt() : 1;  // files before committees: one
  impl_->tolerance = tolerance;
  kind_ = m.hasattr("descriptor_kind") ? m.attr("descriptor_kind").toStringRef() : "?";
}

Model::~Model() = default;

std::string Model::summary() const {
  std::ostringstream out;
  out << "elements";
  for (const auto &e : elements_) out << ' ' << e;
  out << ", cutoff " << cutoff_ << " A, " << kind_ << " descriptor with " << n_features_ << " features, "
      << at::get_num_threads() << " torch thread(s)";
  if (n_members_ > 1) out << ", a committee of " << n_members_ << " networks";
  return out.str();
}

int64_t Model::compute(const EdgeList &edges, double *energy, double *edge_grad, bool count_extrapolating,
                       const Members *members) {
  const auto i64 = torch::TensorOptions().dtype(torch::kInt64);
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  const int64_t E = edges.n_edges, n_local = edges.n_local;
  const torch::Tensor species = torch::from_blob(const_cast<int64_t *>(edges.species), {edges.n_all}, i64);
  const torch::Tensor edge_index = torch::from_blob(const_cast<int64_t *>(edges.edge_index), {2, E}, i64);
  const torch::Tensor vec =
      torch::from_blob(const_cast<double *>(edges.edge_vec), {E, 3}, f64).set_requires_grad(true);
  const bool committee = members != nullptr && n_members_ > 1;
  torch::Tensor G, atomic;
  try {
    G = impl_->module.run_method("descriptors", species, edge_index, vec, n_local).toTensor();
    atomic = impl_->module.run_method(committee ? "member_energies" : "atomic_energies",
                                      species.narrow(0, 0, n_local), G).toTensor();
  } catch (const std::exception &err) {
    throw ModelError("model evaluation failed: " + first_line(err));
  }
  if (!committee) {
    const torch::Tensor e = atomic.detach().to(torch::kFloat64).contiguous();
    std::memcpy(energy, e.data_ptr<double>(), sizeof(double) * n_local);
    torch::Tensor grad;
    if (E > 0 && atomic.requires_grad())
      grad = torch::autograd::grad({atomic.sum()}, {vec}, {}, /*retain_graph=*/false, /*create_graph=*/false,
                                   /*allow_unused=*/true)[0];
    if (grad.defined())
      std::memcpy(edge_grad, grad.to(torch::kFloat64).contiguous().data_ptr<double>(), sizeof(double) * 3 * E);
    else
      std::memset(edge_grad, 0, sizeof(double) * 3 * E);
  } else {  // [M, n_local]: each member's backward pass through the one descriptor graph
    const torch::Tensor e = atomic.detach().to(torch::kFloat64).contiguous();
    std::memcpy(members->energy, e.data_ptr<double>(), sizeof(double) * n_members_ * n_local);
    const torch::Tensor mean = e.mean(0).contiguous();
    std::memcpy(energy, mean.data_ptr<double>(), sizeof(double) * n_local);
    const torch::Tensor totals = atomic.sum(1);
    for (int64_t m = 0; m < n_members_; ++m) {
      double *out = members->edge_grad + m * 3 * E;
      torch::Tensor grad;
      if (E > 0 && atomic.requires_grad())
        grad = torch::autograd::grad({totals[m]}, {vec}, {}, /*retain_graph=*/m + 1 < n_members_,
                                     /*create_graph=*/false, /*allow_unused=*/true)[0];
      if (grad.defined())
        std::memcpy(out, grad.to(torch::kFloat64).contiguous().data_ptr<double>(), sizeof(double) * 3 * E);
      else
        std::memset(out, 0, sizeof(double) * 3 * E);
    }
    for (int64_t k = 0; k < 3 * E; ++k) {
      double sum = 0;
      for (int64_t m = 0; m < n_members_; ++m) sum += members->edge_grad[m * 3 * E + k];
      edge_grad[k] = sum / n_members_;
    }
  }
  if (!count_extrapolating || n_local == 0) return 0;
  try {  // the model file's own rule, the one the ASE calculator calls too
    const torch::Tensor outside =
        impl_->module.run_method("extrapolating", species.narrow(0, 0, n_local), G.detach(), impl_->tolerance)
            .toTensor();
    return outside.sum().item<int64_t>();
  } catch (const std::exception &err) {
    throw ModelError("model extrapolation check failed: " + first_line(err));
  }
}

}  // namespace xtalnn_lammps
