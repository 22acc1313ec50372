/// @file network_ops.cuh
/// @brief The non-convolution layers of the CUDA VGG16 and face-ResNet twins (models/vgg16_cuda.cuh,
///        models/face_resnet_cuda.cuh): bias + ReLU epilogues (with an optional pre-activation copy or
///        residual add), the ReLU mask of the backward, max pooling (any window and stride) whose
///        backward recomputes each window's winner instead of storing it, the face ResNet's
///        down-sampling residual (2x2 average-pool shortcut with zero channels, bottom/right zero
///        padded branch), and its global mean + fc head. Every kernel writes every element of
///        its output, so no output needs clearing first. Also `TrunkConvs`, the networks'
///        convolution weights and the one place that runs them through cuDNN, in float32 or in
///        the reference precision (double accumulation, below).
///
/// Float operations are ordered as in the Cpu layers (nn/pooling.hpp, models/face_resnet.hpp),
/// and pooling ties go to the first element in row-major order (strict >), as on the CPU: the
/// same input gives the same winners, and the backward adds contributions in the CPU's order.
#pragma once

#include "ganinv/core/error.hpp"
#include "ganinv/core/tensor.hpp"
#include "ganinv/cuda/cudnn_conv.hpp"
#include "ganinv/cuda/device_buffer.hpp"
#include "ganinv/cuda/elementwise.cuh"
#include "ganinv/cuda/launch.cuh"
#include "ganinv/cuda/memory_pool.hpp"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <memory>
#include <utility>
#include <vector>

namespace ganinv::cuda {

/// A typed device array from a MemoryPool (index tables, double accumulators), freed to the pool.
template <class T>
class PoolArray {
public:
    PoolArray() = default;
    PoolArray(std::shared_ptr<MemoryPool> pool, std::size_t n) : pool_(std::move(pool)), n_(n) {
        if (n_) block_ = pool_->allocate(sizeof(T) * n_);
    }
    /// A copy of `host` (the upload is waited for: `host` may go away afterwards).
    PoolArray(std::shared_ptr<MemoryPool> pool, const std::vector<T>& host) : PoolArray(std::move(pool), host.size()) {
        if (n_ == 0) return;
        GANINV_CUDA_CHECK(cudaMemcpyAsync(block_.ptr, host.data(), sizeof(T) * n_, cudaMemcpyHostToDevice, pool_->stream()));
        GANINV_CUDA_CHECK(cudaStreamSynchronize(pool_->stream()));
        pool_->traffic().upload(sizeof(T) * n_);
        ++pool_->traffic().syncs;
    }
    PoolArray(PoolArray&& o) noexcept : pool_(std::move(o.pool_)), n_(std::exchange(o.n_, 0)), block_(std::exchange(o.block_, Block{})) {}
    PoolArray& operator=(PoolArray&& o) noexcept {
        if (this != &o) {
            reset();
            pool_ = std::move(o.pool_);
            n_ = std::exchange(o.n_, 0);
            block_ = std::exchange(o.block_, Block{});
        }
        return *this;
    }
    PoolArray(const PoolArray&) = delete;
    PoolArray& operator=(const PoolArray&) = delete;
    ~PoolArray() { reset(); }

    T* data() { return static_cast<T*>(block_.ptr); }
    const T* data() const { return static_cast<const T*>(block_.ptr); }
    std::size_t size() const { return n_; }
    /// Waits for the stream, then copies to the host.
    std::vector<T> download() const {
        std::vector<T> h(n_);
        if (n_ == 0) return h;
        GANINV_CUDA_CHECK(cudaMemcpyAsync(h.data(), block_.ptr, sizeof(T) * n_, cudaMemcpyDeviceToHost, pool_->stream()));
        GANINV_CUDA_CHECK(cudaStreamSynchronize(pool_->stream()));
        pool_->traffic().download(sizeof(T) * n_);
        ++pool_->traffic().syncs;
        return h;
    }

private:
    void reset() noexcept {
        if (pool_ && block_.ptr) pool_->release(block_);
        block_ = Block{};
    }
    std::shared_ptr<MemoryPool> pool_;
    std::size_t n_ = 0;
    Block block_;
};

namespace kernels {

/// y = relu(y + bias[c]) in place; pre (nullable) receives y + bias (a pre-activation tap).
template <int = 0>  // a template: defined once however many TUs of a binary include this
__global__ void net_bias_relu(float* y, const float* bias, long long C, long long HW, long long total, float* pre) {
    GANINV_GRID_STRIDE(i, total) {
        const float v = y[i] + bias[(i / HW) % C];
        if (pre) pre[i] = v;
        y[i] = v > 0.0f ? v : 0.0f;
    }
}

/// y = relu((y + bias[c]) + skip) in place: the face ResNet's identity residual.
template <int = 0>  // a template: defined once however many TUs of a binary include this
__global__ void net_bias_residual_relu(float* y, const float* bias, const float* skip, long long C, long long HW,
                                       long long total) {
    GANINV_GRID_STRIDE(i, total) {
        const float v = (y[i] + bias[(i / HW) % C]) + skip[i];
        y[i] = v > 0.0f ? v : 0.0f;
    }
}

/// g = (y > 0) ? g : 0, y the ReLU output.
template <int = 0>  // a template: defined once however many TUs of a binary include this
__global__ void net_relu_mask(const float* y, float* g, long long n) {
    GANINV_GRID_STRIDE(i, n) if (!(y[i] > 0.0f)) g[i] = 0.0f;
}

__device__ __forceinline__ long long window_argmax(const float* xp, long long W, int k, int s, long long oy, long long ox) {
    long long best = oy * s * W + ox * s;
    float v = xp[best];
    for (int ky = 0; ky < k; ++ky)
        for (int kx = 0; kx < k; ++kx) {
            const long long idx = (oy * s + ky) * W + ox * s + kx;
            if (xp[idx] > v) {
                v = xp[idx];
                best = idx;
            }
        }
    return best;
}

template <int = 0>  // a template: defined once however many TUs of a binary include this
__global__ void net_max_pool(const float* x, long long planes, long long H, long long W, int k, int s, long long OH,
                             long long OW, float* y) {
    GANINV_GRID_STRIDE(i, planes * OH * OW) {
        const long long p = i / (OH * OW), r = i % (OH * OW);
        const float* xp = x + p * H * W;
        y[i] = xp[window_argmax(xp, W, k, s, r / OW, r % OW)];
    }
}

/// gx[p, iy, ix] = sum of gy over the windows (ascending, as the CPU's scatter) that contain
/// (iy, ix) and whose winner it is; 0 for inputs that win nothing or lie outside every window.
template <int = 0>  // a template: defined once however many TUs of a binary include this
__global__ void net_max_pool_backward(const float* x, const float* gy, long long planes, long long H, long long W, int k,
                                      int s, long long OH, long long OW, float* gx) {
    GANINV_GRID_STRIDE(i, planes * H * W) {
        const long long p = i / (H * W), r = i % (H * W), iy = r / W, ix = r % W;
        const float* xp = x + p * H * W;
        const long long oy0 = iy >= k ? (iy - k) / s + 1 : 0, ox0 = ix >= k ? (ix - k) / s + 1 : 0;
        const long long oy1 = min(OH - 1, iy / s), ox1 = min(OW - 1, ix / s);
        float acc = 0.0f;
        for (long long oy = oy0; oy <= oy1; ++oy)
            for (long long ox = ox0; ox <= ox1; ++ox)
                if (window_argmax(xp, W, k, s, oy, ox) == r) acc += gy[(p * OH + oy) * OW + ox];
        gx[i] = acc;
    }
}

/// The down block's output: relu(avgpool2x2(x)[c] (0 for c >= C) + (t2 + bias) (0 outside Ho x Wo)).
template <int = 0>  // a template: defined once however many TUs of a binary include this
__global__ void net_residual_down(const float* x, const float* t2, const float* bias, long long N, long long C,
                                  long long O, long long H, long long W, long long Hs, long long Ws, long long Ho,
                                  long long Wo, float* out) {
    GANINV_GRID_STRIDE(i, N * O * Hs * Ws) {
        const long long j = i % Ws, r = i / Ws, y = r % Hs, no = r / Hs, o = no % O, n = no / O;
        float v = 0.0f;
        if (o < C) {
            const float* xp = x + ((n * C + o) * H + 2 * y) * W + 2 * j;
            float acc = 0.0f;
            acc += xp[0];
            acc += xp[1];
            acc += xp[W];
            acc += xp[W + 1];
            v = acc * 0.25f;
        }
        if (y < Ho && j < Wo) v += t2[((n * O + o) * Ho + y) * Wo + j] + bias[o];
        out[i] = v > 0.0f ? v : 0.0f;
    }
}

/// Branch gradient of the down block: g_t2 = the Ho x Wo corner of g, masked by out > 0.
template <int = 0>  // a template: defined once however many TUs of a binary include this
__global__ void net_residual_down_branch_grad(const float* out, const float* g, long long N, long long O, long long Hs,
                                              long long Ws, long long Ho, long long Wo, float* g_t2) {
    GANINV_GRID_STRIDE(i, N * O * Ho * Wo) {
        const long long j = i % Wo, r = i / Wo, y = r % Ho, no = r / Ho;
        const long long src = (no * Hs + y) * Ws + j;
        g_t2[i] = out[src] > 0.0f ? g[src] : 0.0f;
    }
}

/// Shortcut gradient of the down block added to gx [N, C, H, W]: the masked g of channel c < C
/// at (y/2, x/2), times 1/4 (inputs the 2x2/2 pool never reads get nothing).
template <int = 0>  // a template: defined once however many TUs of a binary include this
__global__ void net_residual_down_skip_grad_add(const float* out, const float* g, long long N, long long C, long long O,
                                                long long H, long long W, long long Hs, long long Ws, float* gx) {
    GANINV_GRID_STRIDE(i, N * C * H * W) {
        const long long ix = i % W, r = i / W, iy = r % H, nc = r / H, c = nc % C, n = nc / C;
        if (iy / 2 >= Hs || ix / 2 >= Ws) continue;
        const long long src = ((n * O + c) * Hs + iy / 2) * Ws + ix / 2;
        if (out[src] > 0.0f) gx[i] += g[src] * 0.25f;
    }
}

/// desc[n, k] = sum_c mean_p(h[n, c, :]) * fc[c, k] (mean in float, sum in double, as the CPU).
template <int = 0>  // a template: defined once however many TUs of a binary include this
__global__ void net_mean_fc(const float* h, const float* fc, long long N, long long C, long long P, long long D, float* desc) {
    GANINV_GRID_STRIDE(i, N * D) {
        const long long n = i / D, k = i % D;
        double acc = 0.0;
        for (long long c = 0; c < C; ++c) {
            float m = 0.0f;
            for (long long p = 0; p < P; ++p) m += h[(n * C + c) * P + p];
            acc += static_cast<double>(m / static_cast<float>(P)) * fc[c * D + k];
        }
        desc[i] = static_cast<float>(acc);
    }
}

/// g[n, c, p] = (sum_k gd[n, k] fc[c, k]) / P.
template <int = 0>  // a template: defined once however many TUs of a binary include this
__global__ void net_mean_fc_backward(const float* gd, const float* fc, long long N, long long C, long long P, long long D,
                                     float* g) {
    GANINV_GRID_STRIDE(i, N * C * P) {
        const long long c = (i / P) % C, n = i / (P * C);
        double acc = 0.0;
        for (long long k = 0; k < D; ++k) acc += static_cast<double>(gd[n * D + k]) * fc[c * D + k];
        g[i] = static_cast<float>(acc / static_cast<double>(P));
    }
}

/// Exact widening of float to double (the reference precision's conv inputs and weights).
template <int = 0>  // a template: defined once however many TUs of a binary include this
__global__ void net_float_to_double(const float* x, double* y, long long n) {
    GANINV_GRID_STRIDE(i, n) y[i] = static_cast<double>(x[i]);
}

/// Round-to-nearest narrowing of a double conv result, as the Cpu's `.cast<float>()`.
template <int = 0>  // a template: defined once however many TUs of a binary include this
__global__ void net_double_to_float(const double* x, float* y, long long n) {
    GANINV_GRID_STRIDE(i, n) y[i] = static_cast<float>(x[i]);
}

/// Round-to-nearest-even narrowing to BF16 (the BF16 convolutions' inputs and weights).
template <int = 0>  // a template: defined once however many TUs of a binary include this
__global__ void net_float_to_bf16(const float* x, __nv_bfloat16* y, long long n) {
    GANINV_GRID_STRIDE(i, n) y[i] = __float2bfloat16_rn(x[i]);
}

/// Exact widening of a BF16 conv result to float.
template <int = 0>  // a template: defined once however many TUs of a binary include this
__global__ void net_bf16_to_float(const __nv_bfloat16* x, float* y, long long n) {
    GANINV_GRID_STRIDE(i, n) y[i] = __bfloat162float(x[i]);
}

}  // namespace kernels

/// Host launchers (all on `stream`, all checked).
struct NetOps {
    static long long ll(Index v) { return static_cast<long long>(v); }

    static void bias_relu(float* y, const float* bias, Index N, Index C, Index HW, float* pre, cudaStream_t s) {
        launch_1d(kernels::net_bias_relu<>, N * C * HW, s, y, bias, ll(C), ll(HW), ll(N * C * HW), pre);
    }
    static void bias_residual_relu(float* y, const float* bias, const float* skip, Index N, Index C, Index HW,
                                   cudaStream_t s) {
        launch_1d(kernels::net_bias_residual_relu<>, N * C * HW, s, y, bias, skip, ll(C), ll(HW), ll(N * C * HW));
    }
    static void relu_mask(const float* y, float* g, Index n, cudaStream_t s) {
        launch_1d(kernels::net_relu_mask<>, n, s, y, g, ll(n));
    }
    static void max_pool(const float* x, Index planes, Index H, Index W, int k, int st, float* y, cudaStream_t s) {
        GANINV_CHECK(H >= k && W >= k, ShapeError, "max_pool2d: input ", H, "x", W, " is smaller than the ", k, "x", k,
                     " window");
        const Index OH = (H - k) / st + 1, OW = (W - k) / st + 1;
        launch_1d(kernels::net_max_pool<>, planes * OH * OW, s, x, ll(planes), ll(H), ll(W), k, st, ll(OH), ll(OW), y);
    }
    static void max_pool_backward(const float* x, const float* gy, Index planes, Index H, Index W, int k, int st,
                                  float* gx, cudaStream_t s) {
        const Index OH = (H - k) / st + 1, OW = (W - k) / st + 1;
        launch_1d(kernels::net_max_pool_backward<>, planes * H * W, s, x, gy, ll(planes), ll(H), ll(W), k, st, ll(OH),
                  ll(OW), gx);
    }
    static void axpy(Index n, float alpha, const float* x, float* y, cudaStream_t s) {
        launch_1d(kernels::axpy<float>, n, s, ll(n), alpha, x, y);
    }
    static void to_double(const float* x, double* y, Index n, cudaStream_t s) {
        launch_1d(kernels::net_float_to_double<>, n, s, x, y, ll(n));
    }
    static void to_float(const double* x, float* y, Index n, cudaStream_t s) {
        launch_1d(kernels::net_double_to_float<>, n, s, x, y, ll(n));
    }
    static void to_bf16(const float* x, __nv_bfloat16* y, Index n, cudaStream_t s) {
        launch_1d(kernels::net_float_to_bf16<>, n, s, x, y, ll(n));
    }
    static void to_float(const __nv_bfloat16* x, float* y, Index n, cudaStream_t s) {
        launch_1d(kernels::net_bf16_to_float<>, n, s, x, y, ll(n));
    }
};

/// A network's fixed convolution weights on the device and the calls that run them (cuDNN, no
/// bias: the epilogue kernels above add it). Float32 by default.
///
/// BF16 (a CudnnContext made for Precision::bf16, i.e. a backend with `--cuda-precision bf16`):
/// each convolution rounds its float input (or output gradient) to BF16, multiplies by a BF16
/// copy of the weights (made once, when the layer is added), accumulates in float inside cuDNN
/// and widens the BF16 result back to float. Everything between convolutions (bias, ReLU, pools,
/// taps, heads) stays float32, as in TF32 mode; so does the reference precision, which wins
/// over BF16 when both are asked for. Its error against float32 is measured in the tests
/// (test_cuda_network_losses, "[bf16]") and written in docs/cuda.md.
///
/// Reference precision (`set_reference_precision(true)`), the twin of the Cpu's
/// `nn::Conv2dShape::precise` (nn/conv2d.hpp): a convolution widens its float input to double,
/// multiplies by a double copy of the float weights, accumulates in double and rounds the result
/// to float once. Everything between convolutions stays float32 exactly as on the Cpu: the bias
/// is added to the rounded float (the Cpu's `Y += bias` after `.cast<float>()`), the ReLUs, pools,
/// residual adds, taps and loss heads are the float kernels. The max-pool and ReLU decisions are
/// therefore taken on the same float values the Cpu's double mode produces, up to the double
/// summation order (a 1e-16 relative difference that reaches a float only when it straddles a
/// rounding boundary). The backward-data convolution accumulates the whole transposed sum in
/// double and rounds once; the Cpu rounds each of the k*k kernel taps of an input pixel to float
/// and adds them in float (im2col/col2im): an ulp-level difference of the gradient, no decision
/// depends on it. The double weights are made on first use (exact: every float is a double) and
/// kept while the object lives; the double activations are scratch from the backend's pool.
class TrunkConvs {
public:
    TrunkConvs() = default;
    TrunkConvs(std::shared_ptr<CudnnContext> dnn, std::shared_ptr<MemoryPool> pool)
        : dnn_(std::move(dnn)), pool_(std::move(pool)) {}

    /// Appends a layer's weights [o, c, k, k]; returns its index for forward/backward_data.
    std::size_t add(DeviceTensor w) {
        GANINV_CHECK(w.rank() == 4, ShapeError, "TrunkConvs: conv weights must be [out, in, k, k], got ",
                     shape_to_string(w.shape()));
        weights_.push_back(std::move(w));
        weights64_.emplace_back();
        weights16_.emplace_back();
        if (precise_) make_double(weights_.size() - 1);
        if (bf16()) make_bf16(weights_.size() - 1);
        return weights_.size() - 1;
    }

    void set_reference_precision(bool on) {
        precise_ = on;
        if (on)
            for (std::size_t l = 0; l < weights_.size(); ++l) make_double(l);
    }
    bool reference_precision() const { return precise_; }
    /// The convolutions run in BF16 (the context's precision), unless the reference precision is on.
    bool bf16() const { return dnn_ != nullptr && dnn_->precision() == Precision::bf16; }

    /// y [n, o, out_h, out_w] = conv(x [n, c, h, w], weights of `layer`).
    void forward(std::size_t layer, const ConvGeometry& g, const float* x, float* y) const {
        check(layer, g);
        const Index nx = g.n * g.c * g.h * g.w, ny = g.n * g.o * g.out_h() * g.out_w();
        if (!precise_ && bf16()) {
            PoolArray<__nv_bfloat16> x16(pool_, static_cast<std::size_t>(nx)), y16(pool_, static_cast<std::size_t>(ny));
            NetOps::to_bf16(x, x16.data(), nx, pool_->stream());
            dnn_->forward(g, x16.data(), weights16_[layer]->data(), y16.data());
            NetOps::to_float(y16.data(), y, ny, pool_->stream());
            return;
        }
        if (!precise_) {
            dnn_->forward(g, x, weights_[layer].data(), y);
            return;
        }
        PoolArray<double> x64(pool_, static_cast<std::size_t>(nx)), y64(pool_, static_cast<std::size_t>(ny));
        NetOps::to_double(x, x64.data(), nx, pool_->stream());
        dnn_->forward(g, x64.data(), weights64_[layer]->data(), y64.data());
        NetOps::to_float(y64.data(), y, ny, pool_->stream());
    }

    /// gx [n, c, h, w] = conv^T(gy [n, o, out_h, out_w], weights of `layer`), every element written.
    void backward_data(std::size_t layer, const ConvGeometry& g, const float* gy, float* gx) const {
        check(layer, g);
        const Index nx = g.n * g.c * g.h * g.w, ny = g.n * g.o * g.out_h() * g.out_w();
        if (!precise_ && bf16()) {
            PoolArray<__nv_bfloat16> gy16(pool_, static_cast<std::size_t>(ny)), gx16(pool_, static_cast<std::size_t>(nx));
            NetOps::to_bf16(gy, gy16.data(), ny, pool_->stream());
            dnn_->backward_data(g, weights16_[layer]->data(), gy16.data(), gx16.data());
            NetOps::to_float(gx16.data(), gx, nx, pool_->stream());
            return;
        }
        if (!precise_) {
            dnn_->backward_data(g, weights_[layer].data(), gy, gx);
            return;
        }
        PoolArray<double> gy64(pool_, static_cast<std::size_t>(ny)), gx64(pool_, static_cast<std::size_t>(nx));
        NetOps::to_double(gy, gy64.data(), ny, pool_->stream());
        dnn_->backward_data(g, weights64_[layer]->data(), gy64.data(), gx64.data());
        NetOps::to_float(gx64.data(), gx, nx, pool_->stream());
    }

    const DeviceTensor& weight(std::size_t layer) const { return weights_.at(layer); }
    std::size_t size() const { return weights_.size(); }

private:
    void make_double(std::size_t l) {
        if (weights64_[l]) return;
        const DeviceTensor& w = weights_[l];
        auto w64 = std::make_shared<PoolArray<double>>(pool_, static_cast<std::size_t>(w.numel()));
        NetOps::to_double(w.data(), w64->data(), w.numel(), pool_->stream());
        weights64_[l] = std::move(w64);
    }
    void make_bf16(std::size_t l) {
        if (weights16_[l]) return;
        const DeviceTensor& w = weights_[l];
        auto w16 = std::make_shared<PoolArray<__nv_bfloat16>>(pool_, static_cast<std::size_t>(w.numel()));
        NetOps::to_bf16(w.data(), w16->data(), w.numel(), pool_->stream());
        weights16_[l] = std::move(w16);
    }
    /// The geometry must be the weights' (a mismatch would make cuDNN read past the weights).
    void check(std::size_t layer, const ConvGeometry& g) const {
        GANINV_CHECK(dnn_ != nullptr && layer < weights_.size(), ValueError, "TrunkConvs: no conv layer ", layer, " (",
                     weights_.size(), " loaded)");
        const Shape& s = weights_[layer].shape();
        GANINV_CHECK(s[0] == g.o && s[1] == g.c && s[2] == g.k && s[3] == g.k, ShapeError, "TrunkConvs: layer ", layer,
                     " has weights ", shape_to_string(s), " but was called with ", g.describe());
    }

    std::shared_ptr<CudnnContext> dnn_;
    std::shared_ptr<MemoryPool> pool_;
    std::vector<DeviceTensor> weights_;
    // Shared, never written after make_double: a copied network (the losses are copyable) reuses
    // them instead of converting again.
    std::vector<std::shared_ptr<const PoolArray<double>>> weights64_;
    std::vector<std::shared_ptr<const PoolArray<__nv_bfloat16>>> weights16_;  // the same, for BF16
    bool precise_ = false;
};

}  // namespace ganinv::cuda
