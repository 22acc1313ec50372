/// @file stream.hpp
/// @brief Small owning wrappers for the CUDA objects a caller of the `Cuda` backend needs: a
///        stream, a pair of timing events, and a captured CUDA graph (capture a whole
///        forward + backward once, replay it every step without launch overhead).
#pragma once

#include "ganinv/cuda/check.hpp"

#include <cuda_runtime_api.h>

#include <utility>

namespace ganinv::cuda {

/// An owned non-blocking stream (does not synchronize with the legacy default stream).
class Stream {
public:
    Stream() { GANINV_CUDA_CHECK(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking)); }
    Stream(const Stream&) = delete;
    Stream& operator=(const Stream&) = delete;
    Stream(Stream&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
    ~Stream() {
        if (s_) {
            (void)cudaStreamSynchronize(s_);
            (void)cudaStreamDestroy(s_);
        }
    }
    cudaStream_t get() const { return s_; }
    operator cudaStream_t() const { return s_; }  // NOLINT(google-explicit-constructor)
    void synchronize() const { GANINV_CUDA_CHECK(cudaStreamSynchronize(s_)); }

private:
    cudaStream_t s_ = nullptr;
};

/// Elapsed device time between two points of one stream.
class EventTimer {
public:
    EventTimer() {
        GANINV_CUDA_CHECK(cudaEventCreate(&a_));
        GANINV_CUDA_CHECK(cudaEventCreate(&b_));
    }
    EventTimer(const EventTimer&) = delete;
    EventTimer& operator=(const EventTimer&) = delete;
    ~EventTimer() {
        (void)cudaEventDestroy(a_);
        (void)cudaEventDestroy(b_);
    }
    void start(cudaStream_t s) { GANINV_CUDA_CHECK(cudaEventRecord(a_, s)); }
    void stop(cudaStream_t s) { GANINV_CUDA_CHECK(cudaEventRecord(b_, s)); }
    /// Milliseconds between start and stop (waits for stop).
    float ms() const {
        GANINV_CUDA_CHECK(cudaEventSynchronize(b_));
        float v = 0;
        GANINV_CUDA_CHECK(cudaEventElapsedTime(&v, a_, b_));
        return v;
    }

private:
    cudaEvent_t a_{}, b_{};
};

/// A CUDA graph captured from everything `fn` enqueues on `stream`, replayable with launch().
/// Capture is "relaxed": the caching pool may still cudaMalloc during capture (it should not
/// need to after one eager warm-up run). Buffers used inside keep their addresses: keep the
/// tensors the captured work reads and writes alive, and do not hand pool memory freed during
/// the capture to other work on the same stream while replays are queued.
class Graph {
public:
    Graph() = default;
    Graph(const Graph&) = delete;
    Graph& operator=(const Graph&) = delete;
    Graph(Graph&& o) noexcept : exec_(std::exchange(o.exec_, nullptr)) {}
    ~Graph() {
        if (exec_) (void)cudaGraphExecDestroy(exec_);
    }

    template <class Fn>
    void capture(cudaStream_t stream, Fn&& fn) {
        GANINV_CHECK(stream != nullptr, ValueError, "CUDA graphs cannot be captured on the legacy default stream");
        GANINV_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed));
        cudaGraph_t g = nullptr;
        try {
            fn();
        } catch (...) {
            (void)cudaStreamEndCapture(stream, &g);
            if (g) (void)cudaGraphDestroy(g);
            (void)cudaGetLastError();
            throw;
        }
        GANINV_CUDA_CHECK(cudaStreamEndCapture(stream, &g));
        if (exec_) (void)cudaGraphExecDestroy(exec_);
        exec_ = nullptr;
        const cudaError_t e = cudaGraphInstantiate(&exec_, g, 0);
        (void)cudaGraphDestroy(g);
        GANINV_CUDA_CHECK(e);
    }
    void launch(cudaStream_t stream) const {
        GANINV_CHECK(exec_ != nullptr, ValueError, "Graph::launch before capture");
        GANINV_CUDA_CHECK(cudaGraphLaunch(exec_, stream));
    }
    bool ready() const { return exec_ != nullptr; }

private:
    cudaGraphExec_t exec_ = nullptr;
};

}  // namespace ganinv::cuda
