/// @file network_losses.cuh
/// @brief `Lpips<Cuda>`, `VggPerceptual<Cuda>` and `Identity<Cuda>`: the perceptual and identity
///        losses on device tensors, with the semantics of their Cpu versions (loss/lpips.hpp,
///        loss/vgg_perceptual.hpp, loss/identity.hpp), whose options, constants, tap lists,
///        checks and identity head they reuse. Include from a .cu file.
///
/// Each loss owns a cuDNN handle bound to its backend's stream (`CudnnContext`), device copies
/// of its weights, and a `DeviceTargetCache` (the target's features are recomputed only when the
/// target's bits change). The gradient is written into `*grad` in place when it already has
/// pred's shape (allocated otherwise). The per-image values are the only data that come back to
/// the host (Identity also reads back the N x 128 descriptors: its head is the Cpu's function).
///
/// `set_reference_precision(true)` runs the network's convolutions with double accumulation
/// (TrunkConvs, cuda/network_ops.cuh), the GPU twin of the Cpu trunks' mode of the same name: for
/// parity checks against the official code, several times slower. Float32 is the default. The
/// switch drops the cached target features, which were computed in the other precision.
#pragma once

#include "ganinv/cuda/face_resnet.cuh"
#include "ganinv/cuda/input_stage.cuh"
#include "ganinv/cuda/loss_heads.cuh"
#include "ganinv/cuda/vgg16.cuh"
#include "ganinv/loss/identity.hpp"
#include "ganinv/loss/lpips.hpp"
#include "ganinv/loss/vgg_perceptual.hpp"

#include <algorithm>
#include <array>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace ganinv {

namespace cuda::detail {

inline InputAffine vgg_affine(const std::array<float, 3>& shift, const std::array<float, 3>& scale) {
    InputAffine a;
    for (int c = 0; c < 3; ++c) {
        a.shift[c] = shift[static_cast<std::size_t>(c)];
        a.scale[c] = scale[static_cast<std::size_t>(c)];
    }
    return a;
}

/// The VGG losses' geometry: the whole image, area-shrunk per axis to at most max_size (0 = never).
inline StageGeometry vgg_geometry(const Shape& x, Index max_size) {
    const Index h = x[2], w = x[3];
    return {h, w, 0, 0, w, h, max_size > 0 ? std::min(h, max_size) : h, max_size > 0 ? std::min(w, max_size) : w};
}

/// The backend's memory pool as a shared pointer (an empty tensor allocates nothing but keeps it).
inline std::shared_ptr<MemoryPool> pool_of(const Cuda& backend) { return backend.empty(Shape{0}).pool(); }

/// `*grad` as a tensor of pred's shape on pred's pool (kept when it already is one).
inline DeviceTensor& ensure_grad(DeviceTensor* grad, const DeviceTensor& pred) {
    if (grad->shape() != pred.shape() || grad->pool() != pred.pool()) *grad = DeviceTensor(pred.shape(), pred.pool());
    return *grad;
}

/// One cuDNN context per loss object, on the backend's stream and pool, at its precision.
inline std::shared_ptr<CudnnContext> make_cudnn(const Cuda& backend, AlgoSearch search) {
    return std::make_shared<CudnnContext>(backend.stream(), pool_of(backend), backend.options().precision, search);
}

}  // namespace cuda::detail

template <>
class Lpips<Cuda> {
public:
    using backend_type = Cuda;
    using Buffer = cuda::DeviceTensor;
    using Options = LpipsOptions;
    static constexpr bool differentiable = true;

    Lpips(const Cuda& backend, const Vgg16& trunk, const std::array<Tensor<float>, 5>& lin, Options options = {},
          cuda::AlgoSearch search = cuda::AlgoSearch::heuristic)
        : backend_(backend), options_(options), taps_(Lpips<Cpu>::lpips_taps()),
          trunk_(backend, cuda::detail::make_cudnn(backend, search), trunk),
          stage_(cuda::detail::pool_of(backend), cuda::detail::vgg_affine(Lpips<Cpu>::kShift, Lpips<Cpu>::kScale)) {
        Lpips<Cpu>::check_lin(lin);
        for (std::size_t k = 0; k < 5; ++k) lin_[k] = backend.upload(lin[k]);
        cache_.enabled = options_.cache_target;
    }
    static Lpips load(const Cuda& backend, const std::filesystem::path& trunk_file, const std::filesystem::path& lin_file,
                      Options options = {}) {
        return Lpips(backend, Vgg16::load(trunk_file), Lpips<Cpu>::load_lin(lin_file), options);
    }

    std::string name() const { return "lpips"; }
    const Options& options() const { return options_; }

    LossResult evaluate(const Buffer& pred, const Buffer& target, Buffer* grad) {
        detail::check_pair(pred, target, "Lpips");
        detail::check_gray_or_rgb(pred, "Lpips");
        const cuda::StageGeometry geo = cuda::detail::vgg_geometry(pred.shape(), options_.max_size);
        const auto* t_feats = cache_.find(target);
        if (!t_feats) {
            cuda::CudaVgg16::Trace tt = trunk_.forward(stage_.forward(target, geo), taps_, false);
            for (auto& f : tt.taps) cuda::lpips_normalize(f);
            t_feats = &cache_.store(target, std::move(tt.taps));
        }
        const cuda::CudaVgg16::Trace pt = trunk_.forward(stage_.forward(pred, geo), taps_, grad != nullptr);
        cuda::PerImageSums sums(cuda::detail::pool_of(backend_), pred.dim(0));
        std::vector<Buffer> tap_grads(5);
        for (std::size_t k = 0; k < 5; ++k) {
            if (grad) tap_grads[k] = backend_.empty(pt.taps[k].shape());
            sums.lpips(pt.taps[k], (*t_feats)[k], lin_[k].data(), grad ? tap_grads[k].data() : nullptr);
        }
        if (grad) stage_.backward(trunk_.backward(pt, taps_, tap_grads), geo, pred.dim(1), cuda::detail::ensure_grad(grad, pred));
        return detail::single_term(name(), sums.download());
    }

    std::vector<double> distance(const Buffer& a, const Buffer& b) { return evaluate(a, b, nullptr).per_image; }

    void set_reference_precision(bool on) {
        trunk_.set_reference_precision(on);
        cache_.clear();
    }
    bool reference_precision() const { return trunk_.reference_precision(); }
    const cuda::CudaVgg16& trunk() const { return trunk_; }

private:
    Cuda backend_;
    Options options_;
    std::vector<VggTap> taps_;
    cuda::CudaVgg16 trunk_;
    cuda::DeviceInputStage stage_;
    std::array<Buffer, 5> lin_;
    cuda::DeviceTargetCache<std::vector<Buffer>> cache_;
};

template <>
class VggPerceptual<Cuda> {
public:
    using backend_type = Cuda;
    using Buffer = cuda::DeviceTensor;
    using Options = VggPerceptualOptions;
    static constexpr bool differentiable = true;

    VggPerceptual(const Cuda& backend, const Vgg16& trunk, Options options = {},
                  cuda::AlgoSearch search = cuda::AlgoSearch::heuristic)
        : backend_(backend), options_(std::move(options)), taps_(VggPerceptual<Cpu>::resolve_taps(options_)),
          trunk_(backend, cuda::detail::make_cudnn(backend, search), trunk),
          stage_(cuda::detail::pool_of(backend), cuda::detail::vgg_affine(VggPerceptual<Cpu>::kShift, VggPerceptual<Cpu>::kScale)) {
        cache_.enabled = options_.cache_target;
    }
    static VggPerceptual load(const Cuda& backend, const std::filesystem::path& trunk_file, Options options = {}) {
        return VggPerceptual(backend, Vgg16::load(trunk_file), std::move(options));
    }

    std::string name() const { return "vgg_perceptual"; }
    const std::vector<VggTap>& taps() const { return taps_; }

    void set_reference_precision(bool on) {
        trunk_.set_reference_precision(on);
        cache_.clear();
    }
    bool reference_precision() const { return trunk_.reference_precision(); }
    const cuda::CudaVgg16& trunk() const { return trunk_; }

    LossResult evaluate(const Buffer& pred, const Buffer& target, Buffer* grad) {
        detail::check_pair(pred, target, "VggPerceptual");
        detail::check_gray_or_rgb(pred, "VggPerceptual");
        const cuda::StageGeometry geo = cuda::detail::vgg_geometry(pred.shape(), options_.max_size);
        const auto* t_feats = cache_.find(target);
        if (!t_feats) t_feats = &cache_.store(target, trunk_.forward(stage_.forward(target, geo), taps_, false).taps);
        return detail::single_term(name(), per_image_sums(pred, *t_feats, grad, geo).download());
    }

    /// values[n] += weight * the value of image n on the device: no read-back and no wait, so a CUDA graph
    /// can capture it (invert/device_loop.hpp). The target's features are computed on the first
    /// call with that target buffer and then reused without comparing its contents (with
    /// cache_target = false: recomputed every call): the caller must not write into `target`
    /// between calls (the inversion loop uploads it once per batch).
    void evaluate_on_device(const Buffer& pred, const Buffer& target, Buffer* grad, float* values, float weight = 1.0f) {
        detail::check_pair(pred, target, "VggPerceptual");
        detail::check_gray_or_rgb(pred, "VggPerceptual");
        const cuda::StageGeometry geo = cuda::detail::vgg_geometry(pred.shape(), options_.max_size);
        const auto* t_feats = cache_.find_same_buffer(target);
        if (!t_feats) t_feats = &cache_.store(target, trunk_.forward(stage_.forward(target, geo), taps_, false).taps);
        per_image_sums(pred, *t_feats, grad, geo).accumulate_into(values, weight);
    }

private:
    /// The feature distance of pred to the target's features (and its gradient into grad).
    cuda::PerImageSums per_image_sums(const Buffer& pred, const std::vector<Buffer>& t_feats, Buffer* grad,
                                      const cuda::StageGeometry& geo) {
        const cuda::CudaVgg16::Trace pt = trunk_.forward(stage_.forward(pred, geo), taps_, grad != nullptr);
        cuda::PerImageSums sums(cuda::detail::pool_of(backend_), pred.dim(0));
        std::vector<Buffer> tap_grads(taps_.size());
        for (std::size_t j = 0; j < taps_.size(); ++j) {
            if (grad) tap_grads[j] = backend_.empty(pt.taps[j].shape());
            sums.mse(pt.taps[j], t_feats[j], options_.weights[j], grad ? tap_grads[j].data() : nullptr);
        }
        if (grad) stage_.backward(trunk_.backward(pt, taps_, tap_grads), geo, pred.dim(1), cuda::detail::ensure_grad(grad, pred));
        return sums;
    }

    Cuda backend_;
    Options options_;
    std::vector<VggTap> taps_;
    cuda::CudaVgg16 trunk_;
    cuda::DeviceInputStage stage_;
    cuda::DeviceTargetCache<std::vector<Buffer>> cache_;
};

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
