#include "descriptors/chebyshev.h"

#include <cmath>

#include "descriptors/kernels_impl.h"

namespace xtalnn {

Chebyshev::Chebyshev(const torch::Tensor& spec_in) {
  const auto spec = spec_in.to(torch::kFloat64).contiguous();
  TORCH_CHECK_VALUE(spec.dim() == 1 && spec.numel() >= 6, "Chebyshev spec must be a 1-D float64 tensor");
  const double* s = spec.data_ptr<double>();
  n_elements = static_cast<int64_t>(s[0]);
  rc_radial = s[1];
  n_radial = static_cast<int64_t>(s[2]);
  rc_angular = s[3];
  n_angular = static_cast<int64_t>(s[4]);
  TORCH_CHECK_VALUE(n_elements > 0, "Chebyshev needs at least one element");
  TORCH_CHECK_VALUE(rc_radial > 0 && rc_angular > 0, "Chebyshev cutoffs must be positive, got ", rc_radial,
                    " and ", rc_angular);
  TORCH_CHECK_VALUE(n_radial >= 0 && n_angular >= 0, "Chebyshev orders must be >= 0");
  TORCH_CHECK_VALUE(s[5] == 0 || s[5] == 1, "unknown cutoff type ", s[5]);
  cutoff_type = static_cast<CutoffType>(static_cast<int>(s[5]));
  TORCH_CHECK_VALUE(spec.numel() == 6 + n_elements, "Chebyshev spec has ", spec.numel(), " entries, expected ",
                    6 + n_elements);
  spin.assign(s + 6, s + 6 + n_elements);
  weighted = n_elements > 1;
  off_angular = n_radial + 1;
  off_wradial = off_angular + n_angular + 1;
  off_wangular = off_wradial + n_radial + 1;
  n_feat = weighted ? off_wangular + n_angular + 1 : off_wradial;
}

template struct DescriptorKernels<Chebyshev>;

}  // namespace xtalnn
