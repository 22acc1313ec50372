/// @file face_resnet_cuda.cuh
/// @brief `CudaFaceResNet`: the dlib face-recognition ResNet of models/face_resnet.hpp on the
///        GPU — the same layer list and folded weights (uploaded from a `FaceResNet`: stem(),
///        blocks(), fc()), cuDNN for the convolutions (forward, backward-data), our kernels for
///        the input normalisation, bias + ReLU, the 3x3/2 max pool, the residual adds, the
///        down-sampling shortcut and the global mean + fc descriptor head.
///        `set_reference_precision(true)` accumulates the convolutions in double, as
///        `FaceResNet::set_reference_precision` does on the CPU (TrunkConvs, cuda/network_ops.cuh).
#pragma once

#include "ganinv/backend/cuda.cuh"
#include "ganinv/cuda/cudnn_conv.hpp"
#include "ganinv/cuda/input_stage.cuh"
#include "ganinv/cuda/network_ops.cuh"
#include "ganinv/models/face_resnet.hpp"

#include <memory>
#include <string>
#include <vector>

namespace ganinv::cuda {

class CudaFaceResNet {
public:
    /// What backward needs (device tensors): ReLU outputs, from which the masks and the max-pool
    /// winners are recomputed.
    struct Cache {
        Index batch = 0;
        DeviceTensor stem;  ///< ReLU(stem conv) [N, 32, 72, 72]
        struct BlockState {
            Shape in_shape;
            DeviceTensor t1, out;
        };
        std::vector<BlockState> blocks;
    };

    CudaFaceResNet() = default;
    CudaFaceResNet(const Cuda& backend, std::shared_ptr<CudnnContext> dnn, const FaceResNet& host)
        : backend_(std::make_shared<Cuda>(backend)), convs_(std::move(dnn), backend.empty(Shape{0}).pool()) {
        GANINV_CHECK(!host.blocks().empty(), ValueError, "CudaFaceResNet: the host FaceResNet has no weights");
        stem_ = upload(host.stem());
        for (const FaceResNet::Block& b : host.blocks()) blocks_.push_back({b.name, b.down, upload(b.conv1), upload(b.conv2)});
        fc_ = backend.upload(host.fc());
        for (int c = 0; c < 3; ++c) {
            input_.shift[c] = FaceResNet::kMean[static_cast<std::size_t>(c)];
            input_.scale[c] = 255.0f;  // face-api: subtract the mean, then divide
        }
    }

    /// Double-accumulated convolutions (TrunkConvs), for parity checks; float32 when off (the
    /// default).
    void set_reference_precision(bool on) { convs_.set_reference_precision(on); }
    bool reference_precision() const { return convs_.reference_precision(); }

    /// rgb [N, 3, 150, 150], 0..255 -> descriptors [N, 128] (not normalised).
    DeviceTensor forward(const DeviceTensor& rgb, Cache* cache = nullptr) const {
        GANINV_CHECK(backend_ != nullptr, ValueError, "CudaFaceResNet: no weights loaded");
        constexpr Index S = FaceResNet::kInput;
        GANINV_CHECK(rgb.rank() == 4 && rgb.dim(1) == 3 && rgb.dim(2) == S && rgb.dim(3) == S, ShapeError,
                     "FaceResNet: input must be [N, 3, 150, 150] RGB 0..255, got ", shape_to_string(rgb.shape()));
        const Index N = rgb.dim(0);
        const cudaStream_t s = backend_->stream();
        DeviceTensor x = backend_->empty(rgb.shape());
        launch_1d(kernels::net_channel_affine<>, x.numel(), s, rgb.data(), ll(N), 3LL, ll(S * S), input_, x.data());
        Cache local;
        Cache& cc = cache ? *cache : local;
        cc = Cache{};
        cc.batch = N;
        cc.stem = conv(stem_, x);
        NetOps::bias_relu(cc.stem.data(), stem_.b.data(), N, 32, cc.stem.dim(2) * cc.stem.dim(3), nullptr, s);
        const Index H = cc.stem.dim(2), W = cc.stem.dim(3);
        DeviceTensor h = backend_->empty({N, 32, (H - 3) / 2 + 1, (W - 3) / 2 + 1});
        NetOps::max_pool(cc.stem.data(), N * 32, H, W, 3, 2, h.data(), s);
        const DeviceTensor* cur = &h;
        for (const DBlock& b : blocks_) {
            cc.blocks.push_back(block_forward(b, *cur));
            cur = &cc.blocks.back().out;
        }
        const Index C = cur->dim(1), P = cur->dim(2) * cur->dim(3);
        DeviceTensor desc = backend_->empty({N, FaceResNet::kDescriptor});
        launch_1d(kernels::net_mean_fc<>, desc.numel(), s, cur->data(), fc_.data(), ll(N), ll(C), ll(P),
                  ll(FaceResNet::kDescriptor), desc.data());
        return desc;
    }

    /// dL/drgb [N, 3, 150, 150] (per 0..255 unit) from dL/ddescriptor [N, 128].
    DeviceTensor backward(const Cache& cc, const DeviceTensor& grad_desc) const {
        GANINV_CHECK(cc.batch > 0 && cc.blocks.size() == blocks_.size(), ValueError,
                     "CudaFaceResNet::backward needs the cache filled by forward(rgb, &cache)");
        GANINV_CHECK(grad_desc.shape() == (Shape{cc.batch, FaceResNet::kDescriptor}), ShapeError,
                     "CudaFaceResNet::backward: descriptor gradient has shape ", shape_to_string(grad_desc.shape()));
        const Index N = cc.batch;
        const cudaStream_t s = backend_->stream();
        const DeviceTensor& last = cc.blocks.back().out;
        const Index C = last.dim(1), P = last.dim(2) * last.dim(3);
        DeviceTensor g = backend_->empty(last.shape());
        launch_1d(kernels::net_mean_fc_backward<>, g.numel(), s, grad_desc.data(), fc_.data(), ll(N), ll(C), ll(P),
                  ll(FaceResNet::kDescriptor), g.data());
        for (std::size_t i = blocks_.size(); i-- > 0;) g = block_backward(blocks_[i], cc.blocks[i], std::move(g));
        DeviceTensor gs = backend_->empty(cc.stem.shape());
        NetOps::max_pool_backward(cc.stem.data(), g.data(), N * 32, cc.stem.dim(2), cc.stem.dim(3), 3, 2, gs.data(), s);
        NetOps::relu_mask(cc.stem.data(), gs.data(), gs.numel(), s);
        DeviceTensor gx = conv_backward(stem_, gs, {N, 3, FaceResNet::kInput, FaceResNet::kInput});
        DeviceTensor grgb = backend_->empty(gx.shape());
        launch_1d(kernels::net_channel_affine_backward<>, grgb.numel(), s, gx.data(), ll(N), 3LL,
                  ll(FaceResNet::kInput * FaceResNet::kInput), input_, grgb.data());
        return grgb;
    }

    const Cuda& backend() const { return *backend_; }

private:
    struct DConv {
        std::size_t id = 0;  ///< its weights in convs_
        DeviceTensor b;
        Index in = 0, out = 0, k = 0, stride = 1, pad = 0;
        ConvGeometry geometry(Index n, Index h, Index wd) const { return {n, in, out, h, wd, k, stride, pad}; }
    };
    struct DBlock {
        std::string name;
        bool down = false;
        DConv conv1, conv2;
    };
    static long long ll(Index v) { return static_cast<long long>(v); }

    DConv upload(const FaceResNet::Conv& c) {
        return {convs_.add(backend_->upload(c.weight)), backend_->upload(c.bias), c.weight.dim(1), c.weight.dim(0),
                c.weight.dim(2), c.stride, c.pad};
    }
    /// conv without bias (the epilogue kernels add it).
    DeviceTensor conv(const DConv& c, const DeviceTensor& x) const {
        const ConvGeometry g = c.geometry(x.dim(0), x.dim(2), x.dim(3));
        DeviceTensor y = backend_->empty({g.n, g.o, g.out_h(), g.out_w()});
        convs_.forward(c.id, g, x.data(), y.data());
        return y;
    }
    DeviceTensor conv_backward(const DConv& c, const DeviceTensor& gy, const Shape& in) const {
        DeviceTensor gx = backend_->empty(in);
        convs_.backward_data(c.id, c.geometry(in[0], in[2], in[3]), gy.data(), gx.data());
        return gx;
    }

    Cache::BlockState block_forward(const DBlock& b, const DeviceTensor& x) const {
        const cudaStream_t s = backend_->stream();
        Cache::BlockState st;
        st.in_shape = x.shape();
        st.t1 = conv(b.conv1, x);
        NetOps::bias_relu(st.t1.data(), b.conv1.b.data(), st.t1.dim(0), st.t1.dim(1), st.t1.dim(2) * st.t1.dim(3),
                          nullptr, s);
        DeviceTensor t2 = conv(b.conv2, st.t1);
        const Index N = x.dim(0), C = x.dim(1), O = t2.dim(1), Ho = t2.dim(2), Wo = t2.dim(3);
        if (!b.down) {
            NetOps::bias_residual_relu(t2.data(), b.conv2.b.data(), x.data(), N, O, Ho * Wo, s);
            st.out = std::move(t2);
            return st;
        }
        const Index Hs = (x.dim(2) - 2) / 2 + 1, Ws = (x.dim(3) - 2) / 2 + 1;
        FaceResNet::check_down_fit(b.name, Ho, Wo, Hs, Ws);
        st.out = backend_->empty({N, O, Hs, Ws});
        launch_1d(kernels::net_residual_down<>, st.out.numel(), s, x.data(), t2.data(), b.conv2.b.data(), ll(N), ll(C),
                  ll(O), ll(x.dim(2)), ll(x.dim(3)), ll(Hs), ll(Ws), ll(Ho), ll(Wo), st.out.data());
        return st;
    }

    DeviceTensor block_backward(const DBlock& b, const Cache::BlockState& st, DeviceTensor g) const {
        const cudaStream_t s = backend_->stream();
        const Shape& in = st.in_shape;
        const Index N = in[0], C = in[1], O = st.t1.dim(1), Ho = st.t1.dim(2), Wo = st.t1.dim(3);
        if (!b.down) {
            NetOps::relu_mask(st.out.data(), g.data(), g.numel(), s);
            DeviceTensor g_t1 = conv_backward(b.conv2, g, st.t1.shape());
            NetOps::relu_mask(st.t1.data(), g_t1.data(), g_t1.numel(), s);
            DeviceTensor gx = conv_backward(b.conv1, g_t1, in);
            NetOps::axpy(gx.numel(), 1.0f, g.data(), gx.data(), s);
            return gx;
        }
        const Index Hs = g.dim(2), Ws = g.dim(3);
        DeviceTensor g_t2 = backend_->empty({N, O, Ho, Wo});
        launch_1d(kernels::net_residual_down_branch_grad<>, g_t2.numel(), s, st.out.data(), g.data(), ll(N), ll(O), ll(Hs),
                  ll(Ws), ll(Ho), ll(Wo), g_t2.data());
        DeviceTensor g_t1 = conv_backward(b.conv2, g_t2, st.t1.shape());
        NetOps::relu_mask(st.t1.data(), g_t1.data(), g_t1.numel(), s);
        DeviceTensor gx = conv_backward(b.conv1, g_t1, in);
        launch_1d(kernels::net_residual_down_skip_grad_add<>, gx.numel(), s, st.out.data(), g.data(), ll(N), ll(C), ll(O),
                  ll(in[2]), ll(in[3]), ll(Hs), ll(Ws), gx.data());
        return gx;
    }

    std::shared_ptr<Cuda> backend_;
    TrunkConvs convs_;
    DConv stem_;
    std::vector<DBlock> blocks_;
    DeviceTensor fc_;
    InputAffine input_;
};

}  // namespace ganinv::cuda
