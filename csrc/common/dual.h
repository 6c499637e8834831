// Forward-mode dual numbers: x = v + d·ε with ε² = 0.
//
// The descriptor kernels are templates over their scalar type. Run with Dual<T>, the forward
// kernel gives a Jacobian-vector product (∂G/∂r · v) and the hand-written backward kernel gives a
// Hessian-vector product (Σ_f g_f ∂²G_f/∂r∂r · v). Those two are exactly the double backward of
// the descriptor op, so second derivatives are exact and need no extra hand-derived formulas.
#pragma once

#include <cmath>
#include <type_traits>

namespace xtalnn {

template <typename T>
struct Dual {
  T v;  // value
  T d;  // tangent
  constexpr Dual(T value = T(0), T tangent = T(0)) : v(value), d(tangent) {}

  Dual& operator+=(const Dual& o) { v += o.v; d += o.d; return *this; }
  Dual& operator-=(const Dual& o) { v -= o.v; d -= o.d; return *this; }
  Dual& operator*=(const Dual& o) { d = d * o.v + v * o.d; v *= o.v; return *this; }
  Dual& operator/=(const Dual& o) { *this = *this / o; return *this; }
  friend Dual operator-(const Dual& a) { return {-a.v, -a.d}; }
  friend Dual operator+(const Dual& a, const Dual& b) { return {a.v + b.v, a.d + b.d}; }
  friend Dual operator-(const Dual& a, const Dual& b) { return {a.v - b.v, a.d - b.d}; }
  friend Dual operator*(const Dual& a, const Dual& b) { return {a.v * b.v, a.d * b.v + a.v * b.d}; }
  friend Dual operator/(const Dual& a, const Dual& b) {
    const T inv = T(1) / b.v;
    return {a.v * inv, (a.d - a.v * inv * b.d) * inv};
  }
  // mixed with plain numbers (parameters, constants)
  friend Dual operator+(const Dual& a, T b) { return {a.v + b, a.d}; }
  friend Dual operator+(T a, const Dual& b) { return {a + b.v, b.d}; }
  friend Dual operator-(const Dual& a, T b) { return {a.v - b, a.d}; }
  friend Dual operator-(T a, const Dual& b) { return {a - b.v, -b.d}; }
  friend Dual operator*(const Dual& a, T b) { return {a.v * b, a.d * b}; }
  friend Dual operator*(T a, const Dual& b) { return {a * b.v, a * b.d}; }
  friend Dual operator/(const Dual& a, T b) { return {a.v / b, a.d / b}; }
  friend Dual operator/(T a, const Dual& b) { return {a / b.v, -a * b.d / (b.v * b.v)}; }
};

template <typename T> struct scalar_of { using type = T; };
template <typename T> struct scalar_of<Dual<T>> { using type = T; };
template <typename S> using real_t = typename scalar_of<S>::type;

// value() strips the tangent: branches (cutoff tests) use values only.
template <typename T> inline T value(T x) { return x; }
template <typename T> inline T value(const Dual<T>& x) { return x.v; }
template <typename T> inline T tangent(T) { return T(0); }
template <typename T> inline T tangent(const Dual<T>& x) { return x.d; }

template <typename T> inline Dual<T> sqrt(const Dual<T>& x) {
  const T s = std::sqrt(x.v);
  return {s, x.d / (T(2) * s)};
}
template <typename T> inline Dual<T> exp(const Dual<T>& x) {
  const T e = std::exp(x.v);
  return {e, e * x.d};
}
template <typename T> inline Dual<T> cos(const Dual<T>& x) { return {std::cos(x.v), -std::sin(x.v) * x.d}; }
template <typename T> inline Dual<T> sin(const Dual<T>& x) { return {std::sin(x.v), std::cos(x.v) * x.d}; }

using std::cos;
using std::exp;
using std::sin;
using std::sqrt;

// x^n for n >= 0: integer powers by repeated squaring (exact at x = 0), otherwise std::pow.
template <typename S>
inline S power(const S& x, double n) {
  const double rn = std::round(n);
  if (rn == n && rn >= 0 && rn <= 64) {
    long k = static_cast<long>(rn);
    S result(1), base = x;
    while (k) {
      if (k & 1) result *= base;
      base *= base;
      k >>= 1;
    }
    return result;
  }
  if constexpr (std::is_arithmetic_v<S>) {
    return std::pow(x, static_cast<S>(n));
  } else {
    using T = real_t<S>;
    const T p = std::pow(x.v, static_cast<T>(n - 1));
    return {p * x.v, static_cast<T>(n) * p * x.d};
  }
}

}  // namespace xtalnn
