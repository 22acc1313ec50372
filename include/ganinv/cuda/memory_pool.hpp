/// @file memory_pool.hpp
/// @brief Device memory for the CUDA backend: a caching pool of cudaMalloc blocks owned by one
///        stream, and a growable pinned host staging buffer for uploads and downloads.
///
/// Why a pool: the generator creates dozens of short-lived buffers per step (activations,
/// scratch, gradients). cudaFree synchronizes the whole device; the pool instead keeps freed
/// blocks and hands them out again. Reuse is stream-ordered: a block freed by a tensor whose
/// last kernels are still queued on the pool's stream is only ever handed to work queued later
/// on the *same* stream, so it cannot be overwritten early. Every pool belongs to exactly one
/// stream (that of its backend); two backends on two streams never share blocks. No global state.
#pragma once

#include "ganinv/cuda/check.hpp"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>

namespace ganinv::cuda {

/// One device allocation: the pointer and the bytes actually reserved for it.
struct Block {
    void* ptr = nullptr;
    std::size_t bytes = 0;
};

/// Caching allocator for one stream. Thread-safe; not copyable (share it through shared_ptr).
class MemoryPool {
public:
    /// `caching = false` gives plain cudaMalloc/cudaFree per tensor (useful with memcheck).
    explicit MemoryPool(cudaStream_t stream, bool caching = true) : stream_(stream), caching_(caching) {}
    MemoryPool(const MemoryPool&) = delete;
    MemoryPool& operator=(const MemoryPool&) = delete;
    ~MemoryPool() {
        // Queued kernels may still read blocks that were returned to the cache.
        (void)cudaStreamSynchronize(stream_);
        for (auto& [bytes, p] : free_) (void)cudaFree(p);
    }

    cudaStream_t stream() const { return stream_; }

    /// Host round trips on this stream, counted where they happen (Cuda::upload/download/
    /// synchronize, the losses' read-backs) and cudaMallocs: the device inversion loop's tests
    /// assert that its steps add none between progress reports. Counting only, never reset here.
    struct Traffic {
        std::uint64_t uploads = 0, downloads = 0, syncs = 0, mallocs = 0;
        std::uint64_t upload_bytes = 0, download_bytes = 0;
        /// Bytes of the largest single copy either way (a test may set it to 0 to watch a stretch:
        /// the device L-BFGS loop's steps copy per-row scalars, never a vector).
        std::uint64_t largest_copy = 0;
        void upload(std::size_t bytes) {
            ++uploads;
            upload_bytes += bytes;
            largest_copy = std::max<std::uint64_t>(largest_copy, bytes);
        }
        void download(std::size_t bytes) {
            ++downloads;
            download_bytes += bytes;
            largest_copy = std::max<std::uint64_t>(largest_copy, bytes);
        }
    };
    Traffic& traffic() { return traffic_; }

    /// A block of at least `bytes` (256-byte aligned, as cudaMalloc gives).
    Block allocate(std::size_t bytes) {
        const std::size_t want = round_up(std::max<std::size_t>(bytes, 1));
        std::lock_guard<std::mutex> lock(mutex_);
        if (caching_) {
            auto it = free_.lower_bound(want);
            if (it != free_.end() && it->first <= want + want / 4) {  // at most 25% slack
                Block b{it->second, it->first};
                free_.erase(it);
                note_use(b.bytes);
                return b;
            }
        }
        void* p = nullptr;
        ++traffic_.mallocs;
        cudaError_t e = cudaMalloc(&p, want);
        if (e != cudaSuccess) {
            (void)cudaGetLastError();
            // Giving the cache back synchronises the stream, which a CUDA graph capture forbids
            // (it would invalidate the capture): say so instead; the device loop then runs plain.
            cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
            if (cudaStreamIsCapturing(stream_, &capturing) == cudaSuccess && capturing != cudaStreamCaptureStatusNone)
                throw CudaError(concat("CUDA backend: cannot allocate ", want, " bytes of device memory while a CUDA graph "
                                       "is captured (", in_use_, " bytes in use by tensors, ", reserved_,
                                       " reserved; the cached blocks can only be freed outside a capture)"),
                                e);
            release_cached_locked();  // give the cache back and try once more
            e = cudaMalloc(&p, want);
        }
        if (e != cudaSuccess) {
            (void)cudaGetLastError();
            throw CudaError(concat("CUDA backend: cannot allocate ", want, " bytes of device memory (", in_use_,
                                   " bytes in use by tensors, ", reserved_, " reserved): ", cudaGetErrorString(e)),
                            e);
        }
        reserved_ += want;
        peak_reserved_ = std::max(peak_reserved_, reserved_);
        note_use(want);
        return {p, want};
    }

    /// Returns a block; it is reused only by later work on this pool's stream.
    void release(Block b) noexcept {
        if (!b.ptr) return;
        std::lock_guard<std::mutex> lock(mutex_);
        in_use_ -= b.bytes;
        if (caching_) {
            free_.emplace(b.bytes, b.ptr);
        } else {
            (void)cudaFree(b.ptr);  // synchronizes: safe with queued work
            reserved_ -= b.bytes;
        }
    }

    /// Frees every cached block (waits for the stream first).
    void trim() {
        std::lock_guard<std::mutex> lock(mutex_);
        release_cached_locked();
    }

    std::size_t bytes_in_use() const { std::lock_guard<std::mutex> l(mutex_); return in_use_; }
    std::size_t peak_bytes_in_use() const { std::lock_guard<std::mutex> l(mutex_); return peak_in_use_; }
    std::size_t bytes_reserved() const { std::lock_guard<std::mutex> l(mutex_); return reserved_; }
    std::size_t peak_bytes_reserved() const { std::lock_guard<std::mutex> l(mutex_); return peak_reserved_; }
    void reset_peaks() {
        std::lock_guard<std::mutex> l(mutex_);
        peak_in_use_ = in_use_;
        peak_reserved_ = reserved_;
    }

private:
    static std::size_t round_up(std::size_t n) {
        const std::size_t g = n <= (std::size_t{1} << 20) ? 512 : (std::size_t{1} << 16);
        return (n + g - 1) / g * g;
    }
    void note_use(std::size_t bytes) {
        in_use_ += bytes;
        peak_in_use_ = std::max(peak_in_use_, in_use_);
    }
    void release_cached_locked() {
        if (free_.empty()) return;
        (void)cudaStreamSynchronize(stream_);
        for (auto& [bytes, p] : free_) {
            (void)cudaFree(p);
            reserved_ -= bytes;
        }
        free_.clear();
    }

    cudaStream_t stream_;
    bool caching_;
    Traffic traffic_;
    mutable std::mutex mutex_;
    std::multimap<std::size_t, void*> free_;
    std::size_t in_use_ = 0, peak_in_use_ = 0, reserved_ = 0, peak_reserved_ = 0;
};

/// Page-locked host memory for transfers, grown on demand. Callers synchronize the stream
/// before reusing it (the backend's upload/download do).
class PinnedStaging {
public:
    PinnedStaging() = default;
    PinnedStaging(const PinnedStaging&) = delete;
    PinnedStaging& operator=(const PinnedStaging&) = delete;
    ~PinnedStaging() {
        if (ptr_) (void)cudaFreeHost(ptr_);
    }
    /// At least `bytes` of pinned memory; the previous contents are not kept.
    void* get(std::size_t bytes) {
        if (bytes > bytes_) {
            if (ptr_) GANINV_CUDA_CHECK(cudaFreeHost(ptr_));
            ptr_ = nullptr;
            bytes_ = 0;
            const std::size_t want = std::max<std::size_t>(bytes, std::size_t{1} << 20);
            GANINV_CUDA_CHECK(cudaMallocHost(&ptr_, want));
            bytes_ = want;
        }
        return ptr_;
    }
    std::mutex& mutex() { return mutex_; }

private:
    void* ptr_ = nullptr;
    std::size_t bytes_ = 0;
    std::mutex mutex_;
};

}  // namespace ganinv::cuda
