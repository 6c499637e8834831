// Periodic neighbour list: cell (bin) list over fractional coordinates of a triclinic cell.
#pragma once

#include <torch/types.h>

#include <tuple>

namespace xtalnn {

// All pairs (i, j, S) with |x_j − x_i + S·cell| < cutoff (Å), both directions, sorted by i.
//   positions [N, 3] (Å), cell [3, 3] (rows are the lattice vectors, Å), pbc [3] (bool).
// Periodic directions need a non-zero cell vector; non-periodic ones ignore theirs (shift 0).
// Works for any cutoff, including longer than the cell (several images), and for molecules.
// Returns edge_index [2, E] (int64: i = centre, j = neighbour) and shifts [E, 3] (int64).
std::tuple<torch::Tensor, torch::Tensor> neighbor_list(const torch::Tensor& positions, const torch::Tensor& cell,
                                                       const torch::Tensor& pbc, double cutoff,
                                                       bool self_interaction);

}  // namespace xtalnn
