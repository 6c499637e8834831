#include "neighbors/neighbor_list.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

namespace xtalnn {

namespace {

using Vec3 = std::array<double, 3>;
using Mat3 = std::array<Vec3, 3>;  // rows

Vec3 cross(const Vec3& a, const Vec3& b) {
  return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}
double dot(const Vec3& a, const Vec3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
double norm(const Vec3& a) { return std::sqrt(dot(a, a)); }
Vec3 scaled(const Vec3& a, double s) { return {a[0] * s, a[1] * s, a[2] * s}; }

// A unit vector orthogonal to a (a ≠ 0).
Vec3 orthogonal_to(const Vec3& a) {
  const Vec3 axis = std::fabs(a[0]) < 0.9 * norm(a) ? Vec3{1, 0, 0} : Vec3{0, 1, 0};
  const Vec3 c = cross(a, axis);
  return scaled(c, 1.0 / norm(c));
}

// Lattice used for binning: the periodic cell vectors, completed by orthonormal vectors along the
// non-periodic directions (whatever the user's cell holds there).
Mat3 binning_cell(const Mat3& cell, const std::array<bool, 3>& pbc) {
  const int n_periodic = pbc[0] + pbc[1] + pbc[2];
  Mat3 B = cell;
  for (int a = 0; a < 3; ++a)
    if (pbc[a])
      TORCH_CHECK_VALUE(norm(cell[a]) > 0, "cell vector ", a, " is zero but the direction is periodic");
  if (n_periodic == 0) {
    B = {Vec3{1, 0, 0}, Vec3{0, 1, 0}, Vec3{0, 0, 1}};
  } else if (n_periodic == 1) {
    const int a = pbc[0] ? 0 : (pbc[1] ? 1 : 2);
    const Vec3 u = orthogonal_to(cell[a]);
    Vec3 v = cross(cell[a], u);
    v = scaled(v, 1.0 / norm(v));
    B[(a + 1) % 3] = u;
    B[(a + 2) % 3] = v;
  } else if (n_periodic == 2) {
    const int c = !pbc[0] ? 0 : (!pbc[1] ? 1 : 2);
    const Vec3 n = cross(cell[(c + 1) % 3], cell[(c + 2) % 3]);
    const double ln = norm(n);
    TORCH_CHECK_VALUE(ln > 1e-10 * norm(cell[(c + 1) % 3]) * norm(cell[(c + 2) % 3]),
                      "the two periodic cell vectors are parallel (degenerate cell)");
    B[c] = scaled(n, 1.0 / ln);
  }
  const double vol = std::fabs(dot(B[0], cross(B[1], B[2])));
  TORCH_CHECK_VALUE(vol > 1e-10 * norm(B[0]) * norm(B[1]) * norm(B[2]),
                    "the cell has zero volume (degenerate lattice vectors)");
  return B;
}

// Inverse of B (rows) so that s = x · Binv.
Mat3 inverse(const Mat3& B) {
  const Vec3 c0 = cross(B[1], B[2]), c1 = cross(B[2], B[0]), c2 = cross(B[0], B[1]);
  const double det = dot(B[0], c0);
  Mat3 inv;  // inv[k][a] = c_a[k] / det
  for (int k = 0; k < 3; ++k) inv[k] = {c0[k] / det, c1[k] / det, c2[k] / det};
  return inv;
}

}  // namespace

std::tuple<torch::Tensor, torch::Tensor> neighbor_list(const torch::Tensor& positions_in, const torch::Tensor& cell_in,
                                                       const torch::Tensor& pbc_in, double cutoff,
                                                       bool self_interaction) {
  TORCH_CHECK_VALUE(positions_in.dim() == 2 && positions_in.size(1) == 3, "positions must have shape [N, 3], got ",
                    positions_in.sizes());
  TORCH_CHECK_VALUE(cell_in.numel() == 9, "cell must have shape [3, 3], got ", cell_in.sizes());
  TORCH_CHECK_VALUE(pbc_in.numel() == 3, "pbc must have 3 entries, got ", pbc_in.sizes());
  TORCH_CHECK_VALUE(std::isfinite(cutoff) && cutoff > 0, "cutoff must be a positive number of Å, got ", cutoff);
  const auto pos = positions_in.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  const auto cellt = cell_in.detach().to(torch::kCPU, torch::kFloat64).contiguous().reshape({3, 3});
  const auto pbct = pbc_in.detach().to(torch::kCPU, torch::kBool).contiguous();
  TORCH_CHECK_VALUE(torch::isfinite(pos).all().item<bool>(), "positions contain NaN or inf");
  TORCH_CHECK_VALUE(torch::isfinite(cellt).all().item<bool>(), "cell contains NaN or inf");

  const int64_t N = pos.size(0);
  const double* x = pos.data_ptr<double>();
  Mat3 cell;
  for (int a = 0; a < 3; ++a)
    for (int k = 0; k < 3; ++k) cell[a][k] = cellt.data_ptr<double>()[3 * a + k];
  const std::array<bool, 3> pbc = {pbct.data_ptr<bool>()[0], pbct.data_ptr<bool>()[1], pbct.data_ptr<bool>()[2]};
  const Mat3 B = binning_cell(cell, pbc);
  const Mat3 Binv = inverse(B);
  const double volume = std::fabs(dot(B[0], cross(B[1], B[2])));

  // Fractional coordinates, wrapped into [0, 1) along periodic directions.
  std::vector<double> s(3 * N), xw(3 * N);
  std::vector<int64_t> off(3 * N, 0);
  Vec3 lo{0, 0, 0}, hi{0, 0, 0};
  for (int a = 0; a < 3; ++a) { lo[a] = INFINITY; hi[a] = -INFINITY; }
  for (int64_t i = 0; i < N; ++i) {
    for (int a = 0; a < 3; ++a) {
      double v = x[3 * i] * Binv[0][a] + x[3 * i + 1] * Binv[1][a] + x[3 * i + 2] * Binv[2][a];
      if (pbc[a]) {
        const double f = std::floor(v);
        v -= f;
        off[3 * i + a] = static_cast<int64_t>(f);
        if (v >= 1.0) { v -= 1.0; off[3 * i + a] += 1; }
      }
      s[3 * i + a] = v;
      lo[a] = std::min(lo[a], v);
      hi[a] = std::max(hi[a], v);
    }
    for (int k = 0; k < 3; ++k)
      xw[3 * i + k] = s[3 * i] * B[0][k] + s[3 * i + 1] * B[1][k] + s[3 * i + 2] * B[2][k];
  }

  // Bins: along each direction the plane spacing h_a = V / |b_b × b_c|; bin widths ≥ cutoff
  // (except when the whole extent is one bin), so neighbours lie within k_a bins.
  std::array<int64_t, 3> nb{1, 1, 1}, reach{0, 0, 0};
  std::array<double, 3> start{0, 0, 0}, width{1, 1, 1};
  for (int a = 0; a < 3; ++a) {
    const double h = volume / norm(cross(B[(a + 1) % 3], B[(a + 2) % 3]));
    const double extent = pbc[a] ? 1.0 : (N > 0 ? hi[a] - lo[a] : 0.0);
    start[a] = pbc[a] ? 0.0 : (N > 0 ? lo[a] : 0.0);
    nb[a] = std::max<int64_t>(1, static_cast<int64_t>(std::floor(extent * h / cutoff)));
    nb[a] = std::min<int64_t>(nb[a], std::max<int64_t>(1, N));
    width[a] = extent > 0 ? extent / nb[a] : 1.0;
    reach[a] = pbc[a] ? static_cast<int64_t>(std::ceil(cutoff / (width[a] * h)))
                      : (nb[a] > 1 ? static_cast<int64_t>(std::ceil(cutoff / (width[a] * h))) : 0);
  }
  // Keep the bin count O(N) for sparse (e.g. molecular) systems: coarser bins stay correct.
  while (nb[0] * nb[1] * nb[2] > 2 * N + 64) {
    int a = static_cast<int>(std::max_element(nb.begin(), nb.end()) - nb.begin());
    const int64_t old = nb[a];
    nb[a] = std::max<int64_t>(1, old / 2);
    const double h = volume / norm(cross(B[(a + 1) % 3], B[(a + 2) % 3]));
    const double extent = width[a] * old;
    width[a] = extent > 0 ? extent / nb[a] : 1.0;
    reach[a] = (pbc[a] || nb[a] > 1) ? static_cast<int64_t>(std::ceil(cutoff / (width[a] * h))) : 0;
  }

  const int64_t n_bins = nb[0] * nb[1] * nb[2];
  std::vector<int64_t> bin_of(N), bin_start(n_bins + 1, 0), bin_atoms(N);
  for (int64_t i = 0; i < N; ++i) {
    int64_t idx[3];
    for (int a = 0; a < 3; ++a) {
      int64_t b = static_cast<int64_t>(std::floor((s[3 * i + a] - start[a]) / width[a]));
      idx[a] = std::min<int64_t>(std::max<int64_t>(b, 0), nb[a] - 1);
    }
    bin_of[i] = (idx[0] * nb[1] + idx[1]) * nb[2] + idx[2];
    ++bin_start[bin_of[i] + 1];
  }
  for (int64_t b = 0; b < n_bins; ++b) bin_start[b + 1] += bin_start[b];
  {
    std::vector<int64_t> fill(bin_start.begin(), bin_start.end() - 1);
    for (int64_t i = 0; i < N; ++i) bin_atoms[fill[bin_of[i]]++] = i;
  }
  // wrapped positions in bin order: the inner loop reads them contiguously
  std::vector<double> xb(3 * N);
  for (int64_t p = 0; p < N; ++p)
    for (int k = 0; k < 3; ++k) xb[3 * p + k] = xw[3 * bin_atoms[p] + k];

  const double c2 = cutoff * cutoff;
  // chunks of atoms, in order (so edges come out sorted by i); small systems stay on one thread
  const int64_t n_chunks = N < 2048 ? 1 : 4 * at::get_num_threads();
  std::vector<std::vector<int64_t>> chunk_edges(n_chunks);  // (i, j, S0, S1, S2) flattened
  at::parallel_for(0, n_chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      auto& out = chunk_edges[c];
      const int64_t i0 = N * c / n_chunks, i1 = N * (c + 1) / n_chunks;
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t bi = bin_of[i];
        const int64_t b0[3] = {bi / (nb[1] * nb[2]), (bi / nb[2]) % nb[1], bi % nb[2]};
        for (int64_t d0 = -reach[0]; d0 <= reach[0]; ++d0)
          for (int64_t d1 = -reach[1]; d1 <= reach[1]; ++d1)
            for (int64_t d2 = -reach[2]; d2 <= reach[2]; ++d2) {
              const int64_t d[3] = {d0, d1, d2};
              int64_t t[3], S[3];
              bool skip = false;
              for (int a = 0; a < 3; ++a) {
                const int64_t tb = b0[a] + d[a];
                S[a] = tb >= 0 ? tb / nb[a] : -((-tb + nb[a] - 1) / nb[a]);  // floor division
                t[a] = tb - S[a] * nb[a];
                if (!pbc[a] && S[a] != 0) skip = true;
              }
              if (skip) continue;
              Vec3 shift{0, 0, 0};
              for (int a = 0; a < 3; ++a)
                for (int k = 0; k < 3; ++k) shift[k] += S[a] * B[a][k];
              const int64_t tb = (t[0] * nb[1] + t[1]) * nb[2] + t[2];
              const bool zero_shift = S[0] == 0 && S[1] == 0 && S[2] == 0;
              const double ox = shift[0] - xw[3 * i], oy = shift[1] - xw[3 * i + 1], oz = shift[2] - xw[3 * i + 2];
              for (int64_t p = bin_start[tb]; p < bin_start[tb + 1]; ++p) {
                const double rx = xb[3 * p] + ox, ry = xb[3 * p + 1] + oy, rz = xb[3 * p + 2] + oz;
                if (rx * rx + ry * ry + rz * rz >= c2) continue;
                const int64_t j = bin_atoms[p];
                if (j == i && zero_shift && !self_interaction) continue;
                // x = x_wrapped + off·B, so x_j − x_i + (S − off_j + off_i)·B is the same vector
                out.insert(out.end(), {i, j, S[0] - off[3 * j] + off[3 * i], S[1] - off[3 * j + 1] + off[3 * i + 1],
                                       S[2] - off[3 * j + 2] + off[3 * i + 2]});
              }
            }
      }
    }
  });

  int64_t E = 0;
  for (const auto& ch : chunk_edges) E += static_cast<int64_t>(ch.size()) / 5;
  auto edge_index = torch::empty({2, E}, torch::kInt64);
  auto shifts = torch::empty({E, 3}, torch::kInt64);
  int64_t* ei = edge_index.data_ptr<int64_t>();
  int64_t* sh = shifts.data_ptr<int64_t>();
  int64_t e = 0;
  for (const auto& ch : chunk_edges) {
    for (size_t q = 0; q < ch.size(); q += 5, ++e) {
      ei[e] = ch[q];
      ei[E + e] = ch[q + 1];
      sh[3 * e] = ch[q + 2];
      sh[3 * e + 1] = ch[q + 3];
      sh[3 * e + 2] = ch[q + 4];
    }
  }
  return {edge_index, shifts};
}

}  // namespace xtalnn
