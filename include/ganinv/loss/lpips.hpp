/// @file lpips.hpp
/// @brief LPIPS-VGG v0.1 (Zhang et al. 2018) with the semantics of the official LPIPS code,
///        forward and backward w.r.t. the first image.
///
/// For images a, b in [-1, 1]:
///   x = (img - [-.030, -.088, -.188]) / [.458, .448, .450]          (ScalingLayer)
///   f_k = VGG16 relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 of x  (k = 0..4)
///   n_k = f_k / (sqrt(sum_c f_k^2) + 1e-10)                       (per position; eps outside the sqrt)
///   d = sum_k mean_{h,w} sum_c lin_k[c] * (n_k(a) - n_k(b))^2      (1x1 conv, no bias; dropout off)
/// Options beyond the official metric: gray inputs are replicated to RGB, and `max_size`
/// area-shrinks larger inputs first (0 = off, the default, which is the official behaviour).
///
/// Weights: the trunk from a torchvision-layout VGG16 file (tools/convert_torchvision_vgg16.py)
/// or Vgg16::hash_rule(); the linear layers from an LPIPS file with the official names
/// `lin{k}.model.1.weight` [1, C, 1, 1] (tools/convert_lpips_lin.py).
#pragma once

#include "ganinv/backend/cpu.hpp"  // the Cpu implementation below needs the complete backend
#include "ganinv/loss/detail/common.hpp"
#include "ganinv/loss/detail/lpips_math.hpp"
#include "ganinv/loss/detail/vgg_input.hpp"
#include "ganinv/models/vgg16.hpp"

#include <array>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

namespace ganinv {

struct LpipsOptions {
    Index max_size = 0;        ///< > 0: area-shrink inputs larger than this first (not in the official metric)
    bool cache_target = true;  ///< reuse the target's features while the target stays the same
};

/// The Cpu implementation; `Lpips<Cuda>` is a specialisation in ganinv/loss/lpips_cuda.cuh.
template <class Backend = Cpu>
class Lpips {
    static_assert(std::is_same_v<Backend, Cpu>,
                  "ganinv::Lpips: for the Cuda backend include <ganinv/loss/network_losses_cuda.cuh> from a .cu file");

public:
    using backend_type = Backend;
    using Buffer = typename Backend::Buffer;
    using Options = LpipsOptions;
    static constexpr bool differentiable = true;
    static constexpr std::array<Index, 5> kChannels{64, 128, 256, 512, 512};
    static constexpr float kEps = detail::kLpipsEps;
    /// ScalingLayer: x = (img - shift) / scale.
    static constexpr std::array<float, 3> kShift{-0.030f, -0.088f, -0.188f}, kScale{0.458f, 0.448f, 0.450f};

    Lpips(Vgg16 trunk, std::array<Tensor<float>, 5> lin, Options options = {})
        : trunk_(std::move(trunk)), lin_(std::move(lin)), options_(options), taps_(lpips_taps()) {
        check_lin(lin_);
        cache_.enabled = options_.cache_target;
    }

    /// relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 (shared with Lpips<Cuda>).
    static std::vector<VggTap> lpips_taps() { return {{1, true}, {3, true}, {6, true}, {9, true}, {12, true}}; }
    static void check_lin(const std::array<Tensor<float>, 5>& lin) {
        for (std::size_t k = 0; k < 5; ++k)
            GANINV_CHECK(lin[k].numel() == kChannels[k], ShapeError, "Lpips: lin", k, " has ", lin[k].numel(),
                         " weights, expected ", kChannels[k]);
    }

    /// Trunk from a torchvision VGG16 features file, linear weights from an LPIPS file.
    static Lpips load(const std::filesystem::path& trunk_file, const std::filesystem::path& lin_file,
                      Options options = {}) {
        return Lpips(Vgg16::load(trunk_file), load_lin(lin_file), options);
    }

    /// The five `lin{k}.model.1.weight` tensors of an LPIPS v0.1 VGG file, each as C floats.
    static std::array<Tensor<float>, 5> load_lin(const std::filesystem::path& file) {
        const SafetensorsFile f(file);
        GANINV_CHECK(f.contains("lin0.model.1.weight"), FormatError, "'", file.string(),
                     "' is not an LPIPS linear-weights file: it has no tensor 'lin0.model.1.weight' (it holds ",
                     f.entries().size(), " tensors, e.g. '", f.entries().empty() ? "" : f.entries()[0].name,
                     "'); convert the official vgg.pth with tools/convert_lpips_lin.py");
        std::array<Tensor<float>, 5> lin;
        for (std::size_t k = 0; k < 5; ++k)
            lin[k] = f.load(concat("lin", k, ".model.1.weight"), {1, kChannels[k], 1, 1}).reshape({kChannels[k]});
        return lin;
    }

    std::string name() const { return "lpips"; }
    const Options& options() const { return options_; }
    Vgg16& trunk() { return trunk_; }

    /// Per-image distances d(pred_i, target_i); grad (nullable) = d(sum_i d_i)/dpred.
    LossResult evaluate(const Buffer& pred, const Buffer& target, Buffer* grad) {
        detail::check_pair(pred, target, "Lpips");
        detail::check_gray_or_rgb(pred, "Lpips");
        const Index N = pred.dim(0);
        const auto* t_feats = cache_.find(target);
        if (!t_feats) {
            detail::VggInput tin = input_stage();
            Vgg16::Trace tt = trunk_.forward(tin.forward(target), taps_, false);
            for (auto& f : tt.taps) normalize(f);
            t_feats = &cache_.store(target, std::move(tt.taps));
        }
        detail::VggInput pin = input_stage();
        const Vgg16::Trace pt = trunk_.forward(pin.forward(pred), taps_, grad != nullptr);
        std::vector<double> per_image(static_cast<std::size_t>(N), 0.0);
        std::vector<Tensor<float>> tap_grads(5);
        for (std::size_t k = 0; k < 5; ++k)
            layer_distance(pt.taps[k], (*t_feats)[k], lin_[k].data(), per_image, grad ? &tap_grads[k] : nullptr);
        if (grad) *grad = pin.backward(trunk_.backward(pt, taps_, tap_grads));
        return detail::single_term(name(), std::move(per_image));
    }

    /// Convenience: the distances only.
    std::vector<double> distance(const Buffer& a, const Buffer& b) { return evaluate(a, b, nullptr).per_image; }

private:
    detail::VggInput input_stage() const {
        return detail::VggInput(kShift, kScale, options_.max_size);
    }

    /// f [N, C, H, W] -> f / (||f||_channels + eps), in place.
    static void normalize(Tensor<float>& f) {
        const Index N = f.dim(0), C = f.dim(1), P = f.dim(2) * f.dim(3);
        for (Index n = 0; n < N; ++n)
            for (Index p = 0; p < P; ++p) detail::lpips_normalize_position(f.data() + n * C * P + p, C, P);
    }

    /// Adds one layer's distance to per_image; tap_grad (nullable) = its gradient w.r.t. the raw
    /// features of pred. t_norm holds the target's normalised features.
    static void layer_distance(const Tensor<float>& f, const Tensor<float>& t_norm, const float* w,
                               std::vector<double>& per_image, Tensor<float>* tap_grad) {
        const Index N = f.dim(0), C = f.dim(1), P = f.dim(2) * f.dim(3);
        if (tap_grad) *tap_grad = Tensor<float>(f.shape());
#pragma omp parallel for schedule(static) if (N * P * C > 65536)
        for (Index n = 0; n < N; ++n) {
            double acc = 0.0;
            for (Index p = 0; p < P; ++p)
                acc += detail::lpips_position(f.data() + n * C * P + p, t_norm.data() + n * C * P + p, w, C, P,
                                              tap_grad ? tap_grad->data() + n * C * P + p : nullptr,
                                              static_cast<double>(P));
            per_image[static_cast<std::size_t>(n)] += acc / static_cast<double>(P);
        }
    }

    Vgg16 trunk_;
    std::array<Tensor<float>, 5> lin_;
    Options options_;
    std::vector<VggTap> taps_;
    detail::TargetCache<std::vector<Tensor<float>>> cache_;
};

}  // namespace ganinv
