/// @file identity_cuda.cuh
/// @brief `Identity<Cuda>`: the face-descriptor identity loss on device tensors, with the semantics of `Identity<Cpu>`
///        (loss/identity.hpp), whose options, constants and checks it reuses. CUDA translation units only.
///        Shared conventions (cuDNN context, target cache, gradient in place, reference
///        precision): loss/detail/network_cuda.cuh.
#pragma once

#include "ganinv/loss/detail/heads_cuda.cuh"
#include "ganinv/loss/detail/network_cuda.cuh"
#include "ganinv/loss/identity.hpp"
#include "ganinv/models/face_resnet_cuda.cuh"

#include <array>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace ganinv {

template <>
class Identity<Cuda> {
public:
    using backend_type = Cuda;
    using Buffer = cuda::DeviceTensor;
    using Options = IdentityOptions;
    static constexpr bool differentiable = true;

    Identity(const Cuda& backend, const FaceResNet& net, Options options = {},
             cuda::AlgoSearch search = cuda::AlgoSearch::heuristic)
        : backend_(backend), options_(options),
          net_(backend, cuda::detail::make_cudnn(backend, search), net),
          stage_(cuda::detail::pool_of(backend), stage_affine()) {
        cache_.enabled = options_.cache_target;
    }
    static Identity load(const Cuda& backend, const std::filesystem::path& weights, Options options = {}) {
        return Identity(backend, FaceResNet::load(weights), options);
    }

    std::string name() const { return "identity"; }
    const cuda::CudaFaceResNet& network() const { return net_; }

    void set_reference_precision(bool on) {
        net_.set_reference_precision(on);
        cache_.clear();
    }
    bool reference_precision() const { return net_.reference_precision(); }

    LossResult evaluate(const Buffer& pred, const Buffer& target, Buffer* grad) {
        detail::check_pair(pred, target, "Identity");
        detail::check_gray_or_rgb(pred, "Identity");
        const cuda::StageGeometry geo = geometry(pred.shape());
        const Tensor<float>* dt = cache_.find(target);
        if (!dt) dt = &cache_.store(target, backend_.download(net_.forward(stage_.forward(target, geo))));
        cuda::CudaFaceResNet::Cache fc;
        const Tensor<float> dp = backend_.download(net_.forward(stage_.forward(pred, geo), grad ? &fc : nullptr));
        std::vector<double> per_image;
        Tensor<float> g_desc;
        detail::identity_head(dp, *dt, per_image, g_desc);
        if (grad)
            stage_.backward(net_.backward(fc, backend_.upload(g_desc)), geo, pred.dim(1), cuda::detail::ensure_grad(grad, pred));
        return detail::single_term(name(), std::move(per_image));
    }

    /// Descriptors [N, 128] of images in [-1, 1] (through the same input stage), on the device.
    Buffer descriptors(const Buffer& images) {
        GANINV_CHECK(images.rank() == 4, ShapeError, "Identity: images must be [N, C, H, W], got shape ",
                     shape_to_string(images.shape()));
        detail::check_gray_or_rgb(images, "Identity");
        return net_.forward(stage_.forward(images, geometry(images.shape())));
    }

private:
    /// The Cpu stage's [-1, 1] -> 0..255 map, (x + 1) * 127.5.
    static cuda::InputAffine stage_affine() {
        cuda::InputAffine a;
        a.pre_add = 1.0f;
        a.pre_mul = 127.5f;
        return a;
    }
    /// Box (checked as crop_box does), then a resize to 150x150 unless the crop already is.
    cuda::StageGeometry geometry(const Shape& x) const {
        cuda::StageGeometry g{x[2], x[3], 0, 0, x[3], x[2], FaceResNet::kInput, FaceResNet::kInput};
        if (options_.box) {
            const FaceBox& b = *options_.box;
            detail::check_box(x, b.x0, b.y0, b.x1, b.y1);
            g.x0 = b.x0;
            g.y0 = b.y0;
            g.x1 = b.x1;
            g.y1 = b.y1;
        }
        return g;
    }

    Cuda backend_;
    Options options_;
    cuda::CudaFaceResNet net_;
    cuda::DeviceInputStage stage_;
    cuda::DeviceTargetCache<Tensor<float>> cache_;
};

}  // namespace ganinv
