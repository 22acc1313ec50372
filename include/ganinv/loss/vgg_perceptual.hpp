/// @file vgg_perceptual.hpp
/// @brief The perceptual loss of Image2StyleGAN (Abdal et al. 2019, eq. 3): the sum over VGG16
///        layers j of ||F_j(pred) - F_j(target)||^2 / N_j (N_j = the number of values in the
///        layer's feature map, i.e. a mean squared error per layer), by default at conv1_1,
///        conv1_2, conv3_2 and conv4_2.
///
/// Conventions (configurable through VggPerceptualOptions):
/// - "conv3_2" is read after its ReLU by default (`after_relu`), as Keras' `block3_conv2`
///   output, which includes the activation; names spelled "relu3_2"/"conv3_2" with
///   after_relu = false pick post/pre-activation explicitly.
/// - inputs in [-1, 1] map to [0, 1] and then to ImageNet normalisation (mean 0.485, 0.456,
///   0.406; std 0.229, 0.224, 0.225), torchvision's VGG16 input convention.
/// - images larger than `max_size` (256) are area-shrunk to it first, as the official StyleGAN2
///   projector does before its VGG16 (F.interpolate(..., mode='area')); 0 disables this.
/// - per-layer weights (default 1).
#pragma once

#include "ganinv/backend/cpu.hpp"  // the Cpu implementation below needs the complete backend
#include "ganinv/loss/detail/common.hpp"
#include "ganinv/loss/detail/vgg_input.hpp"
#include "ganinv/models/vgg16.hpp"

#include <array>
#include <filesystem>
#include <string>
#include <vector>

namespace ganinv {

struct VggPerceptualOptions {
    std::vector<std::string> layers{"conv1_1", "conv1_2", "conv3_2", "conv4_2"};
    bool after_relu = true;       ///< read "convX_Y" names after the ReLU
    std::vector<double> weights;  ///< one per layer; empty = all 1
    Index max_size = 256;         ///< area-shrink larger inputs to this (0 = never)
    bool cache_target = true;     ///< reuse the target's features while the target stays the same
};

/// The Cpu implementation; `VggPerceptual<Cuda>` is a specialisation in ganinv/loss/vgg_perceptual_cuda.cuh.
template <class Backend = Cpu>
class VggPerceptual {
    static_assert(std::is_same_v<Backend, Cpu>,
                  "ganinv::VggPerceptual: for the Cuda backend include <ganinv/loss/network_losses_cuda.cuh> from a .cu file");

public:
    using backend_type = Backend;
    using Buffer = typename Backend::Buffer;
    using Options = VggPerceptualOptions;
    static constexpr bool differentiable = true;

    /// [-1, 1] -> [0, 1] -> ImageNet normalisation, as one map (x - shift) / scale:
    /// ((x + 1) / 2 - mean) / std == (x - (2 mean - 1)) / (2 std).
    static constexpr std::array<float, 3> kShift{2 * 0.485f - 1, 2 * 0.456f - 1, 2 * 0.406f - 1};
    static constexpr std::array<float, 3> kScale{2 * 0.229f, 2 * 0.224f, 2 * 0.225f};

    explicit VggPerceptual(Vgg16 trunk, Options options = {})
        : trunk_(std::move(trunk)), options_(std::move(options)), taps_(resolve_taps(options_)) {
        cache_.enabled = options_.cache_target;
    }

    /// Checks the options, fills in default weights, and returns the trunk points the layer names
    /// denote (shared with VggPerceptual<Cuda>).
    static std::vector<VggTap> resolve_taps(Options& o) {
        GANINV_CHECK(!o.layers.empty(), ValueError, "VggPerceptual: no layers given");
        GANINV_CHECK(o.weights.empty() || o.weights.size() == o.layers.size(), ValueError, "VggPerceptual: ",
                     o.weights.size(), " weights for ", o.layers.size(), " layers");
        std::vector<VggTap> taps;
        for (const std::string& l : o.layers) {
            VggTap t = VggTap::parse(l);
            if (l.rfind("conv", 0) == 0) t.after_relu = o.after_relu;
            taps.push_back(t);
        }
        if (o.weights.empty()) o.weights.assign(o.layers.size(), 1.0);
        return taps;
    }

    static VggPerceptual load(const std::filesystem::path& trunk_file, Options options = {}) {
        return VggPerceptual(Vgg16::load(trunk_file), std::move(options));
    }

    std::string name() const { return "vgg_perceptual"; }
    const std::vector<VggTap>& taps() const { return taps_; }
    Vgg16& trunk() { return trunk_; }

    LossResult evaluate(const Buffer& pred, const Buffer& target, Buffer* grad) {
        detail::check_pair(pred, target, "VggPerceptual");
        detail::check_gray_or_rgb(pred, "VggPerceptual");
        const Index N = pred.dim(0);
        const auto* t_feats = cache_.find(target);
        if (!t_feats) {
            detail::VggInput tin = input_stage();
            t_feats = &cache_.store(target, trunk_.forward(tin.forward(target), taps_, false).taps);
        }
        detail::VggInput pin = input_stage();
        const Vgg16::Trace pt = trunk_.forward(pin.forward(pred), taps_, grad != nullptr);
        std::vector<double> per_image(static_cast<std::size_t>(N), 0.0);
        std::vector<Tensor<float>> tap_grads(taps_.size());
        for (std::size_t j = 0; j < taps_.size(); ++j) {
            const Tensor<float>& a = pt.taps[j];
            const Tensor<float>& b = (*t_feats)[j];
            const Index m = a.numel() / N;
            const double k = options_.weights[j] / static_cast<double>(m);
            if (grad) tap_grads[j] = Tensor<float>(a.shape());
            for (Index n = 0; n < N; ++n) {
                double acc = 0.0;
                for (Index i = n * m; i < (n + 1) * m; ++i) {
                    const double d = static_cast<double>(a[i]) - b[i];
                    acc += d * d;
                    if (grad) tap_grads[j][i] = static_cast<float>(2.0 * k * d);
                }
                per_image[static_cast<std::size_t>(n)] += k * acc;
            }
        }
        if (grad) *grad = pin.backward(trunk_.backward(pt, taps_, tap_grads));
        return detail::single_term(name(), std::move(per_image));
    }

private:
    detail::VggInput input_stage() const {
        return detail::VggInput(kShift, kScale, options_.max_size);
    }

    Vgg16 trunk_;
    Options options_;
    std::vector<VggTap> taps_;
    detail::TargetCache<std::vector<Tensor<float>>> cache_;
};

}  // namespace ganinv
