/// @file device_buffer.hpp
/// @brief `DeviceTensor`: owning, contiguous float32 device memory with a shape — the Buffer of
///        the `Cuda` backend.
///
/// A DeviceTensor remembers the MemoryPool it came from, and through it the pool's stream.
/// Copying one (the generator does, e.g. `L.out = L.modconv_out`) allocates from that same pool
/// and enqueues a device-to-device copy on that same stream: copies stay ordered with the
/// kernels that produced the source, need no global "current stream", and never synchronize.
/// Moving is free. Destruction returns the block to the pool (stream-ordered reuse). Use a
/// tensor only on its pool's stream, or synchronize that stream before using it elsewhere.
#pragma once

#include "ganinv/core/tensor.hpp"
#include "ganinv/cuda/check.hpp"
#include "ganinv/cuda/memory_pool.hpp"

#include <memory>
#include <utility>

namespace ganinv::cuda {

class DeviceTensor {
public:
    DeviceTensor() = default;

    /// Uninitialised storage for `shape` from `pool`.
    DeviceTensor(Shape shape, std::shared_ptr<MemoryPool> pool) : shape_(std::move(shape)), pool_(std::move(pool)) {
        GANINV_CHECK(pool_ != nullptr, ValueError, "DeviceTensor: no memory pool");
        numel_ = shape_numel(shape_);
        if (numel_ > 0) block_ = pool_->allocate(sizeof(float) * static_cast<std::size_t>(numel_));
    }

    /// Device copy, enqueued on the source's stream, storage from the source's pool.
    DeviceTensor(const DeviceTensor& other) : shape_(other.shape_), numel_(other.numel_), pool_(other.pool_) {
        if (numel_ > 0) {
            block_ = pool_->allocate(bytes());
            copy_from(other);
        }
    }
    DeviceTensor(DeviceTensor&& other) noexcept
        : shape_(std::move(other.shape_)), numel_(std::exchange(other.numel_, 0)), pool_(std::move(other.pool_)),
          block_(std::exchange(other.block_, Block{})) {}

    DeviceTensor& operator=(const DeviceTensor& other) {
        if (this == &other) return *this;
        if (other.numel_ == 0) {
            reset();
            shape_ = other.shape_;
            pool_ = other.pool_;
            return *this;
        }
        if (!(pool_ == other.pool_ && block_.ptr && block_.bytes >= other.bytes() && numel_ == other.numel_)) {
            reset();
            pool_ = other.pool_;
            numel_ = other.numel_;
            block_ = pool_->allocate(other.bytes());
        }
        shape_ = other.shape_;
        copy_from(other);
        return *this;
    }
    DeviceTensor& operator=(DeviceTensor&& other) noexcept {
        if (this != &other) {
            reset();
            shape_ = std::move(other.shape_);
            numel_ = std::exchange(other.numel_, 0);
            pool_ = std::move(other.pool_);
            block_ = std::exchange(other.block_, Block{});
        }
        return *this;
    }
    ~DeviceTensor() { reset(); }

    float* data() { return static_cast<float*>(block_.ptr); }
    const float* data() const { return static_cast<const float*>(block_.ptr); }
    Index numel() const { return numel_; }
    bool empty() const { return numel_ == 0; }
    const Shape& shape() const { return shape_; }
    std::size_t rank() const { return shape_.size(); }
    Index dim(std::size_t i) const {
        GANINV_CHECK(i < shape_.size(), ShapeError, "dimension ", i, " of a rank-", shape_.size(), " device tensor");
        return shape_[i];
    }
    std::size_t bytes() const { return sizeof(float) * static_cast<std::size_t>(numel_); }
    /// The stream its copies are enqueued on (its pool's); 0 for an empty default tensor.
    cudaStream_t stream() const { return pool_ ? pool_->stream() : cudaStream_t{}; }
    const std::shared_ptr<MemoryPool>& pool() const { return pool_; }

    /// Changes the shape, keeping the values (the element count must not change).
    DeviceTensor& reshape(Shape shape) {
        GANINV_CHECK(shape_numel(shape) == numel_, ShapeError, "cannot reshape ", shape_to_string(shape_), " to ",
                     shape_to_string(shape));
        shape_ = std::move(shape);
        return *this;
    }

private:
    void copy_from(const DeviceTensor& other) {
        GANINV_CUDA_CHECK(cudaMemcpyAsync(block_.ptr, other.block_.ptr, other.bytes(), cudaMemcpyDeviceToDevice,
                                          pool_->stream()));
    }
    void reset() noexcept {
        if (pool_ && block_.ptr) pool_->release(block_);
        block_ = Block{};
        numel_ = 0;
    }

    Shape shape_;
    Index numel_ = 0;
    std::shared_ptr<MemoryPool> pool_;
    Block block_;
};

}  // namespace ganinv::cuda
