// The Cpu backend side of the CUDA parity tests (host compiler, Eigen): see cpu_reference.hpp.
#include "cpu_reference.hpp"

#include <ganinv/backend/cpu.hpp>

namespace ganinv::test::cpu {

Tensors modconv(const Tensor<float>& x, const Tensor<float>& w, const Tensor<float>& s, const Tensor<float>& filter,
                const nn::ModConvShape& sh, const Tensor<float>& gy, const Tensor<float>& gw0) {
    Cpu b;
    return run_modconv(b, x, w, s, filter, sh, gy, gw0);
}
Tensors upfirdn2d(const Tensor<float>& x, const Tensor<float>& f, const nn::Upfirdn2dParams& p, const Tensor<float>& gy) {
    Cpu b;
    return run_upfirdn2d(b, x, f, p, gy);
}
Tensors bias_act(const Tensor<float>& x, const Tensor<float>& bias, const nn::BiasActParams& p, const Tensor<float>& gy,
                 const Tensor<float>& gb0) {
    Cpu b;
    return run_bias_act(b, x, bias, p, gy, gb0);
}
Tensors linear(const Tensor<float>& x, const Tensor<float>& w, const Tensor<float>& bias, const nn::LinearParams& p,
               const Tensor<float>& gy, const Tensor<float>& gw0, const Tensor<float>& gb0) {
    Cpu b;
    return run_linear(b, x, w, bias, p, gy, gw0, gb0);
}
Tensors normalize(const Tensor<float>& x, const Tensor<float>& gy) {
    Cpu b;
    return run_normalize(b, x, gy);
}
Tensors noise(const Tensor<float>& y0, const Tensor<float>& nz, bool per_sample, float strength, const Tensor<float>& g,
              float gs0) {
    Cpu b;
    return run_noise(b, y0, nz, per_sample, strength, g, gs0);
}
Tensors small_ops(std::uint64_t seed) {
    Cpu b;
    return run_small_ops(b, seed);
}
Tensors style_ops(std::uint64_t seed) {
    Cpu b;
    return run_style_ops(b, seed);
}
Tensors bias_act_noise(const Tensor<float>& y, const Tensor<float>& gy, const nn::BiasActParams& p,
                       const Tensor<float>& noise, bool per_sample, const Tensor<float>& gb0, float gs0) {
    Cpu b;
    return run_bias_act_noise(b, y, gy, p, noise, per_sample, gb0, gs0);
}
Tensors modconv_forward_fused(const Tensor<float>& x, const Tensor<float>& w, const Tensor<float>& s,
                              const Tensor<float>& filter, const nn::ModConvShape& sh, const nn::BiasActParams& act,
                              const Tensor<float>& noise, const Tensor<float>& bias) {
    Cpu b;
    return run_modconv_forward_fused(b, x, w, s, filter, sh, act, noise, bias);
}
Tensors modconv_backward_fused(const Tensor<float>& x, const Tensor<float>& w, const Tensor<float>& s,
                               const Tensor<float>& filter, const nn::ModConvShape& sh, const nn::BiasActParams& act,
                               const Tensors& fwd, const Tensor<float>& noise, const Tensor<float>& grad_out,
                               const Tensor<float>& gw0, const Tensor<float>& gb0, float gs0, bool want_grad_w) {
    Cpu b;
    return run_modconv_backward_fused(b, x, w, s, filter, sh, act, fwd, noise, grad_out, gw0, gb0, gs0, want_grad_w);
}
GenResult generator(const GenCase& gc) { return run_generator(gc, Cpu{}); }

}  // namespace ganinv::test::cpu
