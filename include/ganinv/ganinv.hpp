/// @file ganinv.hpp
/// @brief Umbrella header: everything ganinv offers on the CPU.
#pragma once

#include "ganinv/backend/cpu.hpp"
#include "ganinv/concepts/backend.hpp"
#include "ganinv/concepts/generator.hpp"
#include "ganinv/concepts/loss.hpp"
#include "ganinv/concepts/optimizer.hpp"
#include "ganinv/core/error.hpp"
#include "ganinv/core/json.hpp"
#include "ganinv/core/numpy_rng.hpp"
#include "ganinv/core/rng.hpp"
#include "ganinv/core/tensor.hpp"
#include "ganinv/io/image.hpp"
#include "ganinv/io/image_ops.hpp"
#include "ganinv/io/safetensors.hpp"
#include "ganinv/models/stylegan2.hpp"
