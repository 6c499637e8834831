// Cutoff functions f_c(r) and their derivatives (r in Å).
#pragma once

#include <cmath>

#include "common/dual.h"

namespace xtalnn {

enum class CutoffType : int {
  Cosine = 0,      // f_c = ½ [cos(π r / r_c) + 1]                     (Behler 2011, aenet)
  Polynomial = 1,  // f_c = 1 − 10x³ + 15x⁴ − 6x⁵, x = r / r_c (smooth to 2nd derivative)
};

// Evaluates f_c(r) and df_c/dr for r < r_c; callers skip r >= r_c (where both vanish).
template <typename S>
inline void cutoff(CutoffType type, const S& r, double rc, S& fc, S& dfc) {
  using T = real_t<S>;
  const T inv = T(1.0 / rc);
  if (type == CutoffType::Cosine) {
    const T k = T(M_PI) * inv;
    fc = T(0.5) * (cos(r * k) + T(1));
    dfc = T(-0.5) * k * sin(r * k);
  } else {
    const S x = r * inv;
    const S x2 = x * x;
    fc = T(1) + x2 * x * (T(-10) + x * (T(15) - T(6) * x));
    dfc = x2 * (T(-30) + x * (T(60) - T(30) * x)) * inv;
  }
}

}  // namespace xtalnn
