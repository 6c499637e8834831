// Atomic environments: the edges of each centre atom, grouped, and the four kernel drivers
// (forward, backward, Jacobian-vector product, Hessian-vector product) shared by all descriptors.
//
// A descriptor D provides
//   double max_cutoff() const;  int64_t n_features() const;
//   template <class S> void forward(const Environment<S>&, S* G) const;          // G[F] += …
//   template <class S> void backward(const Environment<S>&, const S* dG, S* gx, S* gy, S* gz) const;
// where S is float, double or Dual<float/double>. Edges are r_ij = x_j − x_i (+ shift·cell), Å.
#pragma once

#include <ATen/Parallel.h>
#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "common/dual.h"

namespace xtalnn {

// Neighbours j of one centre i inside the descriptor's largest cutoff.
template <typename S>
struct Environment {
  std::vector<S> x, y, z, r;       // r_ij components and length (Å)
  std::vector<int64_t> species;    // species index of j
  std::vector<int64_t> edge;       // row in edge_index / edge_vec
  int64_t size() const { return static_cast<int64_t>(edge.size()); }
  void resize(int64_t n) {
    x.resize(n); y.resize(n); z.resize(n); r.resize(n); species.resize(n); edge.resize(n);
  }
};

// Edges grouped by centre atom and, within a centre, by neighbour species (a stable counting sort).
// gather() keeps that order, so an Environment's neighbours come in runs of one species.
// `index` holds the grouping as one int64 tensor [n_local + 1 + E] (row_ptr, then order), so a
// forward can keep it for its backward (graph_view) instead of sorting the edges again.
struct Graph {
  int64_t n_local = 0;
  torch::Tensor index;
  const int64_t* row_ptr = nullptr;  // [n_local + 1]
  const int64_t* order = nullptr;    // [E] edge ids, grouped by centre
  const int64_t* neighbor = nullptr;
  const int64_t* species = nullptr;
};

// species values lie in [0, n_species) (checked by the caller).
Graph make_graph(const torch::Tensor& species, const torch::Tensor& edge_index, int64_t n_local,
                 int64_t n_species);

// The Graph of make_graph(species, edge_index, n_local, …) from its `index` (same, contiguous inputs).
Graph graph_view(const torch::Tensor& index, const torch::Tensor& species, const torch::Tensor& edge_index,
                 int64_t n_local);

// Collects the edges of centre i shorter than rc; a non-null `tan` seeds Dual tangents.
template <typename S>
void gather(const Graph& g, int64_t i, const real_t<S>* vec, const real_t<S>* tan, double rc,
            Environment<S>& env) {
  using T = real_t<S>;
  const T rc2 = static_cast<T>(rc * rc);
  const int64_t first = g.row_ptr[i], count = g.row_ptr[i + 1] - first;
  env.resize(count);  // then shrunk to the edges inside the cutoff
  int64_t n = 0;
  for (int64_t p = 0; p < count; ++p) {
    const int64_t e = g.order[first + p];
    const T* v = vec + 3 * e;
    const T r2 = v[0] * v[0] + v[1] * v[1] + v[2] * v[2];
    if (!(r2 < rc2)) continue;
    TORCH_CHECK_VALUE(r2 > 0, "edge ", e, " has zero length: two atoms at the same position");
    if constexpr (std::is_arithmetic_v<S>) {
      env.x[n] = v[0]; env.y[n] = v[1]; env.z[n] = v[2];
      env.r[n] = std::sqrt(r2);
    } else {
      const T* t = tan + 3 * e;
      env.x[n] = S(v[0], t[0]); env.y[n] = S(v[1], t[1]); env.z[n] = S(v[2], t[2]);
      env.r[n] = sqrt(env.x[n] * env.x[n] + env.y[n] * env.y[n] + env.z[n] * env.z[n]);
    }
    env.species[n] = g.species[g.neighbor[e]];
    env.edge[n] = e;
    ++n;
  }
  env.resize(n);
}

// Adds gc · ∂cos θ_ab/∂r_a and gc · ∂cos θ_ab/∂r_b, where cos θ_ab = r_a·r_b / (|r_a||r_b|) = c and
// inv = 1/(|r_a||r_b|):  ∂c/∂r_a = r_b · inv − c r_a/|r_a|²  (and symmetrically for b).
template <typename S>
inline void add_cosine_gradient(const Environment<S>& env, int64_t a, int64_t b, const S& c, const S& inv,
                                const S& gc, S* gx, S* gy, S* gz) {
  const S ca = c / (env.r[a] * env.r[a]), cb = c / (env.r[b] * env.r[b]);
  gx[a] += gc * (env.x[b] * inv - ca * env.x[a]);
  gy[a] += gc * (env.y[b] * inv - ca * env.y[a]);
  gz[a] += gc * (env.z[b] * inv - ca * env.z[a]);
  gx[b] += gc * (env.x[a] * inv - cb * env.x[b]);
  gy[b] += gc * (env.y[a] * inv - cb * env.y[b]);
  gz[b] += gc * (env.z[a] * inv - cb * env.z[b]);
}

// Adds g_a r_a/|r_a| for every neighbour: the gradient of terms that depend only on |r_a|.
template <typename S>
inline void add_radial_gradient(const Environment<S>& env, const std::vector<S>& g, S* gx, S* gy, S* gz) {
  for (int64_t a = 0; a < env.size(); ++a) {
    const S t = g[a] / env.r[a];
    gx[a] += t * env.x[a]; gy[a] += t * env.y[a]; gz[a] += t * env.z[a];
  }
}

// Σ_k a[k] b[k] with four partial sums. Without -ffast-math the compiler keeps one running sum, and
// every step then waits for the previous addition; independent sums overlap (and use SIMD lanes).
template <typename S>
inline S dot(const S* a, const S* b, int64_t n) {
  S s0(0), s1(0), s2(0), s3(0);
  int64_t k = 0;
  for (; k + 4 <= n; k += 4) {
    s0 += a[k] * b[k];
    s1 += a[k + 1] * b[k + 1];
    s2 += a[k + 2] * b[k + 2];
    s3 += a[k + 3] * b[k + 3];
  }
  for (; k < n; ++k) s0 += a[k] * b[k];
  return (s0 + s1) + (s2 + s3);
}

// The maximal runs [begin, end) of neighbours of one species (see Graph): calls f(species, begin, end).
template <typename S, typename F>
inline void for_each_species_run(const Environment<S>& env, const F& f) {
  const int64_t n = env.size();
  for (int64_t begin = 0, end; begin < n; begin = end) {
    for (end = begin + 1; end < n && env.species[end] == env.species[begin]; ++end) {
    }
    f(env.species[begin], begin, end);
  }
}

// Per-thread scratch buffer K of type B, kept between calls so atoms need no allocations.
// Within one call chain each live buffer of a type has its own K (drivers use K >= 100).
template <class B, int K>
B& scratch() {
  thread_local B buffer;
  return buffer;
}

// Centres in parallel (ATen's OpenMP pool). Chunks of at least 128 atoms: a small structure runs
// on the calling thread, which keeps fork/join costs (and spinning threads on a busy machine) away.
template <typename F>
void for_each_centre(int64_t n, const F& f) {
  at::parallel_for(0, n, 128, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) f(i);
  });
}

// G[i, :] for every centre.
template <class D, typename T>
void run_forward(const D& d, const Graph& g, const T* vec, T* G) {
  const int64_t F = d.n_features();
  for_each_centre(g.n_local, [&](int64_t i) {
    auto& env = scratch<Environment<T>, 100>();
    gather<T>(g, i, vec, nullptr, d.max_cutoff(), env);
    d.template forward<T>(env, G + i * F);
  });
}

// grad_vec[e, :] = Σ_f dG[i, f] ∂G[i, f]/∂r_e  (vector-Jacobian product).
template <class D, typename T>
void run_backward(const D& d, const Graph& g, const T* vec, const T* dG, T* grad_vec) {
  const int64_t F = d.n_features();
  for_each_centre(g.n_local, [&](int64_t i) {
    auto& env = scratch<Environment<T>, 101>();
    auto& gx = scratch<std::vector<T>, 100>();
    auto& gy = scratch<std::vector<T>, 101>();
    auto& gz = scratch<std::vector<T>, 102>();
    gather<T>(g, i, vec, nullptr, d.max_cutoff(), env);
    const int64_t n = env.size();
    gx.assign(n, T(0)); gy.assign(n, T(0)); gz.assign(n, T(0));
    d.template backward<T>(env, dG + i * F, gx.data(), gy.data(), gz.data());
    for (int64_t a = 0; a < n; ++a) {
      T* out = grad_vec + 3 * env.edge[a];
      out[0] = gx[a]; out[1] = gy[a]; out[2] = gz[a];
    }
  });
}

// run_forward that also keeps the intermediates the VJP needs (descriptors with a cache: ACSF):
// ecache [E · d.edge_cache_size()], centre i's block at g.row_ptr[i] · edge_cache_size() (its
// neighbours inside the cutoff are at most its edges), acache [n_local, d.atom_cache_size()].
template <class D, typename T>
void run_forward_saving(const D& d, const Graph& g, const T* vec, T* G, T* ecache, T* acache) {
  const int64_t F = d.n_features(), A = d.atom_cache_size(), W = d.edge_cache_size();
  for_each_centre(g.n_local, [&](int64_t i) {
    auto& env = scratch<Environment<T>, 100>();
    gather<T>(g, i, vec, nullptr, d.max_cutoff(), env);
    d.template forward<T>(env, G + i * F, ecache + g.row_ptr[i] * W, acache + i * A);
  });
}

// run_backward from the intermediates of run_forward_saving (same vec, same graph).
template <class D, typename T>
void run_backward_saved(const D& d, const Graph& g, const T* vec, const T* dG, const T* ecache,
                        const T* acache, T* grad_vec) {
  const int64_t F = d.n_features(), A = d.atom_cache_size(), W = d.edge_cache_size();
  for_each_centre(g.n_local, [&](int64_t i) {
    auto& env = scratch<Environment<T>, 101>();
    auto& gx = scratch<std::vector<T>, 100>();
    auto& gy = scratch<std::vector<T>, 101>();
    auto& gz = scratch<std::vector<T>, 102>();
    gather<T>(g, i, vec, nullptr, d.max_cutoff(), env);
    const int64_t n = env.size();
    gx.assign(n, T(0)); gy.assign(n, T(0)); gz.assign(n, T(0));
    d.template backward<T>(env, dG + i * F, gx.data(), gy.data(), gz.data(), ecache + g.row_ptr[i] * W,
                           acache + i * A);
    for (int64_t a = 0; a < n; ++a) {
      T* out = grad_vec + 3 * env.edge[a];
      out[0] = gx[a]; out[1] = gy[a]; out[2] = gz[a];
    }
  });
}

// tG[i, :] = Σ_e ∂G[i, :]/∂r_e · t_e  (Jacobian-vector product, forward mode).
template <class D, typename T>
void run_jvp(const D& d, const Graph& g, const T* vec, const T* tan, T* tG) {
  const int64_t F = d.n_features();
  for_each_centre(g.n_local, [&](int64_t i) {
    auto& env = scratch<Environment<Dual<T>>, 100>();
    auto& G = scratch<std::vector<Dual<T>>, 100>();
    gather<Dual<T>>(g, i, vec, tan, d.max_cutoff(), env);
    G.assign(F, Dual<T>());
    d.template forward<Dual<T>>(env, G.data());
    for (int64_t f = 0; f < F; ++f) tG[i * F + f] = G[f].d;
  });
}

// out[e, :] = Σ_f dG[i, f] Σ_e' ∂²G[i, f]/∂r_e∂r_e' · t_e'  (Hessian-vector product).
template <class D, typename T>
void run_hvp(const D& d, const Graph& g, const T* vec, const T* dG, const T* tan, T* out) {
  const int64_t F = d.n_features();
  for_each_centre(g.n_local, [&](int64_t i) {
    auto& env = scratch<Environment<Dual<T>>, 101>();
    auto& dGi = scratch<std::vector<Dual<T>>, 101>();
    auto& gx = scratch<std::vector<Dual<T>>, 102>();
    auto& gy = scratch<std::vector<Dual<T>>, 103>();
    auto& gz = scratch<std::vector<Dual<T>>, 104>();
    gather<Dual<T>>(g, i, vec, tan, d.max_cutoff(), env);
    const int64_t n = env.size();
    dGi.resize(F);
    for (int64_t f = 0; f < F; ++f) dGi[f] = Dual<T>(dG[i * F + f], T(0));
    gx.assign(n, Dual<T>()); gy.assign(n, Dual<T>()); gz.assign(n, Dual<T>());
    d.template backward<Dual<T>>(env, dGi.data(), gx.data(), gy.data(), gz.data());
    for (int64_t a = 0; a < n; ++a) {
      T* o = out + 3 * env.edge[a];
      o[0] = gx[a].d; o[1] = gy[a].d; o[2] = gz[a].d;
    }
  });
}

}  // namespace xtalnn
