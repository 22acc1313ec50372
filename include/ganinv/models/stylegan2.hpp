/// @file stylegan2.hpp
/// @brief The StyleGAN2 generator ('skip' architecture) on a backend: mapping network with
///        truncation, per-layer styles (S space), synthesis with const/none/random/explicit noise,
///        and the backward of all three. Semantics of StyleGAN2-ADA's Generator.
#pragma once

#include "ganinv/backend/cpu_fwd.hpp"
#include "ganinv/nn/bias_act.hpp"
#include "ganinv/nn/linear_params.hpp"
#include "ganinv/nn/modconv_shape.hpp"
#include "ganinv/nn/style_blocks.hpp"
#include "ganinv/models/stylegan2_cache.hpp"
#include "ganinv/models/stylegan2_params.hpp"

#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <numbers>
#include <optional>
#include <vector>

namespace ganinv {

/// Where a backward pass adds parameter gradients: host tensors (every tensor of the model), or
/// backend buffers by name (only those tensors: the others are not computed, and nothing leaves
/// the device; the Tuner's step on the GPU). Converts from `NamedTensors*` and `nullptr`.
template <class Buffer>
struct ParamGradTarget {
    NamedTensors* host = nullptr;
    std::map<std::string, Buffer>* device = nullptr;

    ParamGradTarget() = default;
    ParamGradTarget(std::nullptr_t) {}
    ParamGradTarget(NamedTensors* h) : host(h) {}
    explicit ParamGradTarget(std::map<std::string, Buffer>* d) : device(d) {}

    bool wants(const std::string& name) const { return host || (device && device->count(name) != 0); }
};

template <class Backend = Cpu>
class StyleGAN2 {
public:
    using backend_type = Backend;
    using Buffer = typename Backend::Buffer;
    using Cache = SynthesisCache<Backend>;
    using MapCache = MappingCache<Backend>;
    using GradTarget = ParamGradTarget<Buffer>;

    StyleGAN2(StyleGAN2Config config, const NamedTensors& params, Backend backend = {})
        : config_(std::move(config)), plan_(config_), backend_(std::move(backend)) {
        config_.validate();
        specs_ = stylegan2_param_specs(config_);
        for (const auto& spec : specs_) {
            const Tensor<float>& t = params.at(spec.name);
            expect_shape(t, spec.shape, "generator tensor '" + spec.name + "'");
            params_.push_back(backend_.upload(t));
        }
        for (std::size_t i = 0; i < specs_.size(); ++i) index_[specs_[i].name] = i;
        filter_ = backend_.upload(nn::make_resample_filter(config_.resample_filter));
    }

    /// Loads a generator file (safetensors with the `config` metadata).
    static StyleGAN2 load(const std::filesystem::path& path, Backend backend = {}) {
        const SafetensorsFile file(path);
        auto [cfg, params] = load_stylegan2_params(file);
        return StyleGAN2(std::move(cfg), params, std::move(backend));
    }
    static StyleGAN2 random(const StyleGAN2Config& cfg, std::uint64_t seed, Backend backend = {}) {
        return StyleGAN2(cfg, random_stylegan2_params(cfg, seed), std::move(backend));
    }

    const StyleGAN2Config& config() const { return config_; }
    const SynthesisPlan& plan() const { return plan_; }
    const std::vector<ParamSpec>& param_specs() const { return specs_; }
    Backend& backend() { return backend_; }
    const Backend& backend() const { return backend_; }
    Index num_ws() const { return config_.num_ws(); }
    Index w_dim() const { return config_.w_dim; }
    Index z_dim() const { return config_.z_dim; }
    Index style_dim() const { return plan_.style_dim; }
    Index resolution() const { return config_.img_resolution; }
    Index img_channels() const { return config_.img_channels; }
    const Buffer& param(const std::string& name) const { return params_[find(name)]; }
    Buffer& param(const std::string& name) { return params_[find(name)]; }
    /// A zeroed gradient store with one tensor per parameter (host side).
    NamedTensors zero_param_grads() const { return NamedTensors(specs_, 0.0f); }

    // ------------------------------------------------------------------ mapping
    /// ws [N, num_ws, w_dim] from z [N, z_dim].
    Buffer mapping(const Buffer& z, const Truncation& trunc = {}, MapCache* cache = nullptr) {
        const Index n = batch_of(z, z_dim(), "z");
        MapCache local;
        MapCache& c = cache ? *cache : local;
        c.z = z;
        return map_rows(z.data(), n, trunc, c);
    }

    /// ws [N, num_ws, w_dim] from z [N, z_dim] in the caller's host memory, read in place (no
    /// copy; host backends only, no cache: a forward pass). The Python bindings hand NumPy and
    /// PyTorch arrays through here without copying them.
    Buffer mapping(TensorView<const float, 2> z, const Truncation& trunc = {})
        requires std::same_as<Buffer, Tensor<float>>
    {
        GANINV_CHECK(z.is_contiguous() && z.dim(0) > 0 && z.dim(1) == z_dim(), ShapeError,
                     "z: expected a contiguous [N, ", z_dim(), "] array with N >= 1, got shape [", z.dim(0), ", ",
                     z.dim(1), "]");
        MapCache forward_only;
        return map_rows(z.data(), z.dim(0), trunc, forward_only);
    }

    /// img [N, img_channels, R, R] from ws [N, num_ws, w_dim] in the caller's host memory, read in
    /// place (no copy; host backends only, no cache: a forward pass).
    Buffer synthesis(TensorView<const float, 3> ws, const NoiseInput<Backend>& noise = {})
        requires std::same_as<Buffer, Tensor<float>>
    {
        GANINV_CHECK(ws.is_contiguous() && ws.dim(0) > 0 && ws.dim(1) == num_ws() && ws.dim(2) == w_dim(), ShapeError,
                     "ws: expected a contiguous [N, ", num_ws(), ", ", w_dim(), "] array with N >= 1, got shape [",
                     ws.dim(0), ", ", ws.dim(1), ", ", ws.dim(2), "]");
        return synthesis_from_styles(styles_of_rows(ws.data(), ws.dim(0)), noise);
    }

    /// ws [n, num_ws, w_dim] from n rows of z that already live in the backend's memory (device
    /// memory on Cuda: the Python bindings hand PyTorch/CuPy CUDA tensors through here), read in
    /// place: no copy, no cache (a forward pass). The caller guarantees the pointer's placement.
    Buffer mapping_of_backend_rows(const float* z, Index n, const Truncation& trunc = {}) {
        GANINV_CHECK(z != nullptr && n > 0, ShapeError, "z: expected n >= 1 rows of ", z_dim(), " values, got n = ", n);
        MapCache forward_only;
        return map_rows(z, n, trunc, forward_only);
    }

    /// img [n, img_channels, R, R] from n rows of ws [num_ws, w_dim] in the backend's memory, read in
    /// place (as mapping_of_backend_rows).
    Buffer synthesis_of_backend_rows(const float* ws, Index n, const NoiseInput<Backend>& noise = {}) {
        GANINV_CHECK(ws != nullptr && n > 0, ShapeError, "ws: expected n >= 1 rows of [", num_ws(), ", ", w_dim(),
                     "], got n = ", n);
        return synthesis_from_styles(styles_of_rows(ws, n), noise);
    }

private:
    /// The mapping network on n rows of z at `z` (device memory of the backend).
    Buffer map_rows(const float* z, Index n, const Truncation& trunc, MapCache& c) {
        c.trunc_psi = trunc.psi;
        c.trunc_cutoff = trunc.cutoff.value_or(num_ws());
        c.x0 = backend_.empty({n, z_dim()});
        backend_.normalize_2nd_moment(z, n, z_dim(), c.x0.data());
        c.acts.clear();
        const float* x = c.x0.data();
        for (Index i = 0; i < config_.mapping_layers; ++i) {
            const auto p = fc_params(i);
            c.acts.push_back(backend_.empty({n, w_dim()}));
            backend_.linear_forward(x, n, param(concat("mapping.fc", i, ".weight")).data(),
                                    param(concat("mapping.fc", i, ".bias")).data(), p, c.acts.back().data());
            x = c.acts.back().data();
        }
        Buffer ws = backend_.empty({n, num_ws(), w_dim()});
        for (Index b = 0; b < n; ++b)
            backend_.broadcast_rows(x + b * w_dim(), w_dim(), num_ws(), ws.data() + b * num_ws() * w_dim());
        if (trunc.psi != 1.0f)
            backend_.truncate(ws.data(), n, num_ws(), w_dim(), param("mapping.w_avg").data(), trunc.psi, c.trunc_cutoff);
        return ws;
    }

    /// styles [n, style_dim] of n codes at `ws` (each [num_ws, w_dim], backend memory).
    Buffer styles_of_rows(const float* ws, Index n) {
        Buffer out = backend_.zeros({n, style_dim()});
        const std::vector<nn::StyleAffine> affines = style_affines();
        backend_.affine_styles(ws, n, num_ws(), w_dim(), affines, style_dim(), out.data());
        return out;
    }

public:

    /// grad_z [N, z_dim] from grad_ws; accumulates mapping parameter gradients when given.
    Buffer mapping_backward(const MapCache& c, const Buffer& grad_ws, GradTarget param_grads = {}) {
        const Index n = c.z.dim(0);
        Buffer g = backend_.empty({n, w_dim()});
        backend_.reduce_ws(grad_ws.data(), n, num_ws(), w_dim(), c.trunc_psi, c.trunc_cutoff, g.data());
        for (Index i = config_.mapping_layers; i-- > 0;) {
            const auto p = fc_params(i);
            const float* x = i == 0 ? c.x0.data() : c.acts[static_cast<std::size_t>(i - 1)].data();
            Buffer gx = backend_.empty({n, p.in});
            GradSlot gw(*this, param_grads, concat("mapping.fc", i, ".weight"));
            GradSlot gb(*this, param_grads, concat("mapping.fc", i, ".bias"));
            backend_.linear_backward(x, n, param(concat("mapping.fc", i, ".weight")).data(),
                                     c.acts[static_cast<std::size_t>(i)].data(), g.data(), p, gx.data(), gw.ptr(), gb.ptr());
            gw.commit();
            gb.commit();
            g = std::move(gx);
        }
        Buffer gz = backend_.empty({n, z_dim()});
        backend_.normalize_2nd_moment_backward(c.z.data(), g.data(), n, z_dim(), gz.data());
        return gz;
    }

    // ------------------------------------------------------------------ styles (S space)
    /// styles [N, style_dim]: every layer's affine(w) (ToRGB styles before its weight gain).
    Buffer styles(const Buffer& ws) {
        return styles_of_rows(ws.data(), batch_of(ws, num_ws() * w_dim(), "ws"));
    }

    /// grad_ws [N, num_ws, w_dim] from grad_styles; accumulates affine gradients when given.
    Buffer styles_backward(const Buffer& ws, const Buffer& grad_styles, GradTarget param_grads = {}) {
        const Index n = batch_of(ws, num_ws() * w_dim(), "ws");
        Buffer grad_ws = backend_.empty({n, num_ws(), w_dim()});
        std::vector<nn::StyleAffine> affines = style_affines();
        std::vector<GradSlot> slots;
        slots.reserve(2 * affines.size());
        for (std::size_t i = 0; i < affines.size(); ++i) {
            const std::string& name = plan_.layers[i].name;
            affines[i].grad_weight = slots.emplace_back(*this, param_grads, name + ".affine.weight").ptr();
            affines[i].grad_bias = slots.emplace_back(*this, param_grads, name + ".affine.bias").ptr();
        }
        backend_.affine_styles_backward(ws.data(), grad_styles.data(), n, num_ws(), w_dim(), affines, style_dim(),
                                        grad_ws.data());
        for (GradSlot& g : slots) g.commit();
        return grad_ws;
    }

    // ------------------------------------------------------------------ synthesis
    /// img [N, img_channels, R, R] from styles [N, style_dim].
    Buffer synthesis_from_styles(const Buffer& styles_in, const NoiseInput<Backend>& noise = {}, Cache* cache = nullptr);
    /// Backward of synthesis_from_styles: grad_styles (and per-layer noise gradients in the result);
    /// accumulates every synthesis parameter's gradient when param_grads is given.
    SynthesisGradients<Backend> synthesis_backward(const Cache& cache, const Buffer& grad_img,
                                                   GradTarget param_grads = {});

    /// ws -> image in one call (styles computed on the way; the cache keeps them for backward).
    Buffer synthesis(const Buffer& ws, const NoiseInput<Backend>& noise = {}, Cache* cache = nullptr) {
        Cache local;
        Cache& c = cache ? *cache : local;
        c.ws = ws;
        Buffer s = styles(ws);
        Buffer img = synthesis_from_styles(s, noise, &c);
        return img;
    }
    /// grad_ws from grad_img through synthesis and the affines.
    Buffer synthesis_backward_ws(const Cache& cache, const Buffer& grad_img, GradTarget param_grads = {},
                                 SynthesisGradients<Backend>* detail_out = nullptr) {
        GANINV_CHECK(cache.ws.numel() > 0, ValueError, "synthesis_backward_ws needs a cache filled by synthesis(ws)");
        SynthesisGradients<Backend> g = synthesis_backward(cache, grad_img, param_grads);
        Buffer grad_ws = styles_backward(cache.ws, g.styles, param_grads);
        if (detail_out) *detail_out = std::move(g);
        return grad_ws;
    }

private:
    /// Where one parameter gradient goes. Every backend op accumulates into its parameter-gradient
    /// outputs (+= / atomicAdd, both backends; the ops' contracts say so), so for a device map the
    /// kernels add straight into the target's buffer: no scratch tensor, no zeroing, no axpy (on a
    /// 1024^2 tuning step these were 131 fills and 131 axpys, 0.9 ms of 21.5). For host targets the
    /// gradient goes to a zeroed backend buffer, downloaded and added at commit(). Inactive (null
    /// pointer: the kernels skip it) when the target does not want this tensor.
    class GradSlot {
    public:
        GradSlot(StyleGAN2& g, const GradTarget& target, const std::string& name) : g_(g), target_(target), name_(name) {
            if (!target_.wants(name_)) return;
            active_ = true;
            if (target_.device) direct_ = g_.device_grad(target_, name_);
            else buf_ = g_.backend_.zeros(g_.specs_[g_.find(name)].shape);
        }
        float* ptr() { return !active_ ? nullptr : direct_ ? direct_ : buf_.data(); }
        void commit() {  // host target: target[name] += the downloaded gradient
            if (!active_ || direct_) return;
            const Tensor<float> h = g_.backend_.download(buf_);
            Tensor<float>& dst = target_.host->at(name_);
            for (Index i = 0; i < h.numel(); ++i) dst[i] += h[i];
        }

    private:
        StyleGAN2& g_;
        GradTarget target_;
        std::string name_;
        Buffer buf_;
        float* direct_ = nullptr;
        bool active_ = false;
    };

    /// The target map's buffer for `name`, checked against the tensor's size.
    float* device_grad(const GradTarget& target, const std::string& name) {
        Buffer& dst = target.device->at(name);
        const Index want = shape_numel(specs_[find(name)].shape);
        GANINV_CHECK(dst.numel() == want, ShapeError, "gradient buffer of '", name, "' has ", dst.numel(),
                     " values, the tensor ", want);
        return dst.data();
    }

    std::size_t find(const std::string& name) const {
        const auto it = index_.find(name);
        GANINV_CHECK(it != index_.end(), ValueError, "no generator tensor named '", name, "'");
        return it->second;
    }
    nn::LinearParams fc_params(Index i) const {
        return nn::LinearParams::make(i == 0 ? config_.z_dim : config_.w_dim, config_.w_dim, config_.lr_multiplier,
                                      nn::Activation::lrelu);
    }
    /// The factor between a layer's slice of the style vector and the styles its conv uses
    /// (ToRGB: the weight gain 1 / sqrt(fan-in), applied to the styles as officially).
    static float style_gain(const SynthesisLayerSpec& l) {
        return l.is_torgb ? 1.0f / std::sqrt(static_cast<float>(l.in_channels * l.kernel * l.kernel)) : 1.0f;
    }
    /// Every layer's style affine (plan order), without gradient outputs.
    std::vector<nn::StyleAffine> style_affines() const {
        std::vector<nn::StyleAffine> a;
        for (const auto& l : plan_.layers) {
            const auto p = nn::LinearParams::make(config_.w_dim, l.in_channels, 1.0f, nn::Activation::linear);
            nn::StyleAffine s;
            s.weight = param(l.name + ".affine.weight").data(), s.bias = param(l.name + ".affine.bias").data();
            s.w_index = l.w_index, s.offset = l.style_offset, s.channels = l.in_channels;
            s.weight_gain = p.weight_gain, s.bias_gain = p.bias_gain;
            a.push_back(s);
        }
        return a;
    }
    static Index batch_of(const Buffer& t, Index per_sample, const char* what) {
        GANINV_CHECK(t.rank() >= 1 && t.numel() > 0 && t.numel() % per_sample == 0 && t.numel() / t.dim(0) == per_sample,
                     ShapeError, what, ": expected [N, ...] with ", per_sample, " values per sample, got shape ",
                     shape_to_string(t.shape()));
        return t.dim(0);
    }

    template <class B>
    friend class StyleGAN2SynthesisRunner;

    StyleGAN2Config config_;
    SynthesisPlan plan_;
    Backend backend_;
    std::vector<ParamSpec> specs_;
    std::vector<Buffer> params_;
    std::map<std::string, std::size_t> index_;
    Buffer filter_;
};

}  // namespace ganinv

#include "ganinv/models/stylegan2_synthesis.hpp"
