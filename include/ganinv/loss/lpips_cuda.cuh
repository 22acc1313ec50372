/// @file lpips_cuda.cuh
/// @brief `Lpips<Cuda>`: the LPIPS distance (VGG16 trunk) on device tensors, with the semantics of `Lpips<Cpu>`
///        (loss/lpips.hpp), whose options, constants and checks it reuses. CUDA translation units only.
///        Shared conventions (cuDNN context, target cache, gradient in place, reference
///        precision): loss/detail/network_cuda.cuh.
#pragma once

#include "ganinv/loss/detail/heads_cuda.cuh"
#include "ganinv/loss/detail/network_cuda.cuh"
#include "ganinv/loss/lpips.hpp"
#include "ganinv/models/vgg16_cuda.cuh"

#include <array>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace ganinv {

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

}  // namespace ganinv
