/// @file common.hpp
/// @brief Pieces every loss shares: argument checks with readable messages, the result of a
///        one-term loss (buffer arithmetic per backend is `BufferOps`, buffer_ops_cpu.hpp), gray->RGB
///        replication and a cache for target features.
#pragma once

#include "ganinv/backend/cpu_fwd.hpp"
#include "ganinv/concepts/loss.hpp"
#include "ganinv/core/error.hpp"
#include "ganinv/core/tensor.hpp"
#include "ganinv/backend/cpu_buffer_ops.hpp"

#include <cstring>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace ganinv {
namespace detail {

/// Throws unless pred and target are non-empty [N, C, H, W] tensors of one shape.
template <class Buffer>
void check_pair(const Buffer& pred, const Buffer& target, const std::string& who) {
    GANINV_CHECK(pred.shape().size() == 4, ShapeError, who, ": pred must be [N, C, H, W], got shape ",
                 shape_to_string(pred.shape()));
    GANINV_CHECK(pred.numel() > 0, ShapeError, who, ": pred is empty, shape ", shape_to_string(pred.shape()));
    GANINV_CHECK(pred.shape() == target.shape(), ShapeError, who, ": pred has shape ", shape_to_string(pred.shape()),
                 " but target has shape ", shape_to_string(target.shape()),
                 " (batch, channels, height and width must all agree)");
}

/// Throws unless the images have 1 (gray, replicated to RGB) or 3 channels.
template <class Buffer>
void check_gray_or_rgb(const Buffer& x, const std::string& who) {
    GANINV_CHECK(x.shape()[1] == 1 || x.shape()[1] == 3, ShapeError, who,
                 ": images must have 1 (gray) or 3 (RGB) channels, got shape ", shape_to_string(x.shape()));
}

inline LossResult single_term(const std::string& name, std::vector<double> per_image) {
    LossResult r;
    r.terms.push_back({name, per_image});
    r.per_image = std::move(per_image);
    return r;
}

/// Throws unless `mask` broadcasts over x: [N or 1, 1 or C, H, W].
template <class Buffer>
void check_mask(const Buffer& mask, const Shape& x, const std::string& who) {
    GANINV_CHECK(mask.numel() > 0, ValueError, who, ": no mask set (call set_mask with a [N or 1, 1 or C, H, W] tensor)");
    const Shape& m = mask.shape();
    GANINV_CHECK(m.size() == 4 && (m[0] == x[0] || m[0] == 1) && (m[1] == x[1] || m[1] == 1) && m[2] == x[2] &&
                     m[3] == x[3],
                 ShapeError, who, ": mask has shape ", shape_to_string(m), ", which does not fit images of shape ",
                 shape_to_string(x), " (expected [", x[0], " or 1, ", x[1], " or 1, ", x[2], ", ", x[3], "])");
}

/// [N, 1, H, W] -> [N, 3, H, W] by replication; 3-channel input is returned as is.
inline Tensor<float> gray_to_rgb(const Tensor<float>& x) {
    if (x.dim(1) == 3) return x;
    const Index N = x.dim(0), HW = x.dim(2) * x.dim(3);
    Tensor<float> out({N, 3, x.dim(2), x.dim(3)});
    for (Index n = 0; n < N; ++n)
        for (Index c = 0; c < 3; ++c) std::memcpy(out.data() + (n * 3 + c) * HW, x.data() + n * HW, sizeof(float) * static_cast<std::size_t>(HW));
    return out;
}

/// Adjoint of gray_to_rgb for `channels` = 1 (sums the three channel gradients); identity for 3.
inline Tensor<float> gray_to_rgb_backward(Tensor<float> g, Index channels) {
    if (channels == 3) return g;
    const Index N = g.dim(0), HW = g.dim(2) * g.dim(3);
    Tensor<float> out({N, 1, g.dim(2), g.dim(3)});
    for (Index n = 0; n < N; ++n)
        for (Index i = 0; i < HW; ++i)
            out[n * HW + i] = g[(n * 3) * HW + i] + g[(n * 3 + 1) * HW + i] + g[(n * 3 + 2) * HW + i];
    return out;
}

/// Remembers the last target and what a loss derived from it (features, descriptors): an
/// inversion evaluates one target hundreds of times, so its features are computed once. The
/// check is a byte comparison of the whole target, far cheaper than a network pass.
template <class Value>
class TargetCache {
public:
    bool enabled = true;

    const Value* find(const Tensor<float>& target) const {
        if (!enabled || !valid_ || key_.shape() != target.shape()) return nullptr;
        return std::memcmp(key_.data(), target.data(), sizeof(float) * static_cast<std::size_t>(target.numel())) == 0
                   ? &value_
                   : nullptr;
    }
    const Value& store(const Tensor<float>& target, Value v) {
        value_ = std::move(v);
        if (enabled) {
            key_ = target;
            valid_ = true;
        }
        return value_;
    }
    void clear() { valid_ = false; }

private:
    Tensor<float> key_;
    Value value_{};
    bool valid_ = false;
};

}  // namespace detail
}  // namespace ganinv
