/// @file vgg16.hpp
/// @brief The VGG16 feature trunk (torchvision `vgg16().features`: 13 3x3 convs with ReLU, 2x2
///        max pools) on the CPU, for the perceptual losses. Forward keeps what the backward needs
///        and returns the requested taps; backward takes gradients at any set of taps and returns
///        dL/dinput. Weights come from a safetensors file with torchvision's names
///        (`features.{idx}.weight|bias`, see tools/convert_torchvision_vgg16.py) or from the hash
///        rule of the LPIPS fixture (no pretrained trunk can be downloaded here).
#pragma once

#include "ganinv/core/error.hpp"
#include "ganinv/core/rng.hpp"
#include "ganinv/core/tensor.hpp"
#include "ganinv/io/safetensors.hpp"
#include "ganinv/nn/conv2d.hpp"
#include "ganinv/nn/pooling.hpp"

#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace ganinv {

struct Vgg16Conv {
    const char* name;
    Index in, out;
    bool pool_before;  ///< a 2x2/2 max pool precedes this conv
    int torch_index;   ///< its index in torchvision's `features` Sequential
};

inline constexpr std::array<Vgg16Conv, 13> kVgg16Convs{{
    {"conv1_1", 3, 64, false, 0},     {"conv1_2", 64, 64, false, 2},    {"conv2_1", 64, 128, true, 5},
    {"conv2_2", 128, 128, false, 7},  {"conv3_1", 128, 256, true, 10},  {"conv3_2", 256, 256, false, 12},
    {"conv3_3", 256, 256, false, 14}, {"conv4_1", 256, 512, true, 17},  {"conv4_2", 512, 512, false, 19},
    {"conv4_3", 512, 512, false, 21}, {"conv5_1", 512, 512, true, 24},  {"conv5_2", 512, 512, false, 26},
    {"conv5_3", 512, 512, false, 28},
}};

/// A point of the trunk a loss reads: the output of conv layer `layer` (0..12), before its ReLU
/// (`conv3_2`) or after it (`relu3_2`).
struct VggTap {
    int layer = 0;
    bool after_relu = true;

    std::string name() const {
        const std::string conv = kVgg16Convs[static_cast<std::size_t>(layer)].name;
        return after_relu ? concat("relu", conv.substr(4)) : conv;
    }
    /// Parses "conv3_2" (pre-activation) or "relu3_2" (post-activation).
    static VggTap parse(const std::string& name) {
        const bool relu = name.rfind("relu", 0) == 0;
        const std::string conv = relu ? concat("conv", name.substr(4)) : name;
        for (std::size_t l = 0; l < kVgg16Convs.size(); ++l)
            if (conv == kVgg16Convs[l].name) return {static_cast<int>(l), relu};
        throw ValueError(concat("VGG16 has no layer '", name,
                                "': use conv1_1, conv1_2, conv2_1, conv2_2, conv3_1..conv3_3, conv4_1..conv4_3, "
                                "conv5_1..conv5_3 (pre-ReLU) or the same with relu instead of conv (post-ReLU)"));
    }
};

namespace detail {

/// The LPIPS fixture's trunk rule (shared/fixtures/README.md): element i of the k-th trunk
/// parameter tensor is u * float(sqrt(6 / fan_in)) for weights, u * 0.1f for biases, with
/// u = float((splitmix64((k << 40) | i) >> 40) * 2^-23 - 1) (exact in float: 24 bits).
inline float vgg_hash_uniform(std::uint64_t k, std::uint64_t i) {
    const std::uint64_t z = splitmix64((k << 40) | i);
    return static_cast<float>(static_cast<double>(z >> 40) * 0x1p-23 - 1.0);
}

}  // namespace detail

class Vgg16 {
public:
    /// What forward keeps: the requested taps, and for the backward the ReLU outputs and the
    /// max-pool winners of every layer that ran.
    struct Trace {
        Shape input_shape;
        int depth = 0;                                 ///< conv layers run
        std::vector<Tensor<float>> taps;               ///< in request order
        std::vector<Tensor<float>> relu;               ///< [depth] post-ReLU outputs (backward only)
        std::vector<std::vector<std::int32_t>> argmax; ///< [depth] winners of the pool before layer l
    };

    Vgg16() = default;

    /// weights[l]: [out, in, 3, 3], biases[l]: [out], l over the 13 convs in order.
    Vgg16(std::vector<Tensor<float>> weights, std::vector<Tensor<float>> biases)
        : weights_(std::move(weights)), biases_(std::move(biases)) {
        GANINV_CHECK(weights_.size() == kVgg16Convs.size() && biases_.size() == kVgg16Convs.size(), ShapeError,
                     "Vgg16: expected 13 weight and 13 bias tensors, got ", weights_.size(), " and ", biases_.size());
        for (std::size_t l = 0; l < kVgg16Convs.size(); ++l) {
            const auto& c = kVgg16Convs[l];
            expect_shape(weights_[l], {c.out, c.in, 3, 3}, concat("Vgg16 ", c.name, ".weight"));
            expect_shape(biases_[l], {c.out}, concat("Vgg16 ", c.name, ".bias"));
        }
    }

    /// Loads torchvision's names `features.{idx}.weight|bias` (tools/convert_torchvision_vgg16.py).
    static Vgg16 load(const std::filesystem::path& path) {
        const SafetensorsFile f(path);
        GANINV_CHECK(f.contains("features.0.weight"), FormatError, "'", path.string(),
                     "' is not a VGG16 features file: it has no tensor 'features.0.weight' (it holds ",
                     f.entries().size(), " tensors, e.g. '", f.entries().empty() ? "" : f.entries()[0].name,
                     "'); convert torchvision's vgg16 state dict with tools/convert_torchvision_vgg16.py");
        std::vector<Tensor<float>> w, b;
        for (const auto& c : kVgg16Convs) {
            const std::string pre = concat("features.", c.torch_index, ".");
            w.push_back(f.load(pre + "weight", {c.out, c.in, 3, 3}));
            b.push_back(f.load(pre + "bias", {c.out}));
        }
        return Vgg16(std::move(w), std::move(b));
    }

    /// The deterministic trunk of the LPIPS fixture (see detail::vgg_hash_uniform).
    static Vgg16 hash_rule() {
        std::vector<Tensor<float>> w, b;
        std::uint64_t k = 0;
        for (const auto& c : kVgg16Convs) {
            Tensor<float> wt({c.out, c.in, 3, 3}), bt({c.out});
            const float gain = static_cast<float>(std::sqrt(6.0 / static_cast<double>(c.in * 9)));
            for (Index i = 0; i < wt.numel(); ++i) wt[i] = detail::vgg_hash_uniform(k, static_cast<std::uint64_t>(i)) * gain;
            ++k;
            for (Index i = 0; i < bt.numel(); ++i) bt[i] = detail::vgg_hash_uniform(k, static_cast<std::uint64_t>(i)) * 0.1f;
            ++k;
            w.push_back(std::move(wt));
            b.push_back(std::move(bt));
        }
        return Vgg16(std::move(w), std::move(b));
    }

    bool loaded() const { return !weights_.empty(); }
    /// Double-precision convolutions (see nn::Conv2dShape::precise): for parity checks only.
    void set_reference_precision(bool on) { precise_ = on; }
    bool reference_precision() const { return precise_; }
    const Tensor<float>& weight(int layer) const { return weights_.at(static_cast<std::size_t>(layer)); }
    const Tensor<float>& bias(int layer) const { return biases_.at(static_cast<std::size_t>(layer)); }

    /// Smallest input side that reaches `layer` (each pool halves, flooring).
    static Index min_input_size(int layer) {
        Index pools = 0;
        for (int l = 0; l <= layer; ++l) pools += kVgg16Convs[static_cast<std::size_t>(l)].pool_before ? 1 : 0;
        return Index{1} << pools;
    }

    /// Conv layers a forward must run to reach every tap; throws unless `input` is an
    /// [N, 3, H, W] batch large enough for them (shared with the CUDA twin, models/vgg16_cuda.cuh).
    static int depth_for(std::span<const VggTap> taps, const Shape& input) {
        GANINV_CHECK(input.size() == 4 && input[1] == 3, ShapeError, "Vgg16: input must be [N, 3, H, W], got ",
                     shape_to_string(input));
        GANINV_CHECK(!taps.empty(), ValueError, "Vgg16: no taps requested");
        int depth = 0;
        for (const VggTap& tap : taps) depth = std::max(depth, tap.layer + 1);
        const Index need = min_input_size(depth - 1);
        GANINV_CHECK(input[2] >= need && input[3] >= need, ShapeError, "Vgg16: a ", input[2], "x", input[3],
                     " input is too small to reach ", kVgg16Convs[static_cast<std::size_t>(depth - 1)].name,
                     " (needs at least ", need, "x", need, ")");
        return depth;
    }

    /// x [N, 3, H, W] (already normalised as the caller's loss wants). Runs the convs up to the
    /// deepest tap; keeps the backward state only when for_backward.
    Trace forward(const Tensor<float>& x, std::span<const VggTap> taps, bool for_backward) const {
        GANINV_CHECK(loaded(), ValueError, "Vgg16: no weights loaded");
        Trace t;
        t.input_shape = x.shape();
        t.depth = depth_for(taps, x.shape());
        t.taps.resize(taps.size());
        if (for_backward) {
            t.relu.resize(static_cast<std::size_t>(t.depth));
            t.argmax.resize(static_cast<std::size_t>(t.depth));
        }
        const Index N = x.dim(0);
        Tensor<float> h = x;
        for (int l = 0; l < t.depth; ++l) {
            const auto& c = kVgg16Convs[static_cast<std::size_t>(l)];
            if (c.pool_before) {
                const nn::Pool2dShape ps{N * h.dim(1), h.dim(2), h.dim(3), 2, 2};
                Tensor<float> pooled({N, h.dim(1), ps.out_h(), ps.out_w()});
                std::int32_t* am = nullptr;
                if (for_backward) {
                    t.argmax[static_cast<std::size_t>(l)].resize(static_cast<std::size_t>(pooled.numel()));
                    am = t.argmax[static_cast<std::size_t>(l)].data();
                }
                nn::max_pool2d_forward(h.data(), ps, pooled.data(), am);
                h = std::move(pooled);
            }
            auto s = nn::Conv2dShape::same(N, c.in, c.out, h.dim(2), h.dim(3));
            s.precise = precise_;
            Tensor<float> y({N, c.out, h.dim(2), h.dim(3)});
            nn::conv2d_forward(h.data(), weight(l).data(), bias(l).data(), s, y.data());
            for (std::size_t i = 0; i < taps.size(); ++i)
                if (taps[i].layer == l && !taps[i].after_relu) t.taps[i] = y;
            nn::relu_forward(y.data(), y.numel());
            for (std::size_t i = 0; i < taps.size(); ++i)
                if (taps[i].layer == l && taps[i].after_relu) t.taps[i] = y;
            if (for_backward) t.relu[static_cast<std::size_t>(l)] = y;
            h = std::move(y);
        }
        return t;
    }

    /// dL/dx from dL/dtap for the taps given to forward (same order; an empty tensor = zero).
    Tensor<float> backward(const Trace& t, std::span<const VggTap> taps, std::span<const Tensor<float>> grads) const {
        GANINV_CHECK(static_cast<int>(t.relu.size()) == t.depth && t.depth > 0, ValueError,
                     "Vgg16::backward needs a trace made by forward(..., for_backward = true)");
        GANINV_CHECK(taps.size() == grads.size(), ValueError, "Vgg16::backward: ", taps.size(), " taps but ",
                     grads.size(), " gradients");
        const Index N = t.input_shape[0];
        Tensor<float> g(t.relu.back().shape(), 0.0f);  // dL/d(relu output of the current layer)
        for (int l = t.depth - 1; l >= 0; --l) {
            const auto& c = kVgg16Convs[static_cast<std::size_t>(l)];
            const Tensor<float>& act = t.relu[static_cast<std::size_t>(l)];
            add_tap_grads(g, taps, grads, l, true, act.shape());
            nn::relu_backward(act.data(), g.data(), g.numel());
            add_tap_grads(g, taps, grads, l, false, act.shape());
            const Index H = act.dim(2), W = act.dim(3);
            Tensor<float> gin({N, c.in, H, W});
            // The conv's input is only needed for weight gradients, which the losses never take.
            auto s = nn::Conv2dShape::same(N, c.in, c.out, H, W);
            s.precise = precise_;
            nn::conv2d_backward(nullptr, weight(l).data(), g.data(), s, gin.data(), nullptr, nullptr);
            if (c.pool_before) {
                const Tensor<float>& prev = t.relu[static_cast<std::size_t>(l - 1)];
                const nn::Pool2dShape ps{N * c.in, prev.dim(2), prev.dim(3), 2, 2};
                g = Tensor<float>(prev.shape());
                nn::max_pool2d_backward(gin.data(), t.argmax[static_cast<std::size_t>(l)].data(), ps, g.data());
            } else {
                g = std::move(gin);
            }
        }
        return g;
    }

private:
    static void add_tap_grads(Tensor<float>& g, std::span<const VggTap> taps, std::span<const Tensor<float>> grads,
                              int layer, bool after_relu, const Shape& shape) {
        for (std::size_t i = 0; i < taps.size(); ++i) {
            if (taps[i].layer != layer || taps[i].after_relu != after_relu || grads[i].empty()) continue;
            expect_shape(grads[i], shape, concat("Vgg16::backward: gradient of ", taps[i].name()));
            float* dst = g.data();
            const float* src = grads[i].data();
            for (Index k = 0; k < g.numel(); ++k) dst[k] += src[k];
        }
    }

    std::vector<Tensor<float>> weights_, biases_;
    bool precise_ = false;
};

}  // namespace ganinv
