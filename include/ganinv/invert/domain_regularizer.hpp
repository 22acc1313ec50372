/// @file domain_regularizer.hpp
/// @brief In-domain inversion's regulariser (Zhu et al. 2020, "In-Domain GAN Inversion"): a code
///        should be what the encoder reads back from its own image,
///            R(w) = lambda * mean over the num_ws * w_dim entries of (w - E(G(w)))^2,
///        which keeps the optimised code inside the generator's semantic domain. Plugged into an
///        inverter through InverterOptions::code_regularizer (make_domain_regularization).
#pragma once

#include "ganinv/concepts/code_regularizer.hpp"
#include "ganinv/concepts/encoder.hpp"
#include "ganinv/concepts/generator_inputs.hpp"
#include "ganinv/invert/options.hpp"

#include <algorithm>
#include <cmath>
#include <concepts>
#include <memory>
#include <string>
#include <vector>

namespace ganinv {

/// R(ws) per row for a generator G and an encoder E on the host (E's codes are [N, num_ws, w_dim]).
/// With e = E(G(ws)) and n = num_ws * w_dim, the gradient is
///     dR/dws = 2 lambda (ws - e) / n  -  J_G^T J_E^T [2 lambda (ws - e) / n],
/// the second part through the encoder's input backward and the generator's synthesis backward.
/// G(ws) uses the generator's fixed noise (`noise`, default the constant maps the encoders are
/// trained with), never the maps an inversion may optimise. E runs on the host or, sharing the
/// generator's backend (and so its stream), on the device: StyleGAN2<Cuda> with PspEncoderCuda.
template <class G, Encoder E>
class DomainRegularizer {
public:
    DomainRegularizer(G& g, const E& e, double weight, NoiseMode noise = NoiseMode::constant, std::uint64_t noise_seed = 0,
                      Index batch = 16)
        : g_(g), e_(e), weight_(weight), noise_{noise, noise_seed, nullptr}, batch_(batch) {
        GANINV_CHECK(std::isfinite(weight) && weight >= 0, ValueError,
                     "DomainRegularizer: the weight must be finite and >= 0, got ", weight);
        GANINV_CHECK(batch >= 1, ValueError, "DomainRegularizer: batch must be >= 1, got ", batch);
        GANINV_CHECK(e.num_ws() == g.num_ws() && e.w_dim() == g.w_dim() && e.in_channels() == g.img_channels() &&
                         e.resolution() == g.resolution(),
                     ValueError, "DomainRegularizer: the encoder (num_ws ", e.num_ws(), ", w_dim ", e.w_dim(), ", ",
                     e.in_channels(), " channels, ", e.resolution(), " px) does not fit the generator (num_ws ",
                     g.num_ws(), ", w_dim ", g.w_dim(), ", ", g.img_channels(), " channels, ", g.resolution(), " px)");
    }

    std::string name() const { return "domain"; }
    double weight() const { return weight_; }

    /// Rows of `batch` at a time, so that a large population does not hold every cache at once.
    std::vector<double> evaluate(const Tensor<float>& ws, Tensor<float>* grad_ws) {
        const Index L = g_.num_ws(), D = g_.w_dim();
        GANINV_CHECK(ws.rank() == 3 && ws.dim(0) >= 1 && ws.dim(1) == L && ws.dim(2) == D, ShapeError,
                     "DomainRegularizer: ws must be [N, ", L, ", ", D, "], got ", shape_to_string(ws.shape()));
        const Index rows = ws.dim(0), n = L * D;
        std::vector<double> values(static_cast<std::size_t>(rows), 0.0);
        if (grad_ws) *grad_ws = Tensor<float>(ws.shape(), 0.0f);
        for (Index r0 = 0; r0 < rows; r0 += batch_) {
            const Index m = std::min(batch_, rows - r0);
            Tensor<float> chunk({m, L, D});
            std::copy(ws.data() + r0 * n, ws.data() + (r0 + m) * n, chunk.data());
            typename G::Cache gc;
            const auto img = g_.synthesis(g_.backend().upload(chunk), noise_, &gc);
            typename E::Cache ec;
            const Tensor<float> e = codes_to_host(e_.forward(image_for_encoder(img), &ec));
            // d = ws - e; the direct gradient 2 lambda d / n, and minus it is dR/de.
            Tensor<float> direct({m, L, D}), grad_e({m, L, D});
            for (Index j = 0; j < m; ++j) {
                double acc = 0;
                for (Index k = 0; k < n; ++k) {
                    const double d = static_cast<double>(chunk[j * n + k]) - e[j * n + k];
                    acc += d * d;
                    direct[j * n + k] = static_cast<float>(2.0 * weight_ * d / static_cast<double>(n));
                    grad_e[j * n + k] = -direct[j * n + k];
                }
                values[static_cast<std::size_t>(r0 + j)] = weight_ * acc / static_cast<double>(n);
            }
            if (!grad_ws) continue;
            const auto grad_img = e_.backward(ec, codes_from_host(grad_e), nullptr);
            const Tensor<float> through = g_.backend().download(g_.synthesis_backward_ws(gc, image_for_generator(grad_img)));
            for (Index k = 0; k < m * n; ++k) (*grad_ws)[r0 * n + k] = direct[k] + through[k];
        }
        return values;
    }

private:
    // The encoder on the host (PspEncoder, Buffer = Tensor) or on the generator's device
    // (PspEncoderCuda with the generator's backend: images stay on the device, only the codes and
    // their gradient, N x num_ws x w_dim floats, cross).
    static constexpr bool kHostEncoder = std::same_as<typename E::Buffer, Tensor<float>>;
    static constexpr bool kSharedBuffers = std::same_as<typename E::Buffer, typename G::Buffer>;
    static_assert(kHostEncoder || kSharedBuffers,
                  "DomainRegularizer: the encoder must run on the host or on the generator's backend");

    Tensor<float> codes_to_host(const typename E::Buffer& codes) const {
        if constexpr (kHostEncoder) return codes;
        else return e_.backend().download(codes);
    }
    typename E::Buffer codes_from_host(const Tensor<float>& codes) const {
        if constexpr (kHostEncoder) return codes;
        else return e_.backend().upload(codes);
    }
    decltype(auto) image_for_encoder(const typename G::Buffer& img) const {
        if constexpr (kSharedBuffers) return (img);  // a reference: no copy on the device
        else return g_.backend().download(img);
    }
    decltype(auto) image_for_generator(const typename E::Buffer& grad) const {
        if constexpr (kSharedBuffers) return (grad);
        else return g_.backend().upload(grad);
    }

    G& g_;
    const E& e_;
    double weight_;
    NoiseInput<typename G::backend_type> noise_;
    Index batch_;
};

/// The regulariser as an inverter option: o.code_regularizer = make_domain_regularization(g, e, lambda).
/// g and e must outlive every inversion run with these options.
template <class G, Encoder E>
CodeRegularizerHook make_domain_regularization(G& g, const E& e, double weight, NoiseMode noise = NoiseMode::constant,
                                               std::uint64_t noise_seed = 0) {
    return make_code_regularizer_hook(std::make_shared<DomainRegularizer<G, E>>(g, e, weight, noise, noise_seed));
}

}  // namespace ganinv
