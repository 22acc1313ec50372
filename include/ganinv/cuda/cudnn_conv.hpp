/// @file cudnn_conv.hpp
/// @brief Plain convolutions through cuDNN: forward and backward-data for the CUDA losses
///        (their VGG16 and face-ResNet weights are fixed), and a float32 backward-filter
///        (weight gradient, accumulated) for the networks trained on the GPU: the pSp/e4e
///        encoder (models/psp_encoder_cuda.cuh).
///
/// `CudnnContext` owns one cuDNN handle bound (cudnnSetStream) to one stream: every loss object
/// makes its own (no global handle), so two losses on two streams share nothing. Per geometry
/// (batch, channels, size, kernel, stride, padding) it keeps a plan: descriptors, the chosen
/// algorithms and their workspace sizes. Workspaces come from the backend's memory pool.
///
/// Precision: `fp32` (the default) pins CUDNN_FMA_MATH, so cuDNN may not silently use TF32 on
/// Hopper (its default math mode allows it); `tf32` allows tensor cores; `bf16` adds overloads on
/// BF16 tensors (x, w, y in BF16, accumulated in float: cuDNN's PSEUDO_BFLOAT16 configuration,
/// tensor-core math), which the caller feeds with converted copies (TrunkConvs). Backward-data uses only
/// deterministic algorithms, so a gradient is reproducible run to run; backward-filter accepts
/// nothing else (it throws when cuDNN offers no deterministic algorithm: an encoder's weight
/// gradient must not change from run to run), and chooses its algorithm the first time a plan
/// needs one, so the losses' plans never pay for it. Algorithm choice is
/// cuDNN's heuristic (no device work) or, with `AlgoSearch::exhaustive`, cudnnFind (times every
/// candidate once per geometry, as PyTorch's cudnn.benchmark does).
///
/// Reference precision: the `double` overloads run the same convolution on double tensors and
/// double weights with a double compute type (cuDNN's DOUBLE_CONFIG), the GPU twin of the Cpu's
/// `nn::Conv2dShape::precise`. They keep their own plans (the key includes the type), always use
/// FMA math whatever the context's precision, and accept only the direct-summation algorithms
/// (implicit / explicit GEMM forward, backward-data ALGO_0/1): FFT and Winograd round through
/// transforms whose error scales with the whole tile rather than each output, which is what the
/// reference mode exists to rule out. A geometry cuDNN cannot run that way throws a CudnnError
/// naming it; nothing falls back to float32.
#pragma once

#include "ganinv/core/error.hpp"
#include "ganinv/core/tensor.hpp"
#include "ganinv/cuda/check.hpp"
#include "ganinv/cuda/cudnn_check.hpp"
#include "ganinv/cuda/memory_pool.hpp"
#include "ganinv/cuda/options.hpp"

#include <cuda_bf16.h>
#include <cudnn.h>

#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>

namespace ganinv::cuda {

enum class AlgoSearch { heuristic, exhaustive };

/// One convolution's geometry: x [n, c, h, w] (NCHW), weights [o, c, k, k], square stride/padding.
struct ConvGeometry {
    Index n = 1, c = 1, o = 1, h = 1, w = 1, k = 3, stride = 1, pad = 1;
    Index out_h() const { return (h + 2 * pad - k) / stride + 1; }
    Index out_w() const { return (w + 2 * pad - k) / stride + 1; }
    auto key() const { return std::array<Index, 8>{n, c, o, h, w, k, stride, pad}; }
    std::string describe() const {
        return concat("batch ", n, ", ", c, "->", o, " channels, ", h, "x", w, ", kernel ", k, ", stride ", stride,
                      ", pad ", pad);
    }
};

class CudnnContext {
public:
    CudnnContext(cudaStream_t stream, std::shared_ptr<MemoryPool> pool, Precision precision,
                 AlgoSearch search = AlgoSearch::heuristic)
        : pool_(std::move(pool)), search_(search), precision_(precision) {
        math_ = precision == Precision::fp32 ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH;
        GANINV_CUDNN_CHECK(cudnnCreate(&handle_));
        const cudnnStatus_t s = cudnnSetStream(handle_, stream);
        if (s != CUDNN_STATUS_SUCCESS) {
            cudnnDestroy(handle_);
            GANINV_CUDNN_CHECK(s);
        }
    }
    CudnnContext(const CudnnContext&) = delete;
    CudnnContext& operator=(const CudnnContext&) = delete;
    ~CudnnContext() {
        plans_.clear();
        if (handle_) cudnnDestroy(handle_);
    }

    /// y = conv(x, w) (no bias: the callers' epilogue kernels add it).
    void forward(const ConvGeometry& g, const float* x, const float* w, float* y) { run_forward<float>(g, x, w, y); }
    /// The reference-precision forward: double x, w, y, accumulated in double.
    void forward(const ConvGeometry& g, const double* x, const double* w, double* y) { run_forward<double>(g, x, w, y); }
    /// gx = conv^T(gy, w): dL/dx of the convolution, every element of gx written.
    void backward_data(const ConvGeometry& g, const float* w, const float* gy, float* gx) {
        run_backward_data<float>(g, w, gy, gx);
    }
    /// The reference-precision backward-data: double w, gy, gx, accumulated in double.
    void backward_data(const ConvGeometry& g, const double* w, const double* gy, double* gx) {
        run_backward_data<double>(g, w, gy, gx);
    }
    /// The BF16 forward (a context made with Precision::bf16): BF16 x, w, y, float accumulation.
    void forward(const ConvGeometry& g, const __nv_bfloat16* x, const __nv_bfloat16* w, __nv_bfloat16* y) {
        run_forward<__nv_bfloat16>(g, x, w, y);
    }
    /// The BF16 backward-data: BF16 w, gy, gx, float accumulation.
    void backward_data(const ConvGeometry& g, const __nv_bfloat16* w, const __nv_bfloat16* gy, __nv_bfloat16* gx) {
        run_backward_data<__nv_bfloat16>(g, w, gy, gx);
    }

    /// gw += dL/dw of y = conv(x, w) given gy = dL/dy (cuDNN's beta = 1: the gradient accumulates,
    /// as nn::conv2d_backward's grad_weight does). float32 only; deterministic algorithms only.
    void backward_filter(const ConvGeometry& g, const float* x, const float* gy, float* gw) {
        Plan& p = plan(g, Kind::f32);
        choose_backward_filter(p, g);
        Block ws = workspace(p.filter_bytes);
        const float one = 1;
        const cudnnStatus_t s = cudnnConvolutionBackwardFilter(handle_, &one, p.x, x, p.y, gy, p.conv, p.filter_algo,
                                                               ws.ptr, p.filter_bytes, &one, p.f, gw);
        pool_->release(ws);
        check_run(s, "backward-filter", g, p.kind);
    }

    /// The precision the context was made for (the backend's): TrunkConvs converts to BF16 for bf16.
    Precision precision() const { return precision_; }

    static int version() { return static_cast<int>(cudnnGetVersion()); }

private:
    /// A plan's tensor type: float, double (the reference precision) or BF16.
    enum class Kind { f32 = 0, f64 = 1, bf16 = 2 };
    template <class T>
    static constexpr Kind kind_of() {
        if constexpr (std::is_same_v<T, double>) return Kind::f64;
        else if constexpr (std::is_same_v<T, __nv_bfloat16>) return Kind::bf16;
        else return Kind::f32;
    }
    static const char* describe(Kind k) {
        return k == Kind::f64 ? "double reference precision" : k == Kind::bf16 ? "bf16, float accumulation" : "float32";
    }

    struct Plan {
        Kind kind = Kind::f32;
        bool precise = false;  ///< double tensors, direct-summation algorithms only
        cudnnTensorDescriptor_t x = nullptr, y = nullptr;
        cudnnFilterDescriptor_t f = nullptr;
        cudnnConvolutionDescriptor_t conv = nullptr;
        cudnnConvolutionFwdAlgo_t fwd_algo{};
        cudnnConvolutionBwdDataAlgo_t bwd_algo{};
        std::size_t fwd_bytes = 0, bwd_bytes = 0;
        bool filter_chosen = false;  ///< backward-filter's algorithm is chosen on first use
        cudnnConvolutionBwdFilterAlgo_t filter_algo{};
        std::size_t filter_bytes = 0;
        Plan() = default;
        Plan(const Plan&) = delete;
        Plan& operator=(const Plan&) = delete;
        ~Plan() {
            if (x) cudnnDestroyTensorDescriptor(x);
            if (y) cudnnDestroyTensorDescriptor(y);
            if (f) cudnnDestroyFilterDescriptor(f);
            if (conv) cudnnDestroyConvolutionDescriptor(conv);
        }
    };
    using Key = std::array<Index, 9>;

    // cuDNN reads alpha/beta as double for double tensors and as float otherwise (BF16 included).
    template <class T>
    using Scale = std::conditional_t<std::is_same_v<T, double>, double, float>;

    template <class T>
    void run_forward(const ConvGeometry& g, const T* x, const T* w, T* y) {
        Plan& p = plan(g, kind_of<T>());
        Block ws = workspace(p.fwd_bytes);
        const Scale<T> one = 1, zero = 0;
        const cudnnStatus_t s = cudnnConvolutionForward(handle_, &one, p.x, x, p.f, w, p.conv, p.fwd_algo, ws.ptr,
                                                        p.fwd_bytes, &zero, p.y, y);
        pool_->release(ws);
        check_run(s, "forward", g, p.kind);
    }
    template <class T>
    void run_backward_data(const ConvGeometry& g, const T* w, const T* gy, T* gx) {
        Plan& p = plan(g, kind_of<T>());
        Block ws = workspace(p.bwd_bytes);
        const Scale<T> one = 1, zero = 0;
        const cudnnStatus_t s = cudnnConvolutionBackwardData(handle_, &one, p.f, w, p.y, gy, p.conv, p.bwd_algo,
                                                             ws.ptr, p.bwd_bytes, &zero, p.x, gx);
        pool_->release(ws);
        check_run(s, "backward-data", g, p.kind);
    }
    /// A failed launch names the pass, the geometry and the precision (GANINV_CUDNN_CHECK alone
    /// would say only which call of this file failed).
    static void check_run(cudnnStatus_t s, const char* pass, const ConvGeometry& g, Kind kind) {
        if (s == CUDNN_STATUS_SUCCESS) return;
        char detail[512] = {0};
        cudnnGetLastErrorString(detail, sizeof(detail));
        throw CudnnError(concat("cuDNN conv ", pass, " failed (", describe(kind),
                                ", ", g.describe(), "): ", cudnnGetErrorString(s),
                                detail[0] ? concat(" (", detail, ")") : std::string()),
                         s);
    }

    Block workspace(std::size_t bytes) { return bytes ? pool_->allocate(bytes) : Block{}; }

    Plan& plan(const ConvGeometry& g, Kind kind) {
        std::lock_guard<std::mutex> lock(mutex_);
        const auto k8 = g.key();
        Key key{};
        std::copy(k8.begin(), k8.end(), key.begin());
        key[8] = static_cast<Index>(kind);
        auto it = plans_.find(key);
        if (it != plans_.end()) return *it->second;
        GANINV_CHECK(g.n > 0 && g.c > 0 && g.o > 0 && g.k > 0 && g.stride > 0 && g.pad >= 0 && g.out_h() > 0 &&
                         g.out_w() > 0,
                     ShapeError, "cuDNN conv: invalid geometry (", g.describe(), ")");
        GANINV_CHECK(g.n * std::max(g.c, g.o) * g.h * g.w < (Index{1} << 31), ShapeError,
                     "cuDNN conv: a tensor of ", g.n, "x", std::max(g.c, g.o), "x", g.h, "x", g.w,
                     " exceeds cuDNN's 32-bit element count; split the batch");
        GANINV_CHECK(kind != Kind::bf16 || precision_ == Precision::bf16, ValueError,
                     "cuDNN conv: a BF16 convolution on a context made for ", to_string(precision_));
        const bool precise = kind == Kind::f64;
        auto p = std::make_unique<Plan>();
        p->kind = kind;
        p->precise = precise;
        const cudnnDataType_t type = precise ? CUDNN_DATA_DOUBLE : kind == Kind::bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
        // BF16 tensors accumulate in float (PSEUDO_BFLOAT16): a BF16 sum of 4608 products would
        // lose the small ones.
        const cudnnDataType_t compute = precise ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
        const auto i = [](Index v) { return static_cast<int>(v); };
        GANINV_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->x));
        GANINV_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->y));
        GANINV_CUDNN_CHECK(cudnnCreateFilterDescriptor(&p->f));
        GANINV_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&p->conv));
        GANINV_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, type, i(g.n), i(g.c), i(g.h), i(g.w)));
        GANINV_CUDNN_CHECK(cudnnSetFilter4dDescriptor(p->f, type, CUDNN_TENSOR_NCHW, i(g.o), i(g.c), i(g.k), i(g.k)));
        GANINV_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(p->conv, i(g.pad), i(g.pad), i(g.stride), i(g.stride), 1, 1,
                                                           CUDNN_CROSS_CORRELATION, compute));
        // The reference precision ignores tf32: it is the exact path whatever the backend asks.
        GANINV_CUDNN_CHECK(cudnnSetConvolutionMathType(
            p->conv, precise ? CUDNN_FMA_MATH : kind == Kind::bf16 ? CUDNN_TENSOR_OP_MATH : math_));
        int on = 0, oc = 0, oh = 0, ow = 0;
        GANINV_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(p->conv, p->x, p->f, &on, &oc, &oh, &ow));
        GANINV_CHECK(on == g.n && oc == g.o && oh == g.out_h() && ow == g.out_w(), ShapeError,
                     "cuDNN conv: output ", oh, "x", ow, " differs from the expected ", g.out_h(), "x", g.out_w());
        GANINV_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, type, on, oc, oh, ow));
        choose_forward(*p, g);
        choose_backward_data(*p, g);
        return *plans_.emplace(key, std::move(p)).first->second;
    }

    /// Math modes a candidate may use: FMA only for fp32 and the reference precision (cuDNN
    /// reports FMA or default math for non-tensor-core kernels); anything for tf32.
    bool math_ok(const Plan& p, cudnnMathType_t m) const {
        if (p.kind == Kind::bf16) return true;
        const bool fma_only = p.precise || math_ == CUDNN_FMA_MATH;
        return !fma_only || m == CUDNN_FMA_MATH || m == CUDNN_DEFAULT_MATH;
    }
    /// The reference precision's forward algorithms: each output a plain sum of products.
    static bool direct_sum(cudnnConvolutionFwdAlgo_t a) {
        return a == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM || a == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM ||
               a == CUDNN_CONVOLUTION_FWD_ALGO_GEMM;
    }
    static bool direct_sum(cudnnConvolutionBwdDataAlgo_t a) {
        return a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_0 || a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
    }
    /// The error when no candidate qualifies; `offered` lists what cuDNN returned (algorithm
    /// number, status, math type), which says whether the type or our filter ruled them out.
    static std::string no_algorithm(const char* pass, const Plan& p, const ConvGeometry& g, const std::string& offered) {
        return p.precise ? concat("cuDNN conv: no direct-summation ", pass,
                                  " algorithm runs this geometry in double (reference precision; ", g.describe(),
                                  ", cuDNN ", version(), "; cuDNN offered: ", offered,
                                  "); switch set_reference_precision off or use a geometry cuDNN supports in double")
                         : concat("cuDNN conv: no ", pass, " algorithm supports this geometry in the requested precision (",
                                  g.describe(), "; cuDNN offered: ", offered, ")");
    }
    template <class Perf>
    static std::string offered(const Perf* r, int n) {
        std::string out = n ? "" : "nothing";
        for (int k = 0; k < n; ++k)
            out += concat(k ? ", " : "", "algo ", static_cast<int>(r[k].algo), " ", cudnnGetErrorString(r[k].status),
                          " math ", static_cast<int>(r[k].mathType));
        return out;
    }

    void choose_forward(Plan& p, const ConvGeometry& g) {
        constexpr int kMax = CUDNN_CONVOLUTION_FWD_ALGO_COUNT;
        cudnnConvolutionFwdAlgoPerf_t r[kMax];
        int n = 0;
        if (search_ == AlgoSearch::exhaustive)
            GANINV_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithm(handle_, p.x, p.f, p.conv, p.y, kMax, &n, r));
        else
            GANINV_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(handle_, p.x, p.f, p.conv, p.y, kMax, &n, r));
        for (int k = 0; k < n; ++k) {
            if (r[k].status != CUDNN_STATUS_SUCCESS || !math_ok(p, r[k].mathType) || (p.precise && !direct_sum(r[k].algo)))
                continue;
            std::size_t bytes = 0;
            if (cudnnGetConvolutionForwardWorkspaceSize(handle_, p.x, p.f, p.conv, p.y, r[k].algo, &bytes) !=
                CUDNN_STATUS_SUCCESS)
                continue;
            p.fwd_algo = r[k].algo;
            p.fwd_bytes = bytes;
            return;
        }
        throw CudnnError(no_algorithm("forward", p, g, offered(r, n)), CUDNN_STATUS_NOT_SUPPORTED);
    }

    void choose_backward_data(Plan& p, const ConvGeometry& g) {
        constexpr int kMax = CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT;
        cudnnConvolutionBwdDataAlgoPerf_t r[kMax];
        int n = 0;
        if (search_ == AlgoSearch::exhaustive)
            GANINV_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithm(handle_, p.f, p.y, p.conv, p.x, kMax, &n, r));
        else
            GANINV_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(handle_, p.f, p.y, p.conv, p.x, kMax, &n, r));
        // Deterministic candidates first; a non-deterministic one (atomics: same values up to
        // summation order) only when cuDNN offers nothing else for this geometry.
        for (bool need_deterministic : {true, false})
            for (int k = 0; k < n; ++k) {
                if (r[k].status != CUDNN_STATUS_SUCCESS || !math_ok(p, r[k].mathType) ||
                    (need_deterministic && r[k].determinism != CUDNN_DETERMINISTIC) ||
                    (p.precise && !direct_sum(r[k].algo)))
                    continue;
                std::size_t bytes = 0;
                if (cudnnGetConvolutionBackwardDataWorkspaceSize(handle_, p.f, p.y, p.conv, p.x, r[k].algo, &bytes) !=
                    CUDNN_STATUS_SUCCESS)
                    continue;
                p.bwd_algo = r[k].algo;
                p.bwd_bytes = bytes;
                return;
            }
        throw CudnnError(no_algorithm("backward-data", p, g, offered(r, n)), CUDNN_STATUS_NOT_SUPPORTED);
    }

    /// Deterministic candidates only (ALGO_1 is, and runs every geometry; ALGO_0 and ALGO_3 sum
    /// with atomics); the direct sum ALGO_1 first, FFT / Winograd only where it cannot run: their
    /// transforms round with the whole tile's magnitude, and the trained weights should follow
    /// the CPU's gradient to float rounding. Under the plans' mutex: two threads may share a context.
    void choose_backward_filter(Plan& p, const ConvGeometry& g) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (p.filter_chosen) return;
        constexpr int kMax = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT;
        cudnnConvolutionBwdFilterAlgoPerf_t r[kMax];
        int n = 0;
        if (search_ == AlgoSearch::exhaustive)
            GANINV_CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithm(handle_, p.x, p.y, p.conv, p.f, kMax, &n, r));
        else
            GANINV_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(handle_, p.x, p.y, p.conv, p.f, kMax, &n, r));
        for (bool direct_only : {true, false})
            for (int k = 0; k < n; ++k) {
                if (r[k].status != CUDNN_STATUS_SUCCESS || !math_ok(p, r[k].mathType) ||
                    r[k].determinism != CUDNN_DETERMINISTIC ||
                    (direct_only && r[k].algo != CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1))
                    continue;
                std::size_t bytes = 0;
                if (cudnnGetConvolutionBackwardFilterWorkspaceSize(handle_, p.x, p.y, p.conv, p.f, r[k].algo, &bytes) !=
                    CUDNN_STATUS_SUCCESS)
                    continue;
                p.filter_algo = r[k].algo;
                p.filter_bytes = bytes;
                p.filter_chosen = true;
                return;
            }
        throw CudnnError(concat("cuDNN conv: no deterministic backward-filter algorithm supports this geometry in ",
                                describe(p.kind), " (", g.describe(), "; cuDNN offered: ", offered(r, n), ")"),
                         CUDNN_STATUS_NOT_SUPPORTED);
    }

    std::shared_ptr<MemoryPool> pool_;
    AlgoSearch search_;
    Precision precision_;
    cudnnMathType_t math_ = CUDNN_FMA_MATH;
    cudnnHandle_t handle_ = nullptr;
    std::mutex mutex_;
    std::map<Key, std::unique_ptr<Plan>> plans_;
};

}  // namespace ganinv::cuda
