/// @file input_stage.cuh
/// @brief The input stage of the CUDA network losses, forward and adjoint: an optional crop and
///        separable resize (exact area averaging when an axis shrinks, bilinear when it grows:
///        the weights of nn/resample.hpp), gray -> RGB replication, and the per-channel affine
///        map ((x + pre_add) * pre_mul - shift[c]) / scale[c] that covers LPIPS' ScalingLayer,
///        the ImageNet normalisation, the identity loss's [-1, 1] -> 0..255 and the face
///        network's mean subtraction.
///
/// The resize runs as one gather per output in double (the CPU's `resample_forward` order);
/// its adjoint is the same kernel over the transposed tap lists (per input: the outputs that
/// read it, in ascending order), so no atomics are needed and every gradient element is
/// written — pixels outside a crop box get 0. Tap tables are built on the host once per
/// geometry and kept.
#pragma once

#include "ganinv/cuda/device_buffer.hpp"
#include "ganinv/cuda/network_ops.cuh"
#include "ganinv/nn/resample.hpp"

#include <array>
#include <map>
#include <memory>

namespace ganinv::cuda {

/// y[c] = ((x[c or 0] + pre_add) * pre_mul - shift[c]) / scale[c].
struct InputAffine {
    float pre_add = 0.0f, pre_mul = 1.0f;
    float shift[3] = {0.0f, 0.0f, 0.0f};
    float scale[3] = {1.0f, 1.0f, 1.0f};
};

/// The spatial part of a stage: input size, crop box [x0, x1) x [y0, y1), output size.
struct StageGeometry {
    Index h = 0, w = 0, x0 = 0, y0 = 0, x1 = 0, y1 = 0, out_h = 0, out_w = 0;
    bool spatial() const { return x0 != 0 || y0 != 0 || x1 != w || y1 != h || out_h != h || out_w != w; }
    auto key() const { return std::array<Index, 8>{h, w, x0, y0, x1, y1, out_h, out_w}; }
};

namespace kernels {

struct AxisView {
    const int* begin;
    const int* source;
    const double* weight;
};

/// y[p, o, q] = sum_k wy_k sum_j wx_j x[p, sy_k, sx_j] (double accumulation).
template <int = 0>  // a template: defined once however many TUs of a binary include this
__global__ void net_resample(const float* x, long long planes, long long H, long long W, AxisView ay, AxisView ax,
                             long long OH, long long OW, float* y) {
    GANINV_GRID_STRIDE(i, planes * OH * OW) {
        const long long q = i % OW, o = (i / OW) % OH, p = i / (OW * OH);
        const float* xp = x + p * H * W;
        double acc = 0.0;
        for (int k = ay.begin[o]; k < ay.begin[o + 1]; ++k) {
            double row = 0.0;
            const float* xr = xp + static_cast<long long>(ay.source[k]) * W;
            for (int j = ax.begin[q]; j < ax.begin[q + 1]; ++j) row += ax.weight[j] * xr[ax.source[j]];
            acc += ay.weight[k] * row;
        }
        y[i] = static_cast<float>(acc);
    }
}

template <int = 0>  // a template: defined once however many TUs of a binary include this
__global__ void net_channel_affine(const float* x, long long N, long long Cin, long long HW, InputAffine a, float* y) {
    GANINV_GRID_STRIDE(i, N * 3 * HW) {
        const long long p = i % HW, c = (i / HW) % 3, n = i / (3 * HW);
        const float v = x[(n * Cin + (Cin == 1 ? 0 : c)) * HW + p];
        y[i] = ((v + a.pre_add) * a.pre_mul - a.shift[c]) / a.scale[c];
    }
}

/// Adjoint of net_channel_affine: g / scale[c] * pre_mul, the three channels summed for gray.
template <int = 0>  // a template: defined once however many TUs of a binary include this
__global__ void net_channel_affine_backward(const float* g, long long N, long long Cin, long long HW, InputAffine a,
                                            float* gx) {
    GANINV_GRID_STRIDE(i, N * Cin * HW) {
        const long long p = i % HW, c = (i / HW) % Cin, n = i / (Cin * HW);
        if (Cin == 3) {
            gx[i] = g[i] / a.scale[c] * a.pre_mul;
        } else {
            const float* gn = g + n * 3 * HW + p;
            gx[i] = (gn[0] / a.scale[0] * a.pre_mul + gn[HW] / a.scale[1] * a.pre_mul) + gn[2 * HW] / a.scale[2] * a.pre_mul;
        }
    }
}

}  // namespace kernels

/// One axis' tap table on the device.
class DeviceAxis {
public:
    DeviceAxis() = default;
    /// The taps of `a` with every source shifted by `offset` (a crop), or their transpose over an
    /// input axis of `full_in` samples (for the adjoint).
    DeviceAxis(const std::shared_ptr<MemoryPool>& pool, const nn::AxisWeights& a, Index offset, Index full_in,
               bool transpose) {
        std::vector<int> begin{0}, source;
        std::vector<double> weight;
        if (!transpose) {
            for (Index o = 0; o < a.out_size; ++o) {
                for (Index k = a.begin[o]; k < a.begin[o + 1]; ++k) {
                    source.push_back(static_cast<int>(a.source[k] + offset));
                    weight.push_back(a.weight[k]);
                }
                begin.push_back(static_cast<int>(source.size()));
            }
        } else {
            std::vector<std::vector<std::pair<int, double>>> per_in(static_cast<std::size_t>(full_in));
            for (Index o = 0; o < a.out_size; ++o)
                for (Index k = a.begin[o]; k < a.begin[o + 1]; ++k)
                    per_in[static_cast<std::size_t>(a.source[k] + offset)].push_back({static_cast<int>(o), a.weight[k]});
            for (const auto& taps : per_in) {
                for (const auto& [o, w] : taps) {
                    source.push_back(o);
                    weight.push_back(w);
                }
                begin.push_back(static_cast<int>(source.size()));
            }
        }
        source.push_back(0);  // never read; keeps the arrays non-empty
        weight.push_back(0.0);
        begin_ = PoolArray<int>(pool, begin);
        source_ = PoolArray<int>(pool, source);
        weight_ = PoolArray<double>(pool, weight);
    }
    kernels::AxisView view() const { return {begin_.data(), source_.data(), weight_.data()}; }

private:
    PoolArray<int> begin_, source_;
    PoolArray<double> weight_;
};

class DeviceInputStage {
public:
    DeviceInputStage() = default;
    DeviceInputStage(std::shared_ptr<MemoryPool> pool, InputAffine affine) : pool_(std::move(pool)), affine_(affine) {}

    /// x [N, 1 or 3, h, w] -> [N, 3, out_h, out_w].
    DeviceTensor forward(const DeviceTensor& x, const StageGeometry& g) {
        const Index N = x.dim(0), C = x.dim(1);
        const DeviceTensor* src = &x;
        DeviceTensor resized;
        if (g.spatial()) {
            const Plan& p = plan(g);
            resized = DeviceTensor({N, C, g.out_h, g.out_w}, pool_);
            launch_1d(kernels::net_resample<>, N * C * g.out_h * g.out_w, stream(), x.data(), ll(N * C), ll(g.h), ll(g.w),
                      p.fy.view(), p.fx.view(), ll(g.out_h), ll(g.out_w), resized.data());
            src = &resized;
        }
        DeviceTensor y({N, 3, g.out_h, g.out_w}, pool_);
        launch_1d(kernels::net_channel_affine<>, y.numel(), stream(), src->data(), ll(N), ll(C), ll(g.out_h * g.out_w),
                  affine_, y.data());
        return y;
    }

    /// gx [N, channels, h, w] (overwritten) from the gradient at the stage's output.
    void backward(const DeviceTensor& gy, const StageGeometry& g, Index channels, DeviceTensor& gx) {
        const Index N = gy.dim(0);
        GANINV_CHECK(gx.shape() == (Shape{N, channels, g.h, g.w}), ShapeError, "input stage: gradient buffer ",
                     shape_to_string(gx.shape()), " does not match the input");
        DeviceTensor small;
        float* dst = gx.data();
        if (g.spatial()) {
            small = DeviceTensor({N, channels, g.out_h, g.out_w}, pool_);
            dst = small.data();
        }
        launch_1d(kernels::net_channel_affine_backward<>, N * channels * g.out_h * g.out_w, stream(), gy.data(), ll(N),
                  ll(channels), ll(g.out_h * g.out_w), affine_, dst);
        if (!g.spatial()) return;
        const Plan& p = plan(g);
        launch_1d(kernels::net_resample<>, gx.numel(), stream(), static_cast<const float*>(small.data()), ll(N * channels),
                  ll(g.out_h), ll(g.out_w), p.ty.view(), p.tx.view(), ll(g.h), ll(g.w), gx.data());
    }

private:
    struct Plan {
        DeviceAxis fy, fx, ty, tx;
    };
    static long long ll(Index v) { return static_cast<long long>(v); }
    cudaStream_t stream() const { return pool_->stream(); }

    const Plan& plan(const StageGeometry& g) {
        auto it = plans_.find(g.key());
        if (it != plans_.end()) return *it->second;
        const nn::AxisWeights wy = nn::area_or_bilinear_weights(g.y1 - g.y0, g.out_h);
        const nn::AxisWeights wx = nn::area_or_bilinear_weights(g.x1 - g.x0, g.out_w);
        auto p = std::make_unique<Plan>();
        p->fy = DeviceAxis(pool_, wy, g.y0, g.h, false);
        p->fx = DeviceAxis(pool_, wx, g.x0, g.w, false);
        p->ty = DeviceAxis(pool_, wy, g.y0, g.h, true);
        p->tx = DeviceAxis(pool_, wx, g.x0, g.w, true);
        return *plans_.emplace(g.key(), std::move(p)).first->second;
    }

    std::shared_ptr<MemoryPool> pool_;
    InputAffine affine_;
    std::map<std::array<Index, 8>, std::unique_ptr<Plan>> plans_;
};

}  // namespace ganinv::cuda
