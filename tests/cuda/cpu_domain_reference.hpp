/// @file cpu_domain_reference.hpp
/// @brief The CPU side of the in-domain GPU test (test_cuda_encoder): DomainRegularizer with
///        StyleGAN2<Cpu> and PspEncoder, in a host TU (Eigen stays out of nvcc).
#pragma once

#include <ganinv/core/tensor.hpp>
#include <ganinv/models/psp_encoder.hpp>
#include <ganinv/models/stylegan2_config.hpp>

#include <cstdint>
#include <vector>

namespace ganinv::test {

/// The generator of the case: 16x16 grayscale, 6 ws of 16, a few channels per layer.
StyleGAN2Config domain_case_config();

/// DomainRegularizer(G, e, weight, constant noise, seed 0, batch)::evaluate(ws, grad) with
/// G = StyleGAN2<Cpu>::random(domain_case_config(), generator_seed).
std::vector<double> cpu_domain_regularizer(std::uint64_t generator_seed, const PspEncoder& e, const Tensor<float>& ws,
                                           double weight, Index batch, Tensor<float>* grad);

}  // namespace ganinv::test
