/// @file cpu_reference.hpp
/// @brief The `Cpu` backend's results for the drivers of backend_cases.hpp, behind functions that
///        pull no Eigen into the CUDA translation units (cpu_reference.cpp instantiates them).
#pragma once

#include "backend_cases.hpp"

namespace ganinv::test::cpu {

Tensors modconv(const Tensor<float>& x, const Tensor<float>& w, const Tensor<float>& s, const Tensor<float>& filter,
                const nn::ModConvShape& sh, const Tensor<float>& gy, const Tensor<float>& gw0);
Tensors upfirdn2d(const Tensor<float>& x, const Tensor<float>& f, const nn::Upfirdn2dParams& p, const Tensor<float>& gy);
Tensors bias_act(const Tensor<float>& x, const Tensor<float>& bias, const nn::BiasActParams& p, const Tensor<float>& gy,
                 const Tensor<float>& gb0);
Tensors linear(const Tensor<float>& x, const Tensor<float>& w, const Tensor<float>& bias, const nn::LinearParams& p,
               const Tensor<float>& gy, const Tensor<float>& gw0, const Tensor<float>& gb0);
Tensors normalize(const Tensor<float>& x, const Tensor<float>& gy);
Tensors noise(const Tensor<float>& y0, const Tensor<float>& noise, bool per_sample, float strength, const Tensor<float>& g,
              float gs0);
Tensors small_ops(std::uint64_t seed);
Tensors style_ops(std::uint64_t seed);
Tensors bias_act_noise(const Tensor<float>& y, const Tensor<float>& gy, const nn::BiasActParams& p,
                       const Tensor<float>& noise, bool per_sample, const Tensor<float>& gb0, float gs0);
Tensors modconv_forward_fused(const Tensor<float>& x, const Tensor<float>& w, const Tensor<float>& s,
                              const Tensor<float>& filter, const nn::ModConvShape& sh, const nn::BiasActParams& act,
                              const Tensor<float>& noise, const Tensor<float>& bias);
Tensors modconv_backward_fused(const Tensor<float>& x, const Tensor<float>& w, const Tensor<float>& s,
                               const Tensor<float>& filter, const nn::ModConvShape& sh, const nn::BiasActParams& act,
                               const Tensors& fwd, const Tensor<float>& noise, const Tensor<float>& grad_out,
                               const Tensor<float>& gw0, const Tensor<float>& gb0, float gs0, bool want_grad_w);
GenResult generator(const GenCase& gc);

}  // namespace ganinv::test::cpu
