// Chebyshev descriptors (Artrith, Urban, Ceder, Phys. Rev. B 96, 014112 (2017); aenet's "Chebyshev").
//
//   radial   R_α = Σ_j          T_α(2 r_ij / R_c − 1) f_c(r_ij)                       α = 0 … n_r
//   angular  A_α = Σ_{j<k}      T_α(cos θ_ijk) f_c(r_ij) f_c(r_ik)                    α = 0 … n_a
// with separate radial and angular cutoffs, once unweighted (structure) and once with each
// neighbour weighted by its element's "type spin" w_e (w_j for R, w_j w_k for A), so the number of
// features, 2 (n_r + 1) + 2 (n_a + 1), does not grow with the number of elements (one element: no
// weighted half). Default spins as aenet: for n elements −⌊n/2⌋ … ⌊n/2⌋, skipping 0 when n is even.
//
// Feature order: [R_0…R_nr] [A_0…A_na] [weighted R] [weighted A].
#pragma once

#include <torch/types.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "common/cutoff.h"
#include "descriptors/environment.h"

namespace xtalnn {

struct Chebyshev {
  int64_t n_elements;
  double rc_radial, rc_angular;
  int64_t n_radial, n_angular;  // polynomial orders
  CutoffType cutoff_type;
  std::vector<double> spin;     // per element
  bool weighted;
  int64_t off_angular, off_wradial, off_wangular, n_feat;

  // spec (float64): [n_elements, radial_cutoff, radial_order, angular_cutoff, angular_order,
  //                  cutoff_type, spin_0 … spin_{n−1}]
  explicit Chebyshev(const torch::Tensor& spec);

  double max_cutoff() const { return std::max(rc_radial, rc_angular); }
  int64_t n_features() const { return n_feat; }

  template <typename S>
  void forward(const Environment<S>& env, S* G) const;
  template <typename S>
  void backward(const Environment<S>& env, const S* dG, S* gx, S* gy, S* gz) const;
};

// T_0 … T_n at x, and dT/dx when dT is non-null.
template <typename S>
inline void chebyshev_polynomials(const S& x, int64_t n, S* Tn, S* dT) {
  Tn[0] = S(1);
  if (dT) dT[0] = S(0);
  if (n == 0) return;
  Tn[1] = x;
  if (dT) dT[1] = S(1);
  for (int64_t k = 1; k < n; ++k) {
    Tn[k + 1] = real_t<S>(2) * x * Tn[k] - Tn[k - 1];
    if (dT) dT[k + 1] = real_t<S>(2) * (Tn[k] + x * dT[k]) - dT[k - 1];
  }
}

// ---------------------------------------------------------------------------------------------

template <typename S>
void Chebyshev::forward(const Environment<S>& env, S* G) const {
  using T = real_t<S>;
  const int64_t n = env.size();
  auto& Tn = scratch<std::vector<S>, 0>();
  auto& fca = scratch<std::vector<S>, 1>();
  Tn.resize(std::max(n_radial, n_angular) + 1);
  fca.resize(n);
  const T scale = T(2.0 / rc_radial);
  S fc, dfc;
  for (int64_t a = 0; a < n; ++a) {
    const S& r = env.r[a];
    fca[a] = S(0);
    if (value(r) < T(rc_angular)) cutoff(cutoff_type, r, rc_angular, fca[a], dfc);
    if (!(value(r) < T(rc_radial))) continue;
    cutoff(cutoff_type, r, rc_radial, fc, dfc);
    chebyshev_polynomials<S>(r * scale - T(1), n_radial, Tn.data(), nullptr);
    const T w = T(spin[env.species[a]]);
    for (int64_t k = 0; k <= n_radial; ++k) {
      const S t = Tn[k] * fc;
      G[k] += t;
      if (weighted) G[off_wradial + k] += w * t;
    }
  }
  for (int64_t a = 0; a < n; ++a) {
    if (!(value(env.r[a]) < T(rc_angular))) continue;
    for (int64_t b = a + 1; b < n; ++b) {
      if (!(value(env.r[b]) < T(rc_angular))) continue;
      const S c = (env.x[a] * env.x[b] + env.y[a] * env.y[b] + env.z[a] * env.z[b]) / (env.r[a] * env.r[b]);
      chebyshev_polynomials<S>(c, n_angular, Tn.data(), nullptr);
      const S f = fca[a] * fca[b];
      const T w = T(spin[env.species[a]] * spin[env.species[b]]);
      for (int64_t k = 0; k <= n_angular; ++k) {
        const S t = Tn[k] * f;
        G[off_angular + k] += t;
        if (weighted) G[off_wangular + k] += w * t;
      }
    }
  }
}

template <typename S>
void Chebyshev::backward(const Environment<S>& env, const S* dG, S* gx, S* gy, S* gz) const {
  using T = real_t<S>;
  const int64_t n = env.size();
  auto& Tn = scratch<std::vector<S>, 2>();
  auto& dT = scratch<std::vector<S>, 3>();
  auto& fca = scratch<std::vector<S>, 4>();
  auto& dfca = scratch<std::vector<S>, 5>();
  auto& gr = scratch<std::vector<S>, 6>();
  const int64_t nmax = std::max(n_radial, n_angular) + 1;
  Tn.resize(nmax); dT.resize(nmax);
  fca.resize(n); dfca.resize(n); gr.assign(n, S(0));
  const T scale = T(2.0 / rc_radial);
  S fc, dfc;
  for (int64_t a = 0; a < n; ++a) {
    const S& r = env.r[a];
    fca[a] = S(0); dfca[a] = S(0);
    if (value(r) < T(rc_angular)) cutoff(cutoff_type, r, rc_angular, fca[a], dfca[a]);
    if (!(value(r) < T(rc_radial))) continue;
    cutoff(cutoff_type, r, rc_radial, fc, dfc);
    chebyshev_polynomials<S>(r * scale - T(1), n_radial, Tn.data(), dT.data());
    const T w = T(spin[env.species[a]]);
    S acc(0);
    for (int64_t k = 0; k <= n_radial; ++k) {
      S wk = dG[k];
      if (weighted) wk += w * dG[off_wradial + k];
      acc += wk * (dT[k] * scale * fc + Tn[k] * dfc);
    }
    gr[a] = acc;
  }
  for (int64_t a = 0; a < n; ++a) {
    if (!(value(env.r[a]) < T(rc_angular))) continue;
    for (int64_t b = a + 1; b < n; ++b) {
      if (!(value(env.r[b]) < T(rc_angular))) continue;
      const S inv = T(1) / (env.r[a] * env.r[b]);
      const S c = (env.x[a] * env.x[b] + env.y[a] * env.y[b] + env.z[a] * env.z[b]) * inv;
      chebyshev_polynomials<S>(c, n_angular, Tn.data(), dT.data());
      const T w = T(spin[env.species[a]] * spin[env.species[b]]);
      S sT(0), sdT(0);
      for (int64_t k = 0; k <= n_angular; ++k) {
        S wk = dG[off_angular + k];
        if (weighted) wk += w * dG[off_wangular + k];
        sT += wk * Tn[k];
        sdT += wk * dT[k];
      }
      const S gc = sdT * fca[a] * fca[b];
      gr[a] += sT * dfca[a] * fca[b];
      gr[b] += sT * fca[a] * dfca[b];
      add_cosine_gradient(env, a, b, c, inv, gc, gx, gy, gz);
    }
  }
  add_radial_gradient(env, gr, gx, gy, gz);
}

}  // namespace xtalnn
