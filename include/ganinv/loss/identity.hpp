/// @file identity.hpp
/// @brief Identity loss: 1 - cosine similarity of the dlib face descriptors (FaceResNet) of
///        pred and target, with the gradient w.r.t. pred; plus the Euclidean descriptor
///        distance as a metric (dlib's "same person" threshold is 0.6) and `crop_box`.
///
/// Input stage, applied to pred and target alike (all steps have adjoints):
///   1. optional face box (half-open pixel box [x0, x1) x [y0, y1) of the input image);
///   2. resize to 150x150 when the crop is not already that size: exact area averaging on an
///      axis that shrinks (a 1024 face -> 150 must low-pass, or the descriptor sees aliasing),
///      bilinear with half-pixel centres on an axis that grows. face-api itself resizes with
///      tf.image.resizeBilinear; for a 150x150 crop neither applies and the result is the
///      package's descriptor;
///   3. gray (1 channel) replicated to R = G = B;
///   4. [-1, 1] -> 0..255 by (x + 1) * 127.5 (StyleGAN's convention, without rounding or
///      clamping, so the map is differentiable).
/// The network expects a face chip: roughly centred, eyes ~40 % from the top (dlib's
/// alignment); the box is how a caller points it at the face.
#pragma once

#include "ganinv/io/image_ops.hpp"
#include "ganinv/backend/cpu.hpp"  // the Cpu implementation below needs the complete backend
#include "ganinv/loss/detail/common.hpp"
#include "ganinv/models/face_resnet.hpp"
#include "ganinv/nn/resample.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace ganinv {

/// A half-open pixel box: columns [x0, x1), rows [y0, y1).
struct FaceBox {
    Index x0 = 0, y0 = 0, x1 = 0, y1 = 0;
};

namespace detail {
/// Throws unless the box [x0, x1) x [y0, y1) is non-empty and inside an image of `shape` [N, C, H, W].
inline void check_box(const Shape& shape, Index x0, Index y0, Index x1, Index y1) {
    GANINV_CHECK(shape.size() == 4, ShapeError, "crop_box: expected a [N, C, H, W] tensor, got shape ",
                 shape_to_string(shape));
    GANINV_CHECK(x0 >= 0 && y0 >= 0 && x1 > x0 && y1 > y0 && x1 <= shape[3] && y1 <= shape[2], ValueError,
                 "crop_box: box x [", x0, ", ", x1, ") y [", y0, ", ", y1, ") is empty or outside the ", shape[3], "x",
                 shape[2], " (w x h) image");
}
}  // namespace detail

/// The box [x0, x1) x [y0, y1) of every image of a [N, C, H, W] tensor.
inline Tensor<float> crop_box(const Tensor<float>& image, Index x0, Index y0, Index x1, Index y1) {
    detail::check_box(image.shape(), x0, y0, x1, y1);
    return crop(image, y0, x0, y1 - y0, x1 - x0);
}

/// Euclidean distances between matching rows of two [N, 128] descriptor tensors.
inline std::vector<double> descriptor_distance(const Tensor<float>& a, const Tensor<float>& b) {
    GANINV_CHECK(a.rank() == 2 && a.shape() == b.shape(), ShapeError, "descriptor_distance: shapes ",
                 shape_to_string(a.shape()), " and ", shape_to_string(b.shape()), " differ or are not [N, D]");
    std::vector<double> d(static_cast<std::size_t>(a.dim(0)));
    for (Index n = 0; n < a.dim(0); ++n) {
        double s = 0.0;
        for (Index k = 0; k < a.dim(1); ++k) {
            const double t = static_cast<double>(a[n * a.dim(1) + k]) - b[n * a.dim(1) + k];
            s += t * t;
        }
        d[static_cast<std::size_t>(n)] = std::sqrt(s);
    }
    return d;
}

namespace detail {
/// The loss head shared by Identity<Cpu> and Identity<Cuda>: per_image[n] = 1 - cos(dp_n, dt_n)
/// and g_desc = d(1 - cos)/ddp, for descriptors dp, dt [N, D] (double arithmetic).
inline void identity_head(const Tensor<float>& dp, const Tensor<float>& dt, std::vector<double>& per_image,
                          Tensor<float>& g_desc) {
    const Index N = dp.dim(0), D = dp.dim(1);
    per_image.assign(static_cast<std::size_t>(N), 0.0);
    g_desc = Tensor<float>({N, D});
    for (Index n = 0; n < N; ++n) {
        double pt = 0, pp = 0, tt = 0;
        for (Index k = 0; k < D; ++k) {
            const double a = dp[n * D + k], b = dt[n * D + k];
            pt += a * b;
            pp += a * a;
            tt += b * b;
        }
        const double np = std::sqrt(pp), nt = std::sqrt(tt), denom = std::max(np * nt, 1e-30);
        const double cos = pt / denom;
        per_image[static_cast<std::size_t>(n)] = 1.0 - cos;
        // d(1 - cos)/dp = -(t / (|p||t|) - cos p / |p|^2)
        for (Index k = 0; k < D; ++k)
            g_desc[n * D + k] = static_cast<float>(-(dt[n * D + k] / denom - cos * dp[n * D + k] / std::max(pp, 1e-30)));
    }
}
}  // namespace detail

struct IdentityOptions {
    std::optional<FaceBox> box;  ///< crop before resizing (same box for pred and target)
    bool cache_target = true;    ///< reuse the target's descriptor while the target stays the same
};

/// The Cpu implementation; `Identity<Cuda>` is a specialisation in ganinv/loss/identity_cuda.cuh.
template <class Backend = Cpu>
class Identity {
    static_assert(std::is_same_v<Backend, Cpu>,
                  "ganinv::Identity: for the Cuda backend include <ganinv/loss/network_losses_cuda.cuh> from a .cu file");

public:
    using backend_type = Backend;
    using Buffer = typename Backend::Buffer;
    using Options = IdentityOptions;
    static constexpr bool differentiable = true;

    explicit Identity(FaceResNet net, Options options = {}) : net_(std::move(net)), options_(options) {
        cache_.enabled = options_.cache_target;
    }
    static Identity load(const std::filesystem::path& weights, Options options = {}) {
        return Identity(FaceResNet::load(weights), options);
    }

    std::string name() const { return "identity"; }
    FaceResNet& network() { return net_; }

    /// 1 - cos(desc(pred_i), desc(target_i)) per image; grad (nullable) w.r.t. pred.
    LossResult evaluate(const Buffer& pred, const Buffer& target, Buffer* grad) {
        detail::check_pair(pred, target, "Identity");
        detail::check_gray_or_rgb(pred, "Identity");
        const Tensor<float>* dt = cache_.find(target);
        if (!dt) dt = &cache_.store(target, descriptors(target));
        Stage stage;
        FaceResNet::Cache fc;
        const Tensor<float> dp = net_.forward(stage.forward(pred, options_.box), grad ? &fc : nullptr);
        std::vector<double> per_image;
        Tensor<float> g_desc;
        detail::identity_head(dp, *dt, per_image, g_desc);
        if (grad) *grad = stage.backward(net_.backward(fc, g_desc));
        return detail::single_term(name(), std::move(per_image));
    }

    /// Descriptors [N, 128] of images in [-1, 1] (through the same input stage).
    Tensor<float> descriptors(const Tensor<float>& images) const {
        GANINV_CHECK(images.rank() == 4, ShapeError, "Identity: images must be [N, C, H, W], got shape ",
                     shape_to_string(images.shape()));
        detail::check_gray_or_rgb(images, "Identity");
        Stage stage;
        return net_.forward(stage.forward(images, options_.box));
    }

    /// The metric: Euclidean distance between the descriptors of a_i and b_i.
    std::vector<double> euclidean_distance(const Tensor<float>& a, const Tensor<float>& b) const {
        detail::check_pair(a, b, "Identity::euclidean_distance");
        return descriptor_distance(descriptors(a), descriptors(b));
    }

private:
    /// Box, resize, gray -> RGB, [-1, 1] -> 0..255; forward and adjoint.
    class Stage {
    public:
        Tensor<float> forward(const Tensor<float>& x, const std::optional<FaceBox>& box) {
            in_shape_ = x.shape();
            box_ = box;
            Tensor<float> t = box ? crop_box(x, box->x0, box->y0, box->x1, box->y1) : x;
            crop_h_ = t.dim(2);
            crop_w_ = t.dim(3);
            resize_ = crop_h_ != FaceResNet::kInput || crop_w_ != FaceResNet::kInput;
            if (resize_) {
                resampler_ = nn::Resampler(crop_h_, crop_w_, FaceResNet::kInput, FaceResNet::kInput);
                t = resampler_.forward(t);
            }
            t = detail::gray_to_rgb(t);
            for (float& v : t.values()) v = (v + 1.0f) * 127.5f;
            return t;
        }
        Tensor<float> backward(Tensor<float> g) const {
            for (float& v : g.values()) v *= 127.5f;
            g = detail::gray_to_rgb_backward(std::move(g), in_shape_[1]);
            if (resize_) g = resampler_.backward(g);
            if (!box_) return g;
            Tensor<float> full(in_shape_, 0.0f);  // adjoint of the crop: zeros outside the box
            const Index planes = in_shape_[0] * in_shape_[1], H = in_shape_[2], W = in_shape_[3];
            for (Index p = 0; p < planes; ++p)
                for (Index y = 0; y < crop_h_; ++y)
                    std::copy_n(g.data() + (p * crop_h_ + y) * crop_w_, crop_w_,
                                full.data() + (p * H + box_->y0 + y) * W + box_->x0);
            return full;
        }

    private:
        Shape in_shape_;
        std::optional<FaceBox> box_;
        Index crop_h_ = 0, crop_w_ = 0;
        bool resize_ = false;
        nn::Resampler resampler_;
    };

    FaceResNet net_;
    Options options_;
    detail::TargetCache<Tensor<float>> cache_;
};

}  // namespace ganinv
