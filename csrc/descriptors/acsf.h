// Atom-centred symmetry functions (Behler, J. Chem. Phys. 134, 074711 (2011)).
//
//   G2_i = Σ_j exp(−η (r_ij − R_s)²) f_c(r_ij)                                  per element of j
//   G4_i = 2^{1−ζ} Σ_{j<k} (1 + λ cos θ_ijk)^ζ exp(−η (r_ij² + r_ik² + r_jk²)) f_c(r_ij) f_c(r_ik) f_c(r_jk)
//   G5_i = 2^{1−ζ} Σ_{j<k} (1 + λ cos θ_ijk)^ζ exp(−η (r_ij² + r_ik²)) f_c(r_ij) f_c(r_ik)
// G4/G5 per unordered element pair of (j, k); each unordered neighbour pair counted once
// (dscribe's convention). η in Å⁻², R_s in Å.
//
// Feature order: [G2: element e, then (η, R_s)] [G4: pair (a ≤ b), then (η, ζ, λ)] [G5: likewise];
// pairs in the order (0,0), (0,1), …, (0,n−1), (1,1), …, (n−1,n−1).
//
// G5 with integer ζ (the usual case) is evaluated without a loop over neighbour pairs: with
// (1 + λc)^ζ = Σ_n C(ζ,n) λ^n c^n and c^n = (r̂_j·r̂_k)^n = Σ_{|α|=n} n!/α! r̂_j^α r̂_k^α,
//   Σ_{j<k} B(r_j) B(r_k) c^n  =  ½ [Σ_α n!/α! M_α²  −  Σ_j B(r_j)²]   (same element; cross pairs: Σ M^a M^b)
// with the Cartesian moments M_α = Σ_j B(r_j) r̂_j^α. The cost per atom is O(neighbours × moments)
// instead of O(neighbours²). G4 (which depends on r_jk) always loops over pairs.
#pragma once

#include <torch/types.h>

#include <algorithm>
#include <cstring>
#include <array>
#include <tuple>
#include <utility>
#include <vector>

#include "common/columns.h"
#include "common/cutoff.h"
#include "descriptors/environment.h"

namespace xtalnn {

// The radial terms of one centre's neighbours, by columns ([k * n + a] for neighbour a of n).
template <typename S>
struct RadialColumns {
  std::vector<S> fc, dfc;  // f_c(r_a), f_c'(r_a)
  std::vector<S> g2;       // [p * n + a]: exp(−η_p (r_a − R_s,p)²), every G2 function p
  std::vector<S> e4, e5;   // [u * n + a]: exp(−η_u r_a²), the distinct η of G4 / G5
  std::vector<S> work;
};

struct ACSF {
  struct Angular {
    double eta, zeta, lambda, prefactor;  // prefactor = 2^{1−ζ}
    int eta_index;                        // into the distinct η of its block
  };

  int64_t n_elements;
  double rc;
  CutoffType cutoff_type;
  std::vector<double> eta2, rs2;
  std::vector<Angular> g4, g5;
  std::vector<double> etas4, etas5;
  int64_t n_pairs, off4, off5, n_feat;

  // G2 on a uniform grid (one η, R_s = R_0 + kΔ): exp(−η(r−R_{k+1})²) = exp(−η(r−R_k)²) · q · c_k with
  // q = exp(2ηΔ(r−R_0)) and c_k = exp(−ηΔ²(2k+1)): two exponentials per neighbour instead of n2.
  bool g2_uniform = false;
  double g2_step = 0;
  std::vector<double> g2_ratio;  // c_k

  // Cartesian moments for G5 (used when every G5 ζ is an integer)
  bool g5_moments = false;
  int max_degree = 0;
  std::vector<std::array<int, 3>> monomials;  // exponents (i, j, k), ordered by degree i + j + k
  std::vector<double> multinomial;            // n! / (i! j! k!)
  std::vector<int> degree_start;              // monomials of degree n: [degree_start[n], degree_start[n+1])
  // r̂^α_m = r̂^α_parent[m] · r̂_axis[m] (m ≥ 1): one product per monomial
  std::vector<int> parent, parent_axis;
  // ∂r̂^α/∂r̂_c = α_c r̂^(α − e_c): for axis c, the monomials m with α_c > 0, the index of α − e_c and α_c
  struct Lowering {
    std::vector<int> m, lower;
    std::vector<double> power;
  };
  std::array<Lowering, 3> lowering;
  std::vector<std::vector<double>> g5_coef;   // per G5 function: 2^{1−ζ} C(ζ, n) λ^n, n = 0 … ζ

  // spec (float64): [n_elements, cutoff, cutoff_type, n2, n4, n5, (η, R_s)×n2, (η, ζ, λ)×n4, (η, ζ, λ)×n5]
  explicit ACSF(const torch::Tensor& spec);

  double max_cutoff() const { return rc; }
  int64_t n_features() const { return n_feat; }
  int64_t pair_channel(int64_t a, int64_t b) const {
    if (a > b) std::swap(a, b);
    return a * n_elements - a * (a - 1) / 2 + (b - a);
  }

  // Intermediates of the forward pass that the VJP needs, kept when the caller will differentiate
  // (edge_vec requires grad) so that the backward does not evaluate them again:
  //   per edge, edge_cache_size() numbers: f_c(r), f_c'(r) | G2 Gaussians: the two seeds of the
  //     uniform-grid recurrence, or all n2 | exp(−η_u r²) for the G4 η | the same for the G5 η
  //     (7 numbers per edge for ACSF.default), stored as one block per centre i of n_i neighbours
  //     inside the cutoff: columns of length n_i, one after the other, at the centre's first edge
  //     position in the Graph times edge_cache_size(), so both passes copy whole columns;
  //   per centre (stride atom_cache_size()): the G5 moments M[e, u, m] (empty without them).
  // Memory: linear in edges and atoms.
  int64_t edge_cache_size() const {
    return static_cast<int64_t>(2 + (g2_uniform ? 2 : eta2.size()) + etas4.size() + etas5.size());
  }
  int64_t atom_cache_size() const {
    return g5_moments ? n_elements * static_cast<int64_t>(etas5.size()) * static_cast<int64_t>(monomials.size()) : 0;
  }

  // ecache / acache: if non-null, forward also writes the intermediates above (this centre's block
  // and row) and backward reads them instead of evaluating them again. The values are the same either way.
  template <typename S>
  void forward(const Environment<S>& env, S* G, S* ecache = nullptr, S* acache = nullptr) const;
  template <typename S>
  void backward(const Environment<S>& env, const S* dG, S* gx, S* gy, S* gz, const S* ecache = nullptr,
                const S* acache = nullptr) const;

 private:
  void init_moments();
  void init_radial_grid();
  template <typename S>
  void radial_columns(const Environment<S>& env, const S* ecache_in, S* ecache_out, RadialColumns<S>& c) const;
  template <typename S>
  void moments(const Environment<S>& env, const std::vector<S>& B5, std::vector<S>& P, std::vector<S>& M,
               std::vector<S>& D) const;
  template <typename S>
  void monomial_powers(const Environment<S>& env, std::vector<S>& P) const;
  template <typename S>
  void g5_from_moments(const std::vector<S>& M, const std::vector<S>& D, S* G) const;
  template <typename S>
  void g5_moments_backward(const Environment<S>& env, const S* dG, const std::vector<S>& B5,
                           const std::vector<S>& dB5, std::vector<S>& gr, S* gx, S* gy, S* gz,
                           const S* acache) const;
};

// Tensor level (acsf.cpp). G[n_local, F] and the intermediates of its VJP (ecache [E, edge_cache_size()],
// acache [n_local, atom_cache_size()], and the edge grouping `graph`, see Graph::index), for callers
// that will differentiate; and the VJP from them (the very tensors the forward was given and checked:
// they are not checked again), equal to DescriptorKernels<ACSF>::backward.
struct ACSFSaved {
  torch::Tensor G, ecache, acache, graph;
};
ACSFSaved acsf_forward_saving(const torch::Tensor& spec, const torch::Tensor& species,
                              const torch::Tensor& edge_index, const torch::Tensor& edge_vec, int64_t n_local);
torch::Tensor acsf_backward_saved(const torch::Tensor& spec, const torch::Tensor& species,
                                  const torch::Tensor& edge_index, const torch::Tensor& edge_vec, int64_t n_local,
                                  const torch::Tensor& dG, const torch::Tensor& ecache, const torch::Tensor& acache,
                                  const torch::Tensor& graph);

// 1 + λ cos θ, clamped at 0: rounding can push cos θ of a collinear triplet past ±1, and a
// non-integer ζ would turn the tiny negative base into NaN.
template <typename S>
inline S angular_base(const S& c, double lambda) {
  const S base = real_t<S>(1) + real_t<S>(lambda) * c;
  return value(base) > 0 ? base : S(0);
}

// One η's share of the G5 moment VJP for kG5Block neighbours (columns p[m * ld + l], l < kG5Block):
//   t_l = Σ_m dM_m p_m,l,   r_c,l = Σ_{k < nk} Q_c,k p_k,l,
//   g_l += (t_l + 2 dD b_l) db_l,   (nx, ny, nz)_l += b_l (r_0, r_1, r_2)_l.
constexpr int kG5Block = 4;

template <typename S>
inline void g5_block(const S* p, int64_t ld, int64_t nk, int64_t nm, const S* dM, const S* q0, const S* q1,
                     const S* q2, const S* b, const S* db, const S& twice_dD, S* g, S* nx, S* ny, S* nz) {
  constexpr int kB = kG5Block;
  S t[kB], r0[kB], r1[kB], r2[kB];
  for (int l = 0; l < kB; ++l) t[l] = r0[l] = r1[l] = r2[l] = S(0);
  for (int64_t m = 0; m < nk; ++m) {
    const S* pm = p + m * ld;
    for (int l = 0; l < kB; ++l) {
      t[l] += dM[m] * pm[l];
      r0[l] += q0[m] * pm[l];
      r1[l] += q1[m] * pm[l];
      r2[l] += q2[m] * pm[l];
    }
  }
  for (int64_t m = nk; m < nm; ++m)
    for (int l = 0; l < kB; ++l) t[l] += dM[m] * p[m * ld + l];
  for (int l = 0; l < kB; ++l) {
    g[l] += (t[l] + twice_dD * b[l]) * db[l];
    nx[l] += b[l] * r0[l];
    ny[l] += b[l] * r1[l];
    nz[l] += b[l] * r2[l];
  }
}

#if defined(__GNUC__)
// float64: the four lanes as one GCC vector (a 256-bit register with AVX, two 128-bit ones without),
// so that the accumulators stay in registers.
template <>
inline void g5_block<double>(const double* p, int64_t ld, int64_t nk, int64_t nm, const double* dM,
                             const double* q0, const double* q1, const double* q2, const double* b,
                             const double* db, const double& twice_dD, double* g, double* nx, double* ny,
                             double* nz) {
  static_assert(kG5Block == 4, "one vector of four doubles per block");
  typedef double v4d __attribute__((vector_size(32)));
  auto load = [](const double* x) {
    v4d v;
    std::memcpy(&v, x, sizeof v);
    return v;
  };
  auto store = [](double* x, v4d v) { std::memcpy(x, &v, sizeof v); };
  v4d t = {0, 0, 0, 0}, r0 = t, r1 = t, r2 = t;
  for (int64_t m = 0; m < nk; ++m) {
    const v4d pm = load(p + m * ld);
    t += dM[m] * pm;
    r0 += q0[m] * pm;
    r1 += q1[m] * pm;
    r2 += q2[m] * pm;
  }
  for (int64_t m = nk; m < nm; ++m) t += dM[m] * load(p + m * ld);
  const v4d bv = load(b);
  store(g, load(g) + (t + twice_dD * bv) * load(db));
  store(nx, load(nx) + bv * r0);
  store(ny, load(ny) + bv * r1);
  store(nz, load(nz) + bv * r2);
}
#endif

// Row length of per-neighbour columns (the G5 monomials): n rounded up, with room for a block of
// 8 lanes that starts at any neighbour.
inline int64_t column_stride(int64_t n) { return (n + 15) / 8 * 8; }

// B[u * ld + a] = e[u * n + a] f_c(r_a) for the exponentials e = exp(−η_u r_a²) of radial_columns(), and,
// if dB is non-null, dB = ∂B/∂r = e (f_c' − 2η_u r f_c); the padding [n, ld) of each row is zero.
template <typename S>
void radial_weights(const std::vector<double>& etas, const RadialColumns<S>& c, const std::vector<S>& e,
                    const S* r, int64_t n, int64_t ld, std::vector<S>& B, std::vector<S>* dB) {
  using T = real_t<S>;
  const int64_t ne = etas.size();
  B.assign(ne * ld, S(0));
  if (dB) dB->assign(ne * ld, S(0));
  for (int64_t u = 0; u < ne; ++u) {
    const T two_eta = T(2 * etas[u]);
    const S* eu = e.data() + u * n;
    S* Bu = B.data() + u * ld;
    for (int64_t a = 0; a < n; ++a) Bu[a] = eu[a] * c.fc[a];
    if (!dB) continue;
    S* dBu = dB->data() + u * ld;
    for (int64_t a = 0; a < n; ++a) dBu[a] = eu[a] * (c.dfc[a] - two_eta * r[a] * c.fc[a]);
  }
}

// ---------------------------------------------------------------------------------------------

template <typename S>
void ACSF::forward(const Environment<S>& env, S* G, S* ecache, S* acache) const {
  using T = real_t<S>;
  const int64_t n = env.size(), n2 = eta2.size(), n4 = g4.size(), n5 = g5.size();
  const int64_t ne4 = etas4.size(), ne5 = etas5.size(), ld = column_stride(n);
  auto& cols = scratch<RadialColumns<S>, 0>();
  auto& B4 = scratch<std::vector<S>, 1>();
  auto& B5 = scratch<std::vector<S>, 2>();
  radial_columns<S>(env, nullptr, ecache, cols);
  const S* fc = cols.fc.data();
  for_each_species_run(env, [&](int64_t e, int64_t begin, int64_t end) {
    for (int64_t p = 0; p < n2; ++p) G[e * n2 + p] += dot(cols.g2.data() + p * n + begin, fc + begin, end - begin);
  });
  radial_weights<S>(etas4, cols, cols.e4, env.r.data(), n, ld, B4, nullptr);
  radial_weights<S>(etas5, cols, cols.e5, env.r.data(), n, ld, B5, nullptr);
  if (g5_moments) {
    auto& P = scratch<std::vector<S>, 3>();
    auto& M = scratch<std::vector<S>, 4>();
    auto& D = scratch<std::vector<S>, 5>();
    moments(env, B5, P, M, D);
    g5_from_moments(M, D, G);
    if (acache) std::copy(M.begin(), M.end(), acache);
  }
  const int64_t n5_pairs = g5_moments ? 0 : n5;
  if (n4 + n5_pairs == 0) return;
  const T rc2 = T(rc * rc);
  auto& C = scratch<std::vector<S>, 6>();
  C.resize(ne4);
  for (int64_t a = 0; a < n; ++a) {
    for (int64_t b = a + 1; b < n; ++b) {
      const S c = (env.x[a] * env.x[b] + env.y[a] * env.y[b] + env.z[a] * env.z[b]) / (env.r[a] * env.r[b]);
      const int64_t ch = pair_channel(env.species[a], env.species[b]);
      S* G5 = G + off5 + ch * n5;
      for (int64_t p = 0; p < n5_pairs; ++p) {
        const Angular& q = g5[p];
        G5[p] += T(q.prefactor) * power(angular_base(c, q.lambda), q.zeta) * B5[q.eta_index * ld + a] *
                 B5[q.eta_index * ld + b];
      }
      if (n4 == 0) continue;
      const S dx = env.x[b] - env.x[a], dy = env.y[b] - env.y[a], dz = env.z[b] - env.z[a];
      const S rab2 = dx * dx + dy * dy + dz * dz;
      if (!(value(rab2) < rc2)) continue;
      S fcab, dfcab;
      cutoff(cutoff_type, sqrt(rab2), rc, fcab, dfcab);
      for (int64_t u = 0; u < ne4; ++u) C[u] = exp(T(-etas4[u]) * rab2) * fcab;
      S* G4 = G + off4 + ch * n4;
      for (int64_t p = 0; p < n4; ++p) {
        const Angular& q = g4[p];
        G4[p] += T(q.prefactor) * power(angular_base(c, q.lambda), q.zeta) * B4[q.eta_index * ld + a] *
                 B4[q.eta_index * ld + b] * C[q.eta_index];
      }
    }
  }
}

template <typename S>
void ACSF::backward(const Environment<S>& env, const S* dG, S* gx, S* gy, S* gz, const S* ecache,
                    const S* acache) const {
  using T = real_t<S>;
  const int64_t n = env.size(), n2 = eta2.size(), n4 = g4.size(), n5 = g5.size();
  const int64_t ne4 = etas4.size(), ne5 = etas5.size(), ld = column_stride(n);
  auto& cols = scratch<RadialColumns<S>, 0>();
  auto& gr = scratch<std::vector<S>, 7>();
  auto& B4 = scratch<std::vector<S>, 8>();
  auto& dB4 = scratch<std::vector<S>, 9>();
  auto& B5 = scratch<std::vector<S>, 10>();
  auto& dB5 = scratch<std::vector<S>, 11>();
  radial_columns<S>(env, ecache, nullptr, cols);
  const S* fc = cols.fc.data();
  const S* dfc = cols.dfc.data();
  const S* r = env.r.data();
  gr.assign(n, S(0));
  // G2: gr_a = Σ_p dG[s_a, p] e_p(r_a) (f_c' − 2η_p (r_a − R_s,p) f_c)
  for_each_species_run(env, [&](int64_t e, int64_t begin, int64_t end) {
    for (int64_t p = 0; p < n2; ++p) {
      const S w = dG[e * n2 + p];
      const T two_eta = T(2 * eta2[p]), rs = T(rs2[p]);
      const S* g = cols.g2.data() + p * n;
      for (int64_t a = begin; a < end; ++a) gr[a] += w * g[a] * (dfc[a] - two_eta * (r[a] - rs) * fc[a]);
    }
  });
  radial_weights<S>(etas4, cols, cols.e4, r, n, ld, B4, &dB4);
  radial_weights<S>(etas5, cols, cols.e5, r, n, ld, B5, &dB5);
  if (g5_moments) g5_moments_backward(env, dG, B5, dB5, gr, gx, gy, gz, ecache ? acache : nullptr);
  const int64_t n5_pairs = g5_moments ? 0 : n5;
  if (n4 + n5_pairs > 0) {
    const T rc2 = T(rc * rc);
    auto& C = scratch<std::vector<S>, 12>();
    auto& dC = scratch<std::vector<S>, 13>();
    C.resize(ne4); dC.resize(ne4);
    for (int64_t a = 0; a < n; ++a) {
      for (int64_t b = a + 1; b < n; ++b) {
        const S inv = T(1) / (env.r[a] * env.r[b]);
        const S c = (env.x[a] * env.x[b] + env.y[a] * env.y[b] + env.z[a] * env.z[b]) * inv;
        const int64_t ch = pair_channel(env.species[a], env.species[b]);
        S gc(0), gra(0), grb(0), grab(0);
        const S* w5 = dG + off5 + ch * n5;
        for (int64_t p = 0; p < n5_pairs; ++p) {
          const Angular& q = g5[p];
          const S base = angular_base(c, q.lambda);
          const S pw = power(base, q.zeta - 1);
          const S A = T(q.prefactor) * pw * base, dA = T(q.prefactor * q.zeta * q.lambda) * pw;
          const S& Ba = B5[q.eta_index * ld + a];
          const S& Bb = B5[q.eta_index * ld + b];
          gc += w5[p] * dA * Ba * Bb;
          gra += w5[p] * A * dB5[q.eta_index * ld + a] * Bb;
          grb += w5[p] * A * Ba * dB5[q.eta_index * ld + b];
        }
        S dx(0), dy(0), dz(0), rab(1);
        if (n4 > 0) {
          dx = env.x[b] - env.x[a]; dy = env.y[b] - env.y[a]; dz = env.z[b] - env.z[a];
          const S rab2 = dx * dx + dy * dy + dz * dz;
          if (value(rab2) < rc2) {
            rab = sqrt(rab2);
            S fcab, dfcab;
            cutoff(cutoff_type, rab, rc, fcab, dfcab);
            for (int64_t u = 0; u < ne4; ++u) {
              const S e = exp(T(-etas4[u]) * rab2);
              C[u] = e * fcab;
              dC[u] = e * (dfcab - T(2 * etas4[u]) * rab * fcab);
            }
            const S* w4 = dG + off4 + ch * n4;
            for (int64_t p = 0; p < n4; ++p) {
              const Angular& q = g4[p];
              const S base = angular_base(c, q.lambda);
              const S pw = power(base, q.zeta - 1);
              const S A = T(q.prefactor) * pw * base, dA = T(q.prefactor * q.zeta * q.lambda) * pw;
              const int u = q.eta_index;
              const S& Ba = B4[u * ld + a];
              const S& Bb = B4[u * ld + b];
              const S wA = w4[p] * A;
              gc += w4[p] * dA * Ba * Bb * C[u];
              gra += wA * dB4[u * ld + a] * Bb * C[u];
              grb += wA * Ba * dB4[u * ld + b] * C[u];
              grab += wA * Ba * Bb * dC[u];
            }
          }
        }
        gr[a] += gra;
        gr[b] += grb;
        add_cosine_gradient(env, a, b, c, inv, gc, gx, gy, gz);
        if (n4 > 0) {  // ∂r_ab/∂r_b = (r_b − r_a)/r_ab (grab is zero beyond the cutoff)
          const S t = grab / rab;
          gx[b] += t * dx; gy[b] += t * dy; gz[b] += t * dz;
          gx[a] -= t * dx; gy[a] -= t * dy; gz[a] -= t * dz;
        }
      }
    }
  }
  add_radial_gradient(env, gr, gx, gy, gz);
}

// The radial terms of env's neighbours: evaluated (ecache_in null; written to the centre's block
// ecache_out if that is non-null) or read from what an earlier forward kept (ecache_in, see
// edge_cache_size()).
template <typename S>
void ACSF::radial_columns(const Environment<S>& env, const S* ecache_in, S* ecache_out,
                          RadialColumns<S>& c) const {
  using T = real_t<S>;
  const int64_t n = env.size(), n2 = eta2.size(), ne4 = etas4.size(), ne5 = etas5.size();
  const int64_t nseed = g2_uniform ? 2 : n2;
  const S* r = env.r.data();
  c.fc.resize(n); c.dfc.resize(n); c.g2.resize(n2 * n); c.e4.resize(ne4 * n); c.e5.resize(ne5 * n);
  // seeds: the two exponentials of the uniform G2 grid, or every G2 exponential
  S* seed = g2_uniform ? (c.work.resize(2 * n), c.work.data()) : c.g2.data();
  // the centre's block of the cache: columns fc | dfc | seeds | e4 | e5, each of length n
  const auto columns = [&](auto&& move) {
    move(c.fc.data(), n, 0);
    move(c.dfc.data(), n, n);
    move(seed, nseed * n, 2 * n);
    move(c.e4.data(), ne4 * n, (2 + nseed) * n);
    move(c.e5.data(), ne5 * n, (2 + nseed + ne4) * n);
  };
  if (ecache_in) {
    columns([&](S* column, int64_t count, int64_t at) { std::copy(ecache_in + at, ecache_in + at + count, column); });
  } else {
    cutoff_columns(cutoff_type, rc, r, c.fc.data(), c.dfc.data(), n);
    if (g2_uniform) {  // exp(−η(r − R_0)²) and q = exp(2ηΔ(r − R_0)), see g2_ratio
      const T eta = T(eta2[0]), r0 = T(rs2[0]), slope = T(2 * eta2[0] * g2_step);
      for (int64_t a = 0; a < n; ++a) {
        const S d = r[a] - r0;
        seed[a] = -eta * d * d;
        seed[n + a] = slope * d;
      }
    } else {
      for (int64_t p = 0; p < n2; ++p)
        for (int64_t a = 0; a < n; ++a) {
          const S d = r[a] - T(rs2[p]);
          seed[p * n + a] = T(-eta2[p]) * d * d;
        }
    }
    exp_columns(seed, seed, nseed * n);
    for (int64_t u = 0; u < ne4; ++u)
      for (int64_t a = 0; a < n; ++a) c.e4[u * n + a] = T(-etas4[u]) * r[a] * r[a];
    for (int64_t u = 0; u < ne5; ++u)
      for (int64_t a = 0; a < n; ++a) c.e5[u * n + a] = T(-etas5[u]) * r[a] * r[a];
    exp_columns(c.e4.data(), c.e4.data(), ne4 * n);
    exp_columns(c.e5.data(), c.e5.data(), ne5 * n);
    if (ecache_out)
      columns([&](S* column, int64_t count, int64_t at) { std::copy(column, column + count, ecache_out + at); });
  }
  if (g2_uniform) {  // e_{p+1} = e_p q c_p
    S* g = c.g2.data();
    for (int64_t a = 0; a < n; ++a) g[a] = seed[a];
    for (int64_t p = 0; p + 1 < n2; ++p) {
      const T ratio = T(g2_ratio[p]);
      for (int64_t a = 0; a < n; ++a) g[(p + 1) * n + a] = g[p * n + a] * seed[n + a] * ratio;
    }
  }
}

// Per neighbour a, by columns (neighbours contiguous, so the loops over neighbours vectorise):
// P[m, a] = r̂_a^α_m at [m * column_stride(n) + a] (the padding is zero);  M[e, u, m] = Σ_{a ∈ e} B_u(r_a) P[m, a];
// D[e, u] = Σ_{a ∈ e} B_u(r_a)².  B5[u, a] likewise.
template <typename S>
void ACSF::moments(const Environment<S>& env, const std::vector<S>& B5, std::vector<S>& P, std::vector<S>& M,
                   std::vector<S>& D) const {
  const int64_t n = env.size(), ne5 = etas5.size(), nm = monomials.size(), ld = column_stride(n);
  monomial_powers(env, P);
  M.assign(n_elements * ne5 * nm, S(0));
  D.assign(n_elements * ne5, S(0));
  for_each_species_run(env, [&](int64_t e, int64_t begin, int64_t end) {
    for (int64_t u = 0; u < ne5; ++u) {
      const S* b = B5.data() + u * ld + begin;
      S* Mu = M.data() + (e * ne5 + u) * nm;
      for (int64_t m = 0; m < nm; ++m) Mu[m] += dot(b, P.data() + m * ld + begin, end - begin);
      D[e * ne5 + u] += dot(b, b, end - begin);
    }
  });
}

// P[m, a] = r̂_a^α_m (columns, as in moments()).
template <typename S>
void ACSF::monomial_powers(const Environment<S>& env, std::vector<S>& P) const {
  const int64_t n = env.size(), nm = monomials.size();
  auto& U = scratch<std::vector<S>, 22>();
  const int64_t ld = column_stride(n);
  U.resize(3 * n);
  P.resize(nm * ld);
  for (int64_t a = 0; a < n; ++a) {
    const S inv = real_t<S>(1) / env.r[a];
    U[a] = env.x[a] * inv;
    U[n + a] = env.y[a] * inv;
    U[2 * n + a] = env.z[a] * inv;
    P[a] = S(1);
  }
  for (int64_t m = 1; m < nm; ++m) {
    const S* __restrict src = P.data() + parent[m] * ld;
    const S* __restrict u = U.data() + parent_axis[m] * n;
    S* __restrict dst = P.data() + m * ld;
    for (int64_t a = 0; a < n; ++a) dst[a] = src[a] * u[a];
  }
  for (int64_t m = 0; m < nm; ++m) std::fill(P.data() + m * ld + n, P.data() + (m + 1) * ld, S(0));
}

template <typename S>
void ACSF::g5_from_moments(const std::vector<S>& M, const std::vector<S>& D, S* G) const {
  const int64_t ne5 = etas5.size(), nm = monomials.size(), n5 = g5.size();
  S Sn[33];
  for (int64_t ea = 0; ea < n_elements; ++ea)
    for (int64_t eb = ea; eb < n_elements; ++eb) {
      S* G5 = G + off5 + pair_channel(ea, eb) * n5;
      for (int64_t u = 0; u < ne5; ++u) {
        const S* Ma = M.data() + (ea * ne5 + u) * nm;
        const S* Mb = M.data() + (eb * ne5 + u) * nm;
        for (int d = 0; d <= max_degree; ++d) {
          S acc(0);
          for (int m = degree_start[d]; m < degree_start[d + 1]; ++m) acc += real_t<S>(multinomial[m]) * Ma[m] * Mb[m];
          Sn[d] = ea == eb ? real_t<S>(0.5) * (acc - D[ea * ne5 + u]) : acc;
        }
        for (int64_t p = 0; p < n5; ++p) {
          if (g5[p].eta_index != u) continue;
          const auto& coef = g5_coef[p];
          for (size_t d = 0; d < coef.size(); ++d) G5[p] += real_t<S>(coef[d]) * Sn[d];
        }
      }
    }
}

// Adds ∂(Σ dG·G5)/∂r to gr (radial part, per neighbour) and to g (direction part).
//
// With the moments' adjoints dM[e, u, m] (and dD[e, u]) a neighbour a of element e receives
//   radial:     Σ_u ∂B_u/∂r_a · (2 B_u dD[e, u] + Σ_m dM[e, u, m] P[m, a])
//   direction:  ∂/∂r̂_c Σ_{u,m} B_u dM[e, u, m] r̂^α_m = Σ_u B_u Σ_k Q[e, u, c, k] P[k, a],
// where Q[e, u, c, k] = Σ_{m: α_m = α_k + e_c} (α_m)_c dM[e, u, m] lowers the degree by one. Each sum
// over m or k is a sweep over the species run's neighbours (columns of P), which vectorises.
template <typename S>
void ACSF::g5_moments_backward(const Environment<S>& env, const S* dG, const std::vector<S>& B5,
                               const std::vector<S>& dB5, std::vector<S>& gr, S* gx, S* gy, S* gz,
                               const S* acache) const {
  using T = real_t<S>;
  const int64_t n = env.size(), ne5 = etas5.size(), nm = monomials.size(), n5 = g5.size();
  const int L = max_degree;
  const int64_t nk = degree_start[L];  // monomials of degree < L: the lowered ones
  auto& P = scratch<std::vector<S>, 14>();
  auto& Mv = scratch<std::vector<S>, 15>();
  auto& Dv = scratch<std::vector<S>, 16>();
  auto& dM = scratch<std::vector<S>, 17>();
  auto& dD = scratch<std::vector<S>, 18>();
  auto& Q = scratch<std::vector<S>, 19>();
  const int64_t nM = n_elements * ne5 * nm, nD = n_elements * ne5;
  const S* M = acache;  // moments kept by forward(): only the monomials of the directions are needed
  if (acache) {
    monomial_powers(env, P);
  } else {
    moments(env, B5, P, Mv, Dv);
    M = Mv.data();
  }
  dM.assign(nM, S(0));
  dD.assign(nD, S(0));
  S dS[33];
  for (int64_t ea = 0; ea < n_elements; ++ea)
    for (int64_t eb = ea; eb < n_elements; ++eb) {
      const S* w5 = dG + off5 + pair_channel(ea, eb) * n5;
      for (int64_t u = 0; u < ne5; ++u) {
        for (int d = 0; d <= L; ++d) dS[d] = S(0);
        for (int64_t p = 0; p < n5; ++p) {
          if (g5[p].eta_index != u) continue;
          const auto& coef = g5_coef[p];
          for (size_t d = 0; d < coef.size(); ++d) dS[d] += w5[p] * T(coef[d]);
        }
        const S* Ma = M + (ea * ne5 + u) * nm;
        const S* Mb = M + (eb * ne5 + u) * nm;
        S* dMa = dM.data() + (ea * ne5 + u) * nm;
        S* dMb = dM.data() + (eb * ne5 + u) * nm;
        for (int d = 0; d <= L; ++d) {
          for (int m = degree_start[d]; m < degree_start[d + 1]; ++m) {
            const S w = T(multinomial[m]) * dS[d];
            if (ea == eb) {
              dMa[m] += w * Ma[m];
            } else {
              dMa[m] += w * Mb[m];
              dMb[m] += w * Ma[m];
            }
          }
          if (ea == eb) dD[ea * ne5 + u] -= T(0.5) * dS[d];
        }
      }
    }
  Q.assign(nD * 3 * nk, S(0));  // Q[((e ne5 + u) 3 + c) nk + k]
  for (int64_t eu = 0; eu < nD; ++eu)
    for (int c = 0; c < 3; ++c) {
      const Lowering& low = lowering[c];
      S* q = Q.data() + (eu * 3 + c) * nk;
      for (size_t s = 0; s < low.m.size(); ++s) q[low.lower[s]] += T(low.power[s]) * dM[eu * nm + low.m[s]];
    }
  // Blocks of kB neighbours of one species run: the sums over m and k run in registers, each column
  // of P is loaded once per η. Lanes past the run's end read other columns (or P's zero padding)
  // and are discarded.
  constexpr int kB = kG5Block;
  const int64_t ld = column_stride(n);
  for_each_species_run(env, [&](int64_t e, int64_t begin, int64_t end) {
    for (int64_t a0 = begin; a0 < end; a0 += kB) {
      const int64_t cnt = std::min<int64_t>(kB, end - a0);
      S g[kB], nx[kB], ny[kB], nz[kB];
      for (int l = 0; l < kB; ++l) g[l] = nx[l] = ny[l] = nz[l] = S(0);
      for (int64_t u = 0; u < ne5; ++u) {
        const int64_t eu = e * ne5 + u;
        const S* dMu = dM.data() + eu * nm;
        const S* q0 = Q.data() + eu * 3 * nk;
        const S* q1 = q0 + nk;
        const S* q2 = q1 + nk;
        g5_block(P.data() + a0, ld, nk, nm, dMu, q0, q1, q2, B5.data() + u * ld + a0, dB5.data() + u * ld + a0,
                 T(2) * dD[eu], g, nx, ny, nz);  // B5, dB5 padded: all kB lanes are in bounds
      }
      // the direction part: project ∂/∂r̂ onto the plane ⟂ r̂ and divide by r
      for (int64_t l = 0; l < cnt; ++l) {
        const int64_t a = a0 + l;
        gr[a] += g[l];
        const S inv = T(1) / env.r[a];
        const S ux = env.x[a] * inv, uy = env.y[a] * inv, uz = env.z[a] * inv;
        const S radial = nx[l] * ux + ny[l] * uy + nz[l] * uz;
        gx[a] += (nx[l] - radial * ux) * inv;
        gy[a] += (ny[l] - radial * uy) * inv;
        gz[a] += (nz[l] - radial * uz) * inv;
      }
    }
  });
}

}  // namespace xtalnn
