/// @file optim.hpp
/// @brief Umbrella header of the optimisers: Adam (+ the official projector schedule), L-BFGS
///        with a strong-Wolfe line search, CMA-ES (full and separable) and BasinCMA. Each keeps
///        separate state per row of a [N, dim] parameter batch (see concepts/optimizer.hpp).
#pragma once

#include "ganinv/optim/adam.hpp"
#include "ganinv/optim/basin_cma.hpp"
#include "ganinv/optim/cmaes.hpp"
#include "ganinv/optim/lbfgs.hpp"
#include "ganinv/optim/line_search.hpp"
