/// @file cuda.cuh
/// @brief The `Cuda` backend policy: device tensors and the operations the generator is written
///        against, with exactly the members of `Cpu` (backend/cpu.hpp), same signatures, device
///        pointers, plus the losses' `BufferOps<Cuda>` (cuda_buffer_ops.cuh, included here).
///        `StyleGAN2<Cpu>` and `StyleGAN2<Cuda>` are one template; concepts/backend.hpp lists
///        every operation.
///
/// Include from a CUDA translation unit (.cu): it includes kernels (cuda/*.cuh). A `Cuda` is built from an
/// explicit cudaStream_t; every launch, copy and memset goes to that stream. It owns (shared
/// between its copies) a caching MemoryPool bound to that stream and a pinned staging buffer, so
/// two backends on two streams — two generators — share nothing. No global state.
#pragma once

#include "ganinv/backend/cuda_buffer_ops.cuh"
#include "ganinv/core/tensor.hpp"
#include "ganinv/cuda/device_buffer.hpp"
#include "ganinv/cuda/elementwise.cuh"
#include "ganinv/cuda/lbfgs_kernels.cuh"
#include "ganinv/cuda/linear.cuh"
#include "ganinv/cuda/modconv.cuh"
#include "ganinv/cuda/optim_kernels.cuh"
#include "ganinv/cuda/options.hpp"
#include "ganinv/cuda/stream.hpp"
#include "ganinv/cuda/style_blocks.cuh"
#include "ganinv/cuda/upfirdn2d.cuh"
#include "ganinv/nn/bias_act.hpp"
#include "ganinv/nn/cma_ops.hpp"
#include "ganinv/nn/linear_params.hpp"
#include "ganinv/nn/modconv_shape.hpp"
#include "ganinv/nn/upfirdn2d.hpp"

#include <cstring>
#include <memory>

namespace ganinv {

struct Cuda {
    using Buffer = cuda::DeviceTensor;
    static constexpr const char* name = "cuda";

    /// Work goes to `stream` (0 = the legacy default stream, if that is what you want) on the
    /// current device. Throws CudaError when there is no usable device.
    explicit Cuda(cudaStream_t stream, cuda::CudaOptions options = {}) : state_(std::make_shared<State>()) {
        int dev = 0;
        GANINV_CUDA_CHECK(cudaGetDevice(&dev));
        GANINV_CUDA_CHECK(cudaDeviceGetAttribute(&state_->num_sms, cudaDevAttrMultiProcessorCount, dev));
        state_->pool = std::make_shared<cuda::MemoryPool>(stream, options.cache_allocations);
        state_->options = options;
        state_->wgmma = wgmma_for(options.engine, stream);
    }
    /// Whether the TF32/BF16 modulated convs may use the Hopper wgmma kernels (see GemmEngine).
    bool wgmma_enabled() const { return state_->wgmma; }

    cudaStream_t stream() const { return state_->pool->stream(); }
    const cuda::CudaOptions& options() const { return state_->options; }
    cuda::MemoryPool& pool() const { return *state_->pool; }
    /// While the returned guard lives, the modulated convs keep the forms they derive from the
    /// weights (squared norms, transposed and packed copies) instead of deriving them at every
    /// call: for loops that do not change the generator (Inverter::run holds one). Weights written
    /// inside the scope are not seen; leaving the last scope forgets every kept form.
    [[nodiscard]] std::unique_ptr<cuda::WeightPrepCache::Frozen> freeze_weights() const {
        return std::make_unique<cuda::WeightPrepCache::Frozen>(state_->weight_prep);
    }
    const cuda::WeightPrepCache& weight_prep() const { return *state_->weight_prep; }

    /// The same device state (pool, stream) with other GEMM options.
    Cuda with_options(cuda::CudaOptions o) const {
        Cuda c = *this;
        c.state_ = std::make_shared<State>(*state_);
        c.state_->options = o;
        c.state_->wgmma = wgmma_for(o.engine, stream());
        return c;
    }

    // ------------------------------------------------------------------ memory
    Buffer empty(const Shape& shape) const { return Buffer(shape, state_->pool); }
    Buffer zeros(const Shape& shape) const {
        Buffer b(shape, state_->pool);
        if (b.numel() > 0) GANINV_CUDA_CHECK(cudaMemsetAsync(b.data(), 0, b.bytes(), stream()));
        return b;
    }
    /// Host -> device through pinned staging (synchronizes the stream: the staging is reused).
    Buffer upload(const Tensor<float>& host) const {
        Buffer b(host.shape(), state_->pool);
        if (b.numel() == 0) return b;
        std::lock_guard<std::mutex> lock(state_->staging->mutex());
        void* pinned = state_->staging->get(b.bytes());
        std::memcpy(pinned, host.data(), b.bytes());
        GANINV_CUDA_CHECK(cudaMemcpyAsync(b.data(), pinned, b.bytes(), cudaMemcpyHostToDevice, stream()));
        GANINV_CUDA_CHECK(cudaStreamSynchronize(stream()));
        pool().traffic().upload(b.bytes());
        ++pool().traffic().syncs;
        return b;
    }
    /// Device -> host through pinned staging (waits for the stream).
    Tensor<float> download(const Buffer& b) const {
        Tensor<float> host(b.shape());
        if (b.numel() == 0) return host;
        std::lock_guard<std::mutex> lock(state_->staging->mutex());
        void* pinned = state_->staging->get(b.bytes());
        GANINV_CUDA_CHECK(cudaMemcpyAsync(pinned, b.data(), b.bytes(), cudaMemcpyDeviceToHost, stream()));
        GANINV_CUDA_CHECK(cudaStreamSynchronize(stream()));
        pool().traffic().download(b.bytes());
        ++pool().traffic().syncs;
        std::memcpy(host.data(), pinned, b.bytes());
        return host;
    }
    void fill(Buffer& b, float v) const { cuda::launch_1d(cuda::kernels::fill<float>, b.numel(), stream(), b.data(), static_cast<long long>(b.numel()), v); }
    void copy(const float* src, float* dst, Index n) const {
        if (n > 0) GANINV_CUDA_CHECK(cudaMemcpyAsync(dst, src, sizeof(float) * static_cast<std::size_t>(n), cudaMemcpyDeviceToDevice, stream()));
    }
    void synchronize() const {
        GANINV_CUDA_CHECK(cudaStreamSynchronize(stream()));
        ++pool().traffic().syncs;
    }

    // ------------------------------------------------------------------ elementwise
    void axpy(Index n, float alpha, const float* x, float* y) const {
        cuda::launch_1d(cuda::kernels::axpy<float>, n, stream(), static_cast<long long>(n), alpha, x, y);
    }
    void broadcast_rows(const float* src, Index row, Index batch, float* dst) const {
        cuda::launch_1d(cuda::kernels::broadcast_rows<float>, row * batch, stream(), src, ll(row), ll(batch), dst);
    }
    void sum_rows_add(const float* src, Index row, Index batch, float* dst) const {
        cuda::launch_1d(cuda::kernels::sum_rows_add<float>, row, stream(), src, ll(row), ll(batch), dst);
    }
    void truncate(float* ws, Index batch, Index num_ws, Index dim, const float* avg, float psi, Index cutoff) const {
        cuda::launch_1d(cuda::kernels::truncate<float>, batch * std::min(cutoff, num_ws) * dim, stream(), ws, ll(batch),
                        ll(num_ws), ll(dim), avg, psi, ll(cutoff));
    }
    void gather_columns(const float* src, Index rows, Index src_cols, Index offset, Index cols, float scale,
                        float* dst) const {
        cuda::launch_1d(cuda::kernels::gather_columns<float>, rows * cols, stream(), src, ll(rows), ll(src_cols),
                        ll(offset), ll(cols), scale, dst);
    }
    void scatter_add_columns(const float* src, Index rows, Index cols, float scale, float* dst, Index dst_cols,
                             Index offset) const {
        cuda::launch_1d(cuda::kernels::scatter_add_columns<float>, rows * cols, stream(), src, ll(rows), ll(cols), scale,
                        dst, ll(dst_cols), ll(offset));
    }
    void reduce_ws(const float* g, Index batch, Index num_ws, Index dim, float psi, Index cutoff, float* out) const {
        cuda::launch_1d(cuda::kernels::reduce_ws<float>, batch * dim, stream(), g, ll(batch), ll(num_ws), ll(dim), psi,
                        ll(cutoff), out);
    }

    // ------------------------------------------------------------------ mapping pieces
    void normalize_2nd_moment(const float* x, Index rows, Index dim, float* y) const {
        cuda::launch_1d(cuda::kernels::normalize_2nd_moment<float>, rows * 32, stream(), x, ll(rows),
                        static_cast<int>(dim), y);
    }
    void normalize_2nd_moment_backward(const float* x, const float* grad_y, Index rows, Index dim, float* grad_x) const {
        cuda::launch_1d(cuda::kernels::normalize_2nd_moment_backward<float>, rows * 32, stream(), x, grad_y, ll(rows),
                        static_cast<int>(dim), grad_x);
    }
    void linear_forward(const float* x, Index n, const float* w, const float* b, const nn::LinearParams& p, float* y) const {
        cuda::linear_forward(x, n, w, b, p, y, stream());
    }
    void linear_backward(const float* x, Index n, const float* w, const float* y, float* grad_y, const nn::LinearParams& p,
                         float* grad_x, float* grad_w, float* grad_b) const {
        cuda::linear_backward(x, n, w, y, grad_y, p, grad_x, grad_w, grad_b, stream());
    }

    // ------------------------------------------------------------------ all layers' styles
    void affine_styles(const float* ws, Index n, Index num_ws, Index w_dim, std::span<const nn::StyleAffine> layers,
                       Index style_dim, float* styles) const {
        cuda::affine_styles(ws, n, num_ws, w_dim, layers, style_dim, styles, stream());
    }
    void affine_styles_backward(const float* ws, const float* grad_styles, Index n, Index num_ws, Index w_dim,
                                std::span<const nn::StyleAffine> layers, Index style_dim, float* grad_ws) const {
        cuda::affine_styles_backward(ws, grad_styles, n, num_ws, w_dim, layers, style_dim, grad_ws, stream());
    }
    void gather_column_blocks(const float* src, Index rows, Index cols, std::span<const nn::ColumnBlock> blocks) const {
        cuda::column_blocks<false>(src, rows, cols, blocks, stream());
    }
    void scatter_add_column_blocks(std::span<const nn::ColumnBlock> blocks, Index rows, float* dst, Index cols) const {
        cuda::column_blocks<true>(dst, rows, cols, blocks, stream());
    }

    // ------------------------------------------------------------------ synthesis pieces
    void modconv_forward(const float* x, const float* w, const float* s, const float* filter, const nn::ModConvShape& sh,
                         float* y, float* dcoefs) const {
        cuda::modconv_forward(context(), x, w, s, filter, sh, y, dcoefs);
    }
    void modconv_backward(const float* x, const float* w, const float* s, const float* filter, const float* dcoefs,
                          const float* y, const float* grad_y, const nn::ModConvShape& sh, float* grad_x,
                          float* grad_s, float* grad_w, bool accumulate_grad_x = false) const {
        cuda::modconv_backward(context(), x, w, s, filter, dcoefs, y, grad_y, sh, grad_x, grad_s, grad_w,
                               accumulate_grad_x);
    }
    /// modconv_forward, then out = bias_act(y + strength * noise + bias) fused into its last pass
    /// (noise and bias may be null).
    void modconv_forward_fused(const float* x, const float* w, const float* s, const float* filter,
                               const nn::ModConvShape& sh, float* y, float* dcoefs, float* out, const float* noise,
                               bool noise_per_sample, const float* strength, const float* bias,
                               const nn::BiasActParams& act) const {
        const cuda::ModconvFusedEpilogue f{out, noise, noise_per_sample, strength, bias, act};
        cuda::modconv_forward(context(), x, w, s, filter, sh, y, dcoefs, &f);
    }

    void add_noise(float* y, Index batch, Index channels, Index spatial, const float* noise, bool noise_per_sample,
                   const float* strength) const {
        cuda::launch_1d(cuda::kernels::add_noise<float>, batch * channels * spatial, stream(), y, ll(batch), ll(channels),
                        ll(spatial), noise, noise_per_sample, strength);
    }
    void add_noise_backward(const float* g, Index batch, Index channels, Index spatial, const float* noise,
                            bool noise_per_sample, const float* strength, float* grad_noise, float* grad_strength) const {
        cuda::launch_1d(cuda::kernels::add_noise_backward<float>, batch * spatial, stream(), g, ll(batch), ll(channels),
                        ll(spatial), noise, noise_per_sample, strength, grad_noise, grad_strength);
    }

    void bias_act_forward(float* x, Index n, Index c, Index spatial, const float* bias, const nn::BiasActParams& p) const {
        cuda::launch_1d(cuda::kernels::bias_act_forward<float>, n * c * spatial, stream(), x, ll(n), ll(c), ll(spatial),
                        bias, p);
    }
    void bias_act_backward(const float* y, const float* grad_y, Index n, Index c, Index spatial,
                           const nn::BiasActParams& p, float* grad_x, float* grad_bias) const {
        if (n * c * spatial <= 0) return;
        GANINV_CHECK(n * c < (Index{1} << 31), ShapeError, "bias_act_backward: too many planes");
        const Index chunks = std::min<Index>((spatial + 4 * cuda::kBlock - 1) / (4 * cuda::kBlock), 1024);
        cuda::kernels::bias_act_backward<float><<<dim3(static_cast<unsigned>(n * c), static_cast<unsigned>(chunks)),
                                                  cuda::kBlock, 0, stream()>>>(y, grad_y, ll(c), ll(spatial), p,
                                                                               grad_x, grad_bias);
        GANINV_CUDA_CHECK_LAUNCH();
    }

    /// bias_act_backward then add_noise_backward (noise may be null) in one pass over the tensor.
    void bias_act_noise_backward(const float* y, const float* grad_y, Index n, Index c, Index spatial,
                                 const nn::BiasActParams& p, const float* noise, bool noise_per_sample,
                                 const float* strength, float* grad_x, float* grad_bias, float* grad_noise,
                                 float* grad_strength) const {
        bias_act_noise_backward_sums(y, grad_y, n, c, spatial, p, noise, noise_per_sample, strength, grad_x, grad_bias,
                                     grad_noise, grad_strength, nullptr, nullptr);
    }

    /// Whether modconv_backward_fused runs `sh` through the one-pass prologue (with this backend's
    /// precision and engine; `want_grad_w`: a weight gradient is requested).
    bool modconv_backward_fuses_prologue(const nn::ModConvShape& sh, bool want_grad_w) const {
        return cuda::modconv_grad_prologue_applies(context(), sh, want_grad_w);
    }

    /// The backward of modconv_forward_fused (out = bias_act(y + strength * noise + bias)) from
    /// grad_out: bias_act_noise_backward then modconv_backward. Where cuda::modconv_grad_prologue_applies
    /// (up = 1, demodulated, wgmma grad-input, no grad_w) the first part, the demodulation sums and
    /// the operand packing are one pass (cuda/modconv_grad_prologue.cuh) and g_pre is never stored.
    void modconv_backward_fused(const float* x, const float* w, const float* s, const float* filter,
                                const float* dcoefs, const float* y, const float* out, const float* grad_out,
                                const nn::ModConvShape& sh, const nn::BiasActParams& act, const float* noise,
                                bool noise_per_sample, const float* strength, float* grad_x, float* grad_s,
                                float* grad_w, float* grad_bias, float* grad_noise, float* grad_strength,
                                bool accumulate_grad_x = false) const {
        if (modconv_backward_fuses_prologue(sh, grad_w != nullptr)) {
            cuda::modconv_backward_prologue_fused(context(), x, w, s, dcoefs, y, out, grad_out, sh, act, noise,
                                                  noise_per_sample, strength, grad_x, grad_s, grad_bias, grad_noise,
                                                  grad_strength, accumulate_grad_x);
            return;
        }
        Buffer g_pre = empty({sh.batch, sh.out_channels, sh.out_h(), sh.out_w()});
        // Demodulated layers: the demodulation sums sum_p g_pre * y come from the same pass (one
        // read of y instead of a separate pass over g_pre and y); ToRGB-like shapes add theirs
        // inside their own backward kernel.
        const bool sums = sh.demodulate && !cuda::pointwise_modconv_eligible(sh);
        Buffer demod = sums ? zeros({sh.batch, sh.out_channels}) : Buffer{};
        bias_act_noise_backward_sums(out, grad_out, sh.batch, sh.out_channels, sh.out_h() * sh.out_w(), act, noise,
                                     noise_per_sample, strength, g_pre.data(), grad_bias, grad_noise, grad_strength,
                                     sums ? y : nullptr, sums ? demod.data() : nullptr);
        if (sums)
            cuda::modconv_backward_from_sums(context(), x, w, s, filter, dcoefs, y, g_pre.data(), sh, grad_x, grad_s,
                                             grad_w, accumulate_grad_x, demod.data());
        else
            modconv_backward(x, w, s, filter, dcoefs, y, g_pre.data(), sh, grad_x, grad_s, grad_w, accumulate_grad_x);
    }

    void upfirdn2d_forward(const float* x, Index planes, Index h, Index w, const float* f, Index fh, Index fw,
                           const nn::Upfirdn2dParams& p, float* y) const {
        cuda::upfirdn2d_forward(x, planes, cuda::FirGeom::make(h, w, fh, fw, p), f, y, stream());
    }
    void upfirdn2d_backward(const float* gy, Index planes, Index h, Index w, const float* f, Index fh, Index fw,
                            const nn::Upfirdn2dParams& p, float* gx) const {
        cuda::upfirdn2d_backward(gy, planes, cuda::FirGeom::make(h, w, fh, fw, p), f, gx, stream());
    }

    // ------------------------------------------------------------------ optimizer (invert/device_loop.hpp)
    // Same contracts as Cpu's; kernels in cuda/optim_kernels.cuh. Nothing here waits for the stream.
    /// ws[r, k*code_dim + j] = code[r, j] + noise_scale[step] * philox_normal(seed, step, r*code_dim + j), k < repeat.
    void exploration_ws(const float* code, Index rows, Index code_dim, Index repeat, const nn::StepState& s,
                        std::uint64_t seed, float* ws) const {
        cuda::exploration_ws(code, rows, code_dim, repeat, s, seed, ws, stream());
    }
    /// Adam (learning_rate[step], bias correction t = step + 1) on the rows of every segment whose running flag is set.
    void adam_segments(std::span<const nn::ParamSegment> segs, Index rows, const nn::AdamConstants& c,
                       const nn::StepState& s) const {
        cuda::adam_segments(segs, rows, c, s, stream());
    }
    /// Every running row of every segment's param to zero mean / unit variance (double sums).
    void renormalize_segments(std::span<const nn::ParamSegment> segs, Index rows, const nn::StepState& s) const {
        cuda::renormalize_segments(segs, rows, s, pool(), stream());
    }
    /// history[step, :] = values, the stop rule per row (nn::stop_update), then *step += 1: a step's last op.
    void stop_and_advance(const float* values, Index rows, const nn::StopRule& rule, const nn::StopState& st,
                          float* step) const {
        cuda::stop_and_advance(values, rows, rule, st, step, stream());
    }
    /// A captured step: capture once (nothing runs), then replay per step. Cpu has none: the
    /// device loop detects StepGraph and runs plain calls without it.
    using StepGraph = cuda::Graph;
    template <class Fn>
    void capture(StepGraph& graph, Fn&& fn) const { graph.capture(stream(), std::forward<Fn>(fn)); }
    void replay(const StepGraph& graph) const { graph.launch(stream()); }
    /// Pinned host memory that copy_to_host_async may write into.
    std::shared_ptr<float[]> host_buffer(Index n) const {
        void* p = nullptr;
        GANINV_CUDA_CHECK(cudaMallocHost(&p, sizeof(float) * static_cast<std::size_t>(std::max<Index>(n, 1))));
        return std::shared_ptr<float[]>(static_cast<float*>(p), [](float* q) { (void)cudaFreeHost(q); });
    }
    /// Starts dst[0, n) = src[0, n) on the stream (dst from host_buffer); complete after wait_host_copies().
    void copy_to_host_async(const float* src, Index n, float* dst) const {
        if (n <= 0) return;
        GANINV_CUDA_CHECK(cudaMemcpyAsync(dst, src, sizeof(float) * static_cast<std::size_t>(n), cudaMemcpyDeviceToHost, stream()));
        if (!state_->copied) {
            cudaEvent_t e = nullptr;
            GANINV_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
            state_->copied = std::shared_ptr<CUevent_st>(e, [](cudaEvent_t q) { (void)cudaEventDestroy(q); });
        }
        GANINV_CUDA_CHECK(cudaEventRecord(state_->copied.get(), stream()));
        pool().traffic().download(sizeof(float) * static_cast<std::size_t>(n));
    }
    /// Waits (on an event, not the whole stream's future work) for the last copy_to_host_async.
    void wait_host_copies() const {
        if (!state_->copied) return;
        GANINV_CUDA_CHECK(cudaEventSynchronize(state_->copied.get()));
        ++pool().traffic().syncs;
    }
    /// Starts dst[0, n) = src[0, n) on the stream from pinned host memory (host_buffer's): no
    /// wait here; src must stay unchanged until a later wait_host_copies() returns.
    void copy_to_device_async(const float* src, Index n, float* dst) const {
        if (n <= 0) return;
        GANINV_CUDA_CHECK(cudaMemcpyAsync(dst, src, sizeof(float) * static_cast<std::size_t>(n), cudaMemcpyHostToDevice, stream()));
        pool().traffic().upload(sizeof(float) * static_cast<std::size_t>(n));
    }

    // ------------------------------------------------------------------ L-BFGS (invert/device_lbfgs.hpp)
    // Same contracts as Cpu's; nn/lbfgs_ops.hpp's functors in the kernels of cuda/lbfgs_kernels.cuh.
    // Nothing here waits for the stream.
    void lbfgs_direction(const nn::LbfgsVectors& v, const nn::LbfgsRows& w, Index max_pairs) const {
        nn::lbfgs_direction_passes(v, w, max_pairs, lbfgs_launch(v));
    }
    void lbfgs_trial(const nn::LbfgsVectors& v, const nn::LbfgsRows& w) const {
        lbfgs_launch(v).reduce(nn::LbfgsTrial{{v, w}});
    }
    void lbfgs_slope(const nn::LbfgsVectors& v, const nn::LbfgsRows& w) const {
        lbfgs_launch(v).reduce(nn::LbfgsSlope{{v, w}});
    }
    void lbfgs_accept(const nn::LbfgsVectors& v, const nn::LbfgsRows& w) const {
        const cuda::LbfgsLaunch run = lbfgs_launch(v);
        run.reduce(nn::LbfgsAcceptDots{{v, w}});
        run.map(nn::LbfgsAcceptMove{{v, w}});
    }
    void scatter_row_blocks(const float* point, Index rows, Index width, std::span<const nn::RowBlock> blocks) const {
        cuda::scatter_row_blocks(point, rows, width, blocks, stream());
    }
    void gather_row_blocks(std::span<const nn::RowBlock> blocks, Index rows, Index width, float* grad) const {
        cuda::gather_row_blocks(blocks, rows, width, grad, stream());
    }

    // ------------------------------------------------------------------ CMA-ES (invert/device_cma.hpp)
    // Same contracts as Cpu's; nn/cma_ops.hpp's functors in cuda/lbfgs_kernels.cuh's generic row
    // maps and reductions. Nothing here waits for the stream.
    void cma_sample(const nn::CmaConstants& k, const nn::CmaVectors& v) const { nn::cma_sample_passes(k, v, cma_launch(v)); }
    void cma_update(const nn::CmaConstants& k, const nn::CmaVectors& v) const { nn::cma_update_passes(k, v, cma_launch(v)); }
    void cma_stats(const nn::CmaConstants& k, const nn::CmaVectors& v) const { nn::cma_stats_passes(k, v, cma_launch(v)); }

private:
    /// bias_act_noise_backward (out: the epilogue's output, grad_out its gradient, g_pre the
    /// result); with conv_y and demod_sum (both or neither) also demod_sum[n, c] += sum_p g_pre *
    /// conv_y (the demodulation sums of the conv whose output conv_y is) from the same pass.
    void bias_act_noise_backward_sums(const float* out, const float* grad_out, Index n, Index c, Index spatial,
                                      const nn::BiasActParams& p, const float* noise, bool noise_per_sample,
                                      const float* strength, float* g_pre, float* grad_bias, float* grad_noise,
                                      float* grad_strength, const float* conv_y, float* demod_sum) const {
        if (n * c * spatial <= 0) return;
        const int groups = cuda::channel_groups(c);
        const Index tile = cuda::pixel_tile(groups);
        const std::size_t smem =
            sizeof(float) * static_cast<std::size_t>(groups * tile + (grad_bias ? c : 0) + (demod_sum ? c : 0));
        GANINV_CHECK(n <= 65535 && smem <= 48 * 1024 && (spatial + tile - 1) / tile < (Index{1} << 31), ShapeError,
                     "bias_act_noise_backward: batch ", n, ", channels ", c, " or plane ", spatial,
                     " exceed the kernel's limits");
        const Index tiles = (spatial + tile - 1) / tile;
        const int chunks = cuda::channel_chunks(tiles * n, c, groups, state_->num_sms);
        if (chunks > 1 && noise && grad_noise) GANINV_CUDA_CHECK(cudaMemsetAsync(grad_noise, 0, sizeof(float) * n * spatial, stream()));
        const dim3 grid(static_cast<unsigned>(tiles), static_cast<unsigned>(n), static_cast<unsigned>(chunks));
        cuda::kernels::bias_act_noise_backward<float><<<grid, cuda::kBlock, smem, stream()>>>(
            out, grad_out, static_cast<int>(c), ll(spatial), groups, p, noise, noise_per_sample, strength, g_pre, grad_bias,
            noise ? grad_noise : nullptr, noise ? grad_strength : nullptr, conv_y, demod_sum);
        GANINV_CUDA_CHECK_LAUNCH();
    }

    struct State {
        std::shared_ptr<cuda::MemoryPool> pool;
        std::shared_ptr<cuda::PinnedStaging> staging = std::make_shared<cuda::PinnedStaging>();
        cuda::CudaOptions options;
        int num_sms = 132;
        bool wgmma = false;
        std::shared_ptr<CUevent_st> copied;  ///< recorded after copy_to_host_async
        /// Prepared weight forms; shared by copies and with_options() (keys name the operand).
        std::shared_ptr<cuda::WeightPrepCache> weight_prep = std::make_shared<cuda::WeightPrepCache>();
    };
    /// Probes the wgmma path (synchronizes the stream once) unless the engine is portable.
    static bool wgmma_for(cuda::GemmEngine engine, cudaStream_t stream) {
        if (engine == cuda::GemmEngine::portable) return false;
        const bool ok = cuda::hopper::probe_wgmma(stream);
        GANINV_CHECK(ok || engine != cuda::GemmEngine::wgmma, ValueError,
                     "CudaOptions::engine = wgmma, but this binary has no sm_90a code "
                     "(build with CMAKE_CUDA_ARCHITECTURES=90a) or the device is not compute capability 9.0");
        return ok;
    }
    static long long ll(Index v) { return static_cast<long long>(v); }
    cuda::LbfgsLaunch lbfgs_launch(const nn::LbfgsVectors& v) const { return {pool(), stream(), v.rows, v.len}; }
    /// The CMA-ES passes' loops: LbfgsLaunch's, with the length of each pass.
    struct CmaLaunch {
        cuda::MemoryPool& pool;
        cudaStream_t stream;
        Index rows;
        template <class M>
        void map(const M& m, Index len) const { cuda::LbfgsLaunch{pool, stream, rows, len}.map(m); }
        template <class T>
        void reduce(const T& t, Index len) const { cuda::LbfgsLaunch{pool, stream, rows, len}.reduce(t); }
    };
    CmaLaunch cma_launch(const nn::CmaVectors& v) const { return {pool(), stream(), v.rows}; }
    cuda::ModconvContext context() const {
        return {state_->pool,
                state_->num_sms,
                state_->options.precision,
                state_->options.style_mode,
                state_->wgmma,
                state_->wgmma && state_->options.engine == cuda::GemmEngine::wgmma,
                state_->options.wgrad,
                state_->weight_prep.get(),
                state_->options.fuse_backward_prologue,
                state_->options.wgmma_split_k,
                state_->options.wgmma_row_tiles,
                state_->options.wgmma_row_strips};
    }

    std::shared_ptr<State> state_;
};

}  // namespace ganinv
