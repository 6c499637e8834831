#include "descriptors/acsf.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <mutex>
#include <utility>
#include <vector>
#include <map>

#include "descriptors/kernels_impl.h"

namespace xtalnn {

namespace {

int distinct_index(std::vector<double>& values, double v) {
  for (size_t k = 0; k < values.size(); ++k)
    if (values[k] == v) return static_cast<int>(k);
  values.push_back(v);
  return static_cast<int>(values.size() - 1);
}

}  // namespace

ACSF::ACSF(const torch::Tensor& spec_in) {
  const auto spec = spec_in.to(torch::kFloat64).contiguous();
  TORCH_CHECK_VALUE(spec.dim() == 1 && spec.numel() >= 6, "ACSF spec must be a 1-D float64 tensor");
  const double* s = spec.data_ptr<double>();
  n_elements = static_cast<int64_t>(s[0]);
  rc = s[1];
  cutoff_type = static_cast<CutoffType>(static_cast<int>(s[2]));
  const int64_t n2 = static_cast<int64_t>(s[3]), n4 = static_cast<int64_t>(s[4]), n5 = static_cast<int64_t>(s[5]);
  TORCH_CHECK_VALUE(n_elements > 0, "ACSF needs at least one element");
  TORCH_CHECK_VALUE(rc > 0 && std::isfinite(rc), "ACSF cutoff must be positive, got ", rc);
  TORCH_CHECK_VALUE(s[2] == 0 || s[2] == 1, "unknown cutoff type ", s[2]);
  TORCH_CHECK_VALUE(spec.numel() == 6 + 2 * n2 + 3 * (n4 + n5), "ACSF spec has ", spec.numel(),
                    " entries, expected ", 6 + 2 * n2 + 3 * (n4 + n5));
  const double* q = s + 6;
  for (int64_t p = 0; p < n2; ++p, q += 2) {
    eta2.push_back(q[0]);
    rs2.push_back(q[1]);
  }
  auto angular = [&](int64_t count, std::vector<Angular>& out, std::vector<double>& etas) {
    for (int64_t p = 0; p < count; ++p, q += 3) {
      TORCH_CHECK_VALUE(q[1] >= 1, "ζ must be >= 1, got ", q[1]);
      TORCH_CHECK_VALUE(q[2] == 1 || q[2] == -1, "λ must be +1 or -1, got ", q[2]);
      out.push_back({q[0], q[1], q[2], std::pow(2.0, 1.0 - q[1]), distinct_index(etas, q[0])});
    }
  };
  angular(n4, g4, etas4);
  angular(n5, g5, etas5);
  n_pairs = n_elements * (n_elements + 1) / 2;
  off4 = n_elements * n2;
  off5 = off4 + n_pairs * n4;
  n_feat = off5 + n_pairs * n5;
  init_moments();
  init_radial_grid();
}

void ACSF::init_radial_grid() {
  const size_t n2 = eta2.size();
  if (n2 < 3) return;
  const double step = rs2[1] - rs2[0];
  for (size_t p = 0; p < n2; ++p)
    if (eta2[p] != eta2[0] || std::fabs(rs2[p] - rs2[0] - p * step) > 1e-12 * (1 + std::fabs(rs2[p]))) return;
  // the recurrence starts from exp(−η (r − R_0)²): keep it far from underflow (float32 included)
  const double reach = std::max(std::fabs(rc - rs2[0]), std::fabs(rs2[0]));
  if (step <= 0 || eta2[0] * reach * reach > 60.0) return;
  g2_uniform = true;
  g2_step = step;
  for (size_t p = 0; p < n2; ++p) g2_ratio.push_back(std::exp(-eta2[0] * step * step * (2.0 * p + 1.0)));
}

void ACSF::init_moments() {
  int L = 0;
  for (const auto& q : g5) {
    if (q.zeta != std::round(q.zeta) || q.zeta > 32) return;  // pair loop for non-integer / huge ζ
    L = std::max(L, static_cast<int>(q.zeta));
  }
  if (g5.empty()) return;
  g5_moments = true;
  max_degree = L;
  std::vector<double> factorial(L + 1, 1.0);
  for (int k = 1; k <= L; ++k) factorial[k] = factorial[k - 1] * k;
  for (int d = 0; d <= L; ++d) {
    degree_start.push_back(static_cast<int>(monomials.size()));
    for (int i = d; i >= 0; --i)
      for (int j = d - i; j >= 0; --j) {
        const int k = d - i - j;
        monomials.push_back({i, j, k});
        multinomial.push_back(factorial[d] / (factorial[i] * factorial[j] * factorial[k]));
      }
  }
  degree_start.push_back(static_cast<int>(monomials.size()));
  std::map<std::array<int, 3>, int> index;
  for (size_t m = 0; m < monomials.size(); ++m) index[monomials[m]] = static_cast<int>(m);
  parent.assign(monomials.size(), 0);
  parent_axis.assign(monomials.size(), 0);
  for (size_t m = 1; m < monomials.size(); ++m) {
    const auto& e = monomials[m];
    const int axis = e[0] > 0 ? 0 : (e[1] > 0 ? 1 : 2);
    auto lower = e;
    --lower[axis];
    parent[m] = index.at(lower);
    parent_axis[m] = axis;
  }
  for (int c = 0; c < 3; ++c)
    for (size_t m = 1; m < monomials.size(); ++m) {
      const auto& e = monomials[m];
      if (e[c] == 0) continue;
      auto lower = e;
      --lower[c];
      lowering[c].m.push_back(static_cast<int>(m));
      lowering[c].lower.push_back(index.at(lower));
      lowering[c].power.push_back(e[c]);
    }
  for (const auto& q : g5) {
    const int z = static_cast<int>(q.zeta);
    std::vector<double> coef(z + 1);
    double binom = 1.0;
    for (int d = 0; d <= z; ++d) {
      coef[d] = q.prefactor * binom * std::pow(q.lambda, d);
      binom = binom * (z - d) / (d + 1);
    }
    g5_coef.push_back(coef);
  }
}

template struct DescriptorKernels<ACSF>;

namespace {

// The forward's saved intermediates are large (tens of MB for a few thousand atoms) and live from a
// forward to its backward. Fresh allocations of that size are new pages from the kernel every call
// (glibc maps blocks over 32 MB), and first-touch page faults cost more than the work they save
// (measured: +8 µs/atom on 6,000 atoms). Blocks are therefore recycled: a freed block goes to a
// small free list (at most kKeep blocks; the smallest are released first), a request takes the
// smallest free block that is large enough. Memory stays that of the live caches plus kKeep blocks.
class BlockPool {
 public:
  static BlockPool& get() {
    static BlockPool* pool = new BlockPool;  // never destroyed: blocks may be freed at exit
    return *pool;
  }
  torch::Tensor empty(at::IntArrayRef sizes, const torch::TensorOptions& options) {
    int64_t numel = 1;
    for (const int64_t s : sizes) numel *= s;
    const size_t bytes = static_cast<size_t>(numel) * options.dtype().itemsize();
    if (bytes < (size_t(1) << 20)) return torch::empty(sizes, options);
    void* ptr = nullptr;
    size_t capacity = 0;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto best = free_.end();
      for (auto it = free_.begin(); it != free_.end(); ++it)
        if (it->first >= bytes && (best == free_.end() || it->first < best->first)) best = it;
      if (best != free_.end()) {
        capacity = best->first;
        ptr = best->second;
        free_.erase(best);
      }
    }
    if (!ptr) {  // room for the edge count to grow a little between MD steps
      capacity = (bytes + bytes / 8 + 4095) / 4096 * 4096;
      ptr = std::aligned_alloc(64, capacity);
      TORCH_CHECK(ptr, "xtalnn: out of memory (", capacity, " bytes for the ACSF intermediates)");
    }
    return torch::from_blob(ptr, sizes, [this, ptr, capacity](void*) { release(ptr, capacity); }, options);
  }

 private:
  static constexpr size_t kKeep = 4;
  void release(void* ptr, size_t capacity) {
    std::lock_guard<std::mutex> lock(mutex_);
    free_.emplace_back(capacity, ptr);
    while (free_.size() > kKeep) {
      auto smallest = std::min_element(free_.begin(), free_.end());
      std::free(smallest->second);
      free_.erase(smallest);
    }
  }
  std::mutex mutex_;
  std::vector<std::pair<size_t, void*>> free_;
};

}  // namespace

ACSFSaved acsf_forward_saving(const torch::Tensor& spec, const torch::Tensor& species,
                              const torch::Tensor& edge_index, const torch::Tensor& edge_vec, int64_t n_local) {
  const ACSF d(spec);
  const detail::Prepared p = detail::prepare(d, species, edge_index, edge_vec, n_local);
  torch::Tensor G = torch::zeros({n_local, d.n_features()}, edge_vec.options());
  // per-centre blocks (see ACSF::edge_cache_size); the room of edges beyond the cutoff stays unwritten
  torch::Tensor ecache = BlockPool::get().empty({p.edge_vec.size(0), d.edge_cache_size()}, edge_vec.options());
  torch::Tensor acache = BlockPool::get().empty({n_local, d.atom_cache_size()}, edge_vec.options());
  AT_DISPATCH_FLOATING_TYPES(edge_vec.scalar_type(), "xtalnn_acsf_forward_saving", [&] {
    run_forward_saving<ACSF, scalar_t>(d, p.graph, p.edge_vec.data_ptr<scalar_t>(), G.data_ptr<scalar_t>(),
                                       ecache.data_ptr<scalar_t>(), acache.data_ptr<scalar_t>());
  });
  return {G, ecache, acache, p.graph.index};
}

torch::Tensor acsf_backward_saved(const torch::Tensor& spec, const torch::Tensor& species,
                                  const torch::Tensor& edge_index, const torch::Tensor& edge_vec, int64_t n_local,
                                  const torch::Tensor& dG, const torch::Tensor& ecache, const torch::Tensor& acache,
                                  const torch::Tensor& graph) {
  const ACSF d(spec);
  // the forward's inputs, checked there; contiguous() is a no-op for the tensors it was given
  const torch::Tensor sp = species.contiguous(), ei = edge_index.contiguous(), ev = edge_vec.contiguous();
  const Graph g = graph_view(graph, sp, ei, n_local);
  torch::Tensor dGc = dG.to(edge_vec.scalar_type()).contiguous();
  TORCH_CHECK_VALUE(dGc.size(0) == n_local && dGc.size(1) == d.n_features(), "gradient has shape ",
                    dG.sizes(), ", expected [", n_local, ", ", d.n_features(), "]");
  TORCH_CHECK(ecache.scalar_type() == edge_vec.scalar_type() && ecache.is_contiguous() &&
                  ecache.size(0) == ev.size(0) && ecache.size(1) == d.edge_cache_size() &&
                  acache.scalar_type() == edge_vec.scalar_type() && acache.is_contiguous() &&
                  acache.size(0) == n_local && acache.size(1) == d.atom_cache_size(),
              "acsf: saved intermediates do not match the inputs");
  torch::Tensor out = torch::zeros_like(ev);
  AT_DISPATCH_FLOATING_TYPES(edge_vec.scalar_type(), "xtalnn_acsf_backward_saved", [&] {
    run_backward_saved<ACSF, scalar_t>(d, g, ev.data_ptr<scalar_t>(), dGc.data_ptr<scalar_t>(),
                                       ecache.data_ptr<scalar_t>(), acache.data_ptr<scalar_t>(),
                                       out.data_ptr<scalar_t>());
  });
  return out;
}

}  // namespace xtalnn
