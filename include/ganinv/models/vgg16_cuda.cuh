/// @file vgg16_cuda.cuh
/// @brief `CudaVgg16`: the VGG16 feature trunk of models/vgg16.hpp on the GPU — the same layer
///        table (kVgg16Convs), taps (VggTap), depth and size checks (Vgg16::depth_for) and the
///        same weights (uploaded from a `Vgg16`), with cuDNN for the 3x3 convolutions (forward
///        and backward-data) and our kernels (cuda/network_ops.cuh) for bias + ReLU, the ReLU
///        mask and the 2x2 max pools.
///
/// forward keeps every layer's ReLU output when a backward will follow; the pools' winners are
/// not stored, the backward recomputes them from those outputs with the CPU's tie rule.
/// `set_reference_precision(true)` accumulates the convolutions in double, as
/// `Vgg16::set_reference_precision` does on the CPU (see TrunkConvs for exactly what is double).
#pragma once

#include "ganinv/backend/cuda.cuh"
#include "ganinv/cuda/cudnn_conv.hpp"
#include "ganinv/cuda/network_ops.cuh"
#include "ganinv/models/vgg16.hpp"

#include <memory>
#include <span>
#include <vector>

namespace ganinv::cuda {

class CudaVgg16 {
public:
    /// What forward keeps (device tensors): the requested taps and, for the backward, every
    /// layer's ReLU output.
    struct Trace {
        Shape input_shape;
        int depth = 0;
        std::vector<DeviceTensor> taps;  ///< in request order
        std::vector<DeviceTensor> relu;  ///< [depth] post-ReLU outputs (backward only)
    };

    CudaVgg16() = default;
    /// Uploads `host`'s weights; convolutions run through `dnn` (bound to backend's stream).
    CudaVgg16(const Cuda& backend, std::shared_ptr<CudnnContext> dnn, const Vgg16& host)
        : backend_(std::make_shared<Cuda>(backend)), convs_(std::move(dnn), backend.empty(Shape{0}).pool()) {
        GANINV_CHECK(host.loaded(), ValueError, "CudaVgg16: the host Vgg16 has no weights");
        for (std::size_t l = 0; l < kVgg16Convs.size(); ++l) {
            convs_.add(backend.upload(host.weight(static_cast<int>(l))));
            biases_.push_back(backend.upload(host.bias(static_cast<int>(l))));
        }
    }

    /// Double-accumulated convolutions (TrunkConvs), for parity checks; float32 when off (the
    /// default).
    void set_reference_precision(bool on) { convs_.set_reference_precision(on); }
    bool reference_precision() const { return convs_.reference_precision(); }

    /// x [N, 3, H, W] (already mapped to the trunk's input range).
    Trace forward(const DeviceTensor& x, std::span<const VggTap> taps, bool for_backward) const {
        GANINV_CHECK(backend_ != nullptr, ValueError, "CudaVgg16: no weights loaded");
        Trace t;
        t.input_shape = x.shape();
        t.depth = Vgg16::depth_for(taps, x.shape());
        t.taps.resize(taps.size());
        if (for_backward) t.relu.resize(static_cast<std::size_t>(t.depth));
        const Index N = x.dim(0);
        const cudaStream_t s = backend_->stream();
        const DeviceTensor* cur = &x;
        DeviceTensor hold;
        for (int l = 0; l < t.depth; ++l) {
            const auto& c = kVgg16Convs[static_cast<std::size_t>(l)];
            Index H = cur->dim(2), W = cur->dim(3);
            if (c.pool_before) {
                DeviceTensor pooled = backend_->empty({N, c.in, (H - 2) / 2 + 1, (W - 2) / 2 + 1});
                NetOps::max_pool(cur->data(), N * c.in, H, W, 2, 2, pooled.data(), s);
                hold = std::move(pooled);
                cur = &hold;
                H = cur->dim(2);
                W = cur->dim(3);
            }
            DeviceTensor y = backend_->empty({N, c.out, H, W});
            convs_.forward(static_cast<std::size_t>(l), geometry(l, N, H, W), cur->data(), y.data());
            // The epilogue writes the (first) pre-activation tap of this layer on the way.
            DeviceTensor* pre = nullptr;
            for (std::size_t i = 0; i < taps.size(); ++i)
                if (taps[i].layer == l && !taps[i].after_relu && !pre) pre = &(t.taps[i] = backend_->empty(y.shape()));
            NetOps::bias_relu(y.data(), biases_[static_cast<std::size_t>(l)].data(), N, c.out, H * W,
                              pre ? pre->data() : nullptr, s);
            for (std::size_t i = 0; i < taps.size(); ++i)
                if (taps[i].layer == l && (taps[i].after_relu || &t.taps[i] != pre))
                    t.taps[i] = taps[i].after_relu ? y : *pre;
            if (for_backward) {
                t.relu[static_cast<std::size_t>(l)] = std::move(y);
                cur = &t.relu[static_cast<std::size_t>(l)];
            } else {
                hold = std::move(y);
                cur = &hold;
            }
        }
        return t;
    }

    /// dL/dx [N, 3, H, W] from dL/dtap for the taps given to forward (same order; an empty
    /// tensor = zero).
    DeviceTensor backward(const Trace& t, std::span<const VggTap> taps, std::span<const DeviceTensor> grads) const {
        GANINV_CHECK(static_cast<int>(t.relu.size()) == t.depth && t.depth > 0, ValueError,
                     "CudaVgg16::backward needs a trace made by forward(..., for_backward = true)");
        GANINV_CHECK(taps.size() == grads.size(), ValueError, "CudaVgg16::backward: ", taps.size(), " taps but ",
                     grads.size(), " gradients");
        const Index N = t.input_shape[0];
        const cudaStream_t s = backend_->stream();
        DeviceTensor g = backend_->zeros(t.relu.back().shape());
        for (int l = t.depth - 1; l >= 0; --l) {
            const auto& c = kVgg16Convs[static_cast<std::size_t>(l)];
            const DeviceTensor& act = t.relu[static_cast<std::size_t>(l)];
            add_tap_grads(g, taps, grads, l, true);
            NetOps::relu_mask(act.data(), g.data(), g.numel(), s);
            add_tap_grads(g, taps, grads, l, false);
            const Index H = act.dim(2), W = act.dim(3);
            DeviceTensor gin = backend_->empty({N, c.in, H, W});
            convs_.backward_data(static_cast<std::size_t>(l), geometry(l, N, H, W), g.data(), gin.data());
            if (c.pool_before) {
                const DeviceTensor& prev = t.relu[static_cast<std::size_t>(l - 1)];
                g = backend_->empty(prev.shape());
                NetOps::max_pool_backward(prev.data(), gin.data(), N * c.in, prev.dim(2), prev.dim(3), 2, 2, g.data(), s);
            } else {
                g = std::move(gin);
            }
        }
        return g;
    }

    const Cuda& backend() const { return *backend_; }

private:
    static ConvGeometry geometry(int l, Index N, Index H, Index W) {
        const auto& c = kVgg16Convs[static_cast<std::size_t>(l)];
        return {N, c.in, c.out, H, W, 3, 1, 1};
    }
    void add_tap_grads(DeviceTensor& g, std::span<const VggTap> taps, std::span<const DeviceTensor> grads, int layer,
                       bool after_relu) const {
        for (std::size_t i = 0; i < taps.size(); ++i) {
            if (taps[i].layer != layer || taps[i].after_relu != after_relu || grads[i].empty()) continue;
            GANINV_CHECK(grads[i].shape() == g.shape(), ShapeError, "CudaVgg16::backward: gradient of ",
                         taps[i].name(), " has shape ", shape_to_string(grads[i].shape()), ", expected ",
                         shape_to_string(g.shape()));
            NetOps::axpy(g.numel(), 1.0f, grads[i].data(), g.data(), backend_->stream());
        }
    }

    std::shared_ptr<Cuda> backend_;
    TrunkConvs convs_;
    std::vector<DeviceTensor> biases_;
};

}  // namespace ganinv::cuda
