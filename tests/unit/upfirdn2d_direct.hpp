/// @file upfirdn2d_direct.hpp
/// @brief upfirdn2d written from its definition, for tests and benchmarks only: every filter tap
///        of every output, with a test for the taps that land on padding or on inserted zeros.
///        The library's implementation (nn/upfirdn2d.hpp) is compared with it on random
///        geometries (test_nn) and timed beside it (bench_upfirdn2d).
#pragma once

#include <ganinv/nn/upfirdn2d.hpp>

namespace ganinv::test {

/// Calls visit(output index, input index, weight) for every tap of one plane that reads a real
/// sample: output (oy, ox) reads the padded, up-sampled signal at (oy * down + a - pad_y0,
/// ox * down + b - pad_x0); only positions that are multiples of `up` inside the input are
/// samples, the rest are zeros.
template <class Visit>
void upfirdn2d_direct_plane(Index in_h, Index in_w, const float* filter, Index fh, Index fw,
                            const nn::Upfirdn2dParams& p, Visit&& visit) {
    const Index out_h = p.out_h(in_h, fh), out_w = p.out_w(in_w, fw);
    for (Index oy = 0; oy < out_h; ++oy)
        for (Index a = 0; a < fh; ++a) {
            const Index uy = oy * p.down + a - p.pad_y0;
            if (uy < 0 || uy >= in_h * p.up || uy % p.up != 0) continue;
            const Index ka = p.flip_filter ? a : fh - 1 - a;  // convolution: the filter reversed
            for (Index ox = 0; ox < out_w; ++ox)
                for (Index b = 0; b < fw; ++b) {
                    const Index ux = ox * p.down + b - p.pad_x0;
                    if (ux < 0 || ux >= in_w * p.up || ux % p.up != 0) continue;
                    const Index kb = p.flip_filter ? b : fw - 1 - b;
                    visit(oy * out_w + ox, (uy / p.up) * in_w + ux / p.up, filter[ka * fw + kb] * p.gain);
                }
        }
}

inline void upfirdn2d_direct_forward(const float* x, Index planes, Index in_h, Index in_w, const float* filter,
                                     Index fh, Index fw, const nn::Upfirdn2dParams& p, float* y) {
    const Index in_hw = in_h * in_w, out_hw = p.out_h(in_h, fh) * p.out_w(in_w, fw);
    for (Index c = 0; c < planes; ++c) {
        float* yc = y + c * out_hw;
        for (Index i = 0; i < out_hw; ++i) yc[i] = 0.0f;
        upfirdn2d_direct_plane(in_h, in_w, filter, fh, fw, p,
                               [&](Index o, Index i, float w) { yc[o] += w * x[c * in_hw + i]; });
    }
}

inline void upfirdn2d_direct_backward(const float* grad_y, Index planes, Index in_h, Index in_w, const float* filter,
                                      Index fh, Index fw, const nn::Upfirdn2dParams& p, float* grad_x) {
    const Index in_hw = in_h * in_w, out_hw = p.out_h(in_h, fh) * p.out_w(in_w, fw);
    for (Index c = 0; c < planes; ++c) {
        float* gx = grad_x + c * in_hw;
        for (Index i = 0; i < in_hw; ++i) gx[i] = 0.0f;
        upfirdn2d_direct_plane(in_h, in_w, filter, fh, fw, p,
                               [&](Index o, Index i, float w) { gx[i] += w * grad_y[c * out_hw + o]; });
    }
}

}  // namespace ganinv::test
