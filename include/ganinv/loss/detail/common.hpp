/// @file common.hpp
/// @brief Pieces every loss shares: argument checks with readable messages, the result of a
///        one-term loss (the buffer arithmetic per backend, `BufferOps`, is part of the Backend contract:
///        backend/buffer_ops.hpp; the Cpu half is included here because it is Eigen-free), gray->RGB
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

/// Whether Lpips<B>, VggPerceptual<B> and Identity<B> exist in this translation unit: the Cpu
/// versions always do; loss/network_losses_cuda.cuh (cuDNN) sets it for Cuda. build_loss
/// (loss/loss_spec.hpp) asks it before naming a network loss.
template <class B>
inline constexpr bool network_losses_defined = std::is_same_v<B, Cpu>;

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

/// True when two host tensors of one shape hold the same bits (the TargetCache key test for
/// Tensor<float>; device tensors have theirs beside their kernels, loss/detail/heads_cuda.cuh).
inline bool same_bits(const Tensor<float>& a, const Tensor<float>& b) {
    return std::memcmp(a.data(), b.data(), sizeof(float) * static_cast<std::size_t>(a.numel())) == 0;
}

/// Remembers the last target and what a loss derived from it (features, descriptors): an
/// inversion evaluates one target hundreds of times, so its features are computed once. The
/// check is a bit comparison of the whole target (`same_bits(key, target)`, found for `Key` by
/// argument-dependent lookup), far cheaper than a network pass. `Key` is the target's tensor
/// type: Tensor<float> for the Cpu losses, cuda::DeviceTensor for the Cuda ones.
template <class Value, class Key = Tensor<float>>
class TargetCache {
public:
    bool enabled = true;

    const Value* find(const Key& target) const {
        if (!enabled || !valid_ || key_.shape() != target.shape()) return nullptr;
        return same_bits(key_, target) ? &value_ : nullptr;
    }
    /// The cached value for the buffer `target` itself (same address and shape as the one stored),
    /// without comparing contents: no read-back, so a CUDA graph can capture the lookup. Only for
    /// callers that never write into a target once they passed it (the device inversion loop
    /// uploads it once per batch).
    const Value* find_same_buffer(const Key& target) const {
        return enabled && valid_ && source_ == target.data() && key_.shape() == target.shape() ? &value_ : nullptr;
    }
    const Value& store(const Key& target, Value v) {
        value_ = std::move(v);
        if (enabled) {
            key_ = target;
            source_ = target.data();
            valid_ = true;
        }
        return value_;
    }
    void clear() { valid_ = false; }

private:
    Key key_;
    const float* source_ = nullptr;
    Value value_{};
    bool valid_ = false;
};

}  // namespace detail
}  // namespace ganinv
