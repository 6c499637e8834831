// Elementwise functions over columns (one value per neighbour, contiguous), written so that the
// compiler vectorises them: a branch-free exp and the cosine cutoff's cos/sin for float64, whose
// libm calls are scalar and were ~13% of the ACSF op. Other scalar types (float, Dual) use libm
// through the overloads of dual.h.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "common/cutoff.h"
#include "common/dual.h"

namespace xtalnn {

namespace detail {

// c[0] x^(N−1) + c[1] x^(N−2) + … + c[N−1] (Horner; unrolled by the compiler).
template <size_t N>
inline double horner(double x, const double (&c)[N]) {
  double p = c[0];
  for (size_t k = 1; k < N; ++k) p = p * x + c[k];
  return p;
}

// Taylor coefficients, highest power first: exp t to t¹³; −sin t / t and cos t in powers of t² to t²⁰ / t²².
constexpr double kExpTaylor[] = {1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0,
                                 1.0 / 362880.0, 1.0 / 40320.0, 1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0,
                                 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0};
constexpr double kMinusSincTaylor[] = {-1.0 / 51090942171709440000.0, 1.0 / 121645100408832000.0,
                                       -1.0 / 355687428096000.0, 1.0 / 1307674368000.0, -1.0 / 6227020800.0,
                                       1.0 / 39916800.0, -1.0 / 362880.0, 1.0 / 5040.0, -1.0 / 120.0,
                                       1.0 / 6.0, -1.0};
constexpr double kCosTaylor[] = {-1.0 / 1124000727777607680000.0, 1.0 / 2432902008176640000.0,
                                 -1.0 / 6402373705728000.0, 1.0 / 20922789888000.0, -1.0 / 87178291200.0,
                                 1.0 / 479001600.0, -1.0 / 3628800.0, 1.0 / 40320.0, -1.0 / 720.0,
                                 1.0 / 24.0, -0.5, 1.0};

// exp(x), relative error ~2e-16: x = k ln2 + t, |t| <= ln2/2, exp(t) by its Taylor polynomial to t¹³,
// 2^k assembled in the exponent bits. x is clamped to [−700, 700]: below, it returns exp(−700) ≈ 1e−304
// instead of a denormal or zero (the arguments here are −η r² and the G2 grid's ratios).
inline double exp_clamped(double x) {
  constexpr double log2e = 1.4426950408889634, ln2_hi = 6.93147180369123816490e-01,
                   ln2_lo = 1.90821492927058770002e-10;
  constexpr double shifter = 6755399441055744.0;  // 1.5 · 2^52: adding it rounds to an integer
  x = std::min(std::max(x, -700.0), 700.0);
  const double kd = x * log2e + shifter;
  const double k = kd - shifter;
  const double t = (x - k * ln2_hi) - k * ln2_lo;
  int64_t bits;
  std::memcpy(&bits, &kd, sizeof bits);
  bits = (bits - 0x4338000000000000LL + 1023) << 52;  // the integer k sits in kd's low mantissa bits
  double scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return horner(t, kExpTaylor) * scale;
}

// cos x and sin x for 0 <= x <= π: with t = x − π/2 in [−π/2, π/2], cos x = −sin t and sin x = cos t,
// by Taylor polynomials to t²¹ / t²² (truncation < 1e-17).
inline void cos_sin_0_pi(double x, double& c, double& s) {
  constexpr double half_pi_hi = 1.5707963267948966, half_pi_lo = 6.123233995736766e-17;
  const double t = (x - half_pi_hi) - half_pi_lo;
  const double t2 = t * t;
  c = horner(t2, kMinusSincTaylor) * t;
  s = horner(t2, kCosTaylor);
}

}  // namespace detail

// y[a] = exp(x[a]) (in place allowed); float64 arguments are clamped to [−700, 700].
template <typename S>
inline void exp_columns(const S* x, S* y, int64_t n) {
  if constexpr (std::is_same_v<S, double>) {
    for (int64_t a = 0; a < n; ++a) y[a] = detail::exp_clamped(x[a]);
  } else {
    for (int64_t a = 0; a < n; ++a) y[a] = exp(x[a]);
  }
}

// fc[a] = f_c(r[a]), dfc[a] = f_c'(r[a]) for r[a] < rc (see cutoff.h).
template <typename S>
inline void cutoff_columns(CutoffType type, double rc, const S* r, S* fc, S* dfc, int64_t n) {
  if constexpr (std::is_same_v<S, double>) {
    if (type == CutoffType::Cosine) {
      const double k = M_PI / rc;
      for (int64_t a = 0; a < n; ++a) {
        double c, s;
        detail::cos_sin_0_pi(r[a] * k, c, s);
        fc[a] = 0.5 * (c + 1.0);
        dfc[a] = -0.5 * k * s;
      }
      return;
    }
  }
  for (int64_t a = 0; a < n; ++a) cutoff(type, r[a], rc, fc[a], dfc[a]);
}

}  // namespace xtalnn
