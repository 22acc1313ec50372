/// @file vgg_perceptual_cuda.cuh
/// @brief `VggPerceptual<Cuda>`: the VGG16 feature loss on device tensors, with the semantics of `VggPerceptual<Cpu>`
///        (loss/vgg_perceptual.hpp), whose options, constants and checks it reuses. CUDA translation units only.
///        Shared conventions (cuDNN context, target cache, gradient in place, reference
///        precision): loss/detail/network_cuda.cuh.
#pragma once

#include "ganinv/loss/detail/heads_cuda.cuh"
#include "ganinv/loss/detail/network_cuda.cuh"
#include "ganinv/loss/vgg_perceptual.hpp"
#include "ganinv/models/vgg16_cuda.cuh"

#include <array>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace ganinv {

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

}  // namespace ganinv
