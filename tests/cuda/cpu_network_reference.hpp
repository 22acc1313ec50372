/// @file cpu_network_reference.hpp
/// @brief The Cpu network losses' results for the CUDA loss tests, computed in a host translation
///        unit (cpu_network_reference.cpp: OpenMP and Eigen), optionally with double-accumulated
///        convolutions (the reference precision that rules out float32 ReLU / max-pool flips).
#pragma once

#include <ganinv/core/tensor.hpp>

#include <optional>
#include <string>
#include <vector>

namespace ganinv::test::cpu {

struct LossRun {
    std::vector<double> values;
    Tensor<float> grad;
};

/// LPIPS with the fixture's trunk (Vgg16::hash_rule) and the real v0.1 lin weights.
LossRun lpips(const Tensor<float>& pred, const Tensor<float>& target, Index max_size, bool precise);
/// VggPerceptual with the hash-rule trunk.
LossRun vgg_perceptual(const Tensor<float>& pred, const Tensor<float>& target, const std::vector<std::string>& layers,
                       bool after_relu, const std::vector<double>& weights, Index max_size, bool precise);
/// Identity with the face-api network; box = {x0, y0, x1, y1} or none.
LossRun identity(const Tensor<float>& pred, const Tensor<float>& target, const std::optional<std::vector<Index>>& box,
                 bool precise);

}  // namespace ganinv::test::cpu
