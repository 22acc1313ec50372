/// @file cpu.hpp
/// @brief The `Cpu` backend policy: host tensors and the operations the generator is written
///        against (Eigen GEMMs + OpenMP). `Cuda` (backend/cuda.cuh) provides the same members
///        over device memory, so `StyleGAN2<Cpu>` and `StyleGAN2<Cuda>` are one template. The losses'
///        half, `BufferOps<Cpu>`, is in cpu_buffer_ops.hpp (Eigen-free, included here);
///        concepts/backend.hpp lists every operation.
#pragma once

#include "ganinv/backend/cpu_buffer_ops.hpp"
#include "ganinv/core/philox.hpp"
#include "ganinv/core/tensor.hpp"
#include "ganinv/nn/bias_act.hpp"
#include "ganinv/nn/cma_ops.hpp"
#include "ganinv/nn/lbfgs_ops.hpp"
#include "ganinv/nn/linear.hpp"
#include "ganinv/nn/modulated_conv.hpp"
#include "ganinv/nn/optimizer_ops.hpp"
#include "ganinv/nn/style_blocks.hpp"
#include "ganinv/nn/upfirdn2d.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

namespace ganinv {

struct Cpu {
    using Buffer = Tensor<float>;
    static constexpr const char* name = "cpu";

    // ------------------------------------------------------------------ memory
    Buffer empty(const Shape& shape) const { return Buffer(shape); }
    Buffer zeros(const Shape& shape) const { return Buffer(shape, 0.0f); }
    Buffer upload(const Tensor<float>& host) const { return host; }
    Tensor<float> download(const Buffer& b) const { return b; }
    void fill(Buffer& b, float v) const { b.fill(v); }
    void copy(const float* src, float* dst, Index n) const { std::memcpy(dst, src, sizeof(float) * static_cast<std::size_t>(n)); }
    void synchronize() const {}

    // ------------------------------------------------------------------ elementwise
    /// y[i] += alpha * x[i]
    void axpy(Index n, float alpha, const float* x, float* y) const {
#pragma omp parallel for schedule(static) if (n > nn::kParallelMinWork)
        for (Index i = 0; i < n; ++i) y[i] += alpha * x[i];
    }
    /// dst[b, :] = src[:] for b < batch
    void broadcast_rows(const float* src, Index row, Index batch, float* dst) const {
        for (Index b = 0; b < batch; ++b) std::memcpy(dst + b * row, src, sizeof(float) * static_cast<std::size_t>(row));
    }
    /// dst[:] += sum_b src[b, :]
    void sum_rows_add(const float* src, Index row, Index batch, float* dst) const {
        for (Index b = 0; b < batch; ++b)
            for (Index i = 0; i < row; ++i) dst[i] += src[b * row + i];
    }
    /// y = avg + psi * (x - avg) on rows [0, cutoff) of every sample's [num_ws, dim] block.
    void truncate(float* ws, Index batch, Index num_ws, Index dim, const float* avg, float psi, Index cutoff) const {
        for (Index b = 0; b < batch; ++b)
            for (Index l = 0; l < std::min(cutoff, num_ws); ++l)
                for (Index i = 0; i < dim; ++i) {
                    float& v = ws[(b * num_ws + l) * dim + i];
                    v = avg[i] + psi * (v - avg[i]);
                }
    }

    /// dst[r, :] = scale * src[r, offset : offset + cols] (a column block of a row-major matrix).
    void gather_columns(const float* src, Index rows, Index src_cols, Index offset, Index cols, float scale,
                        float* dst) const {
        for (Index r = 0; r < rows; ++r)
            for (Index c = 0; c < cols; ++c) dst[r * cols + c] = scale * src[r * src_cols + offset + c];
    }
    /// dst[r, offset : offset + cols] += scale * src[r, :] (adjoint of gather_columns).
    void scatter_add_columns(const float* src, Index rows, Index cols, float scale, float* dst, Index dst_cols,
                             Index offset) const {
        for (Index r = 0; r < rows; ++r)
            for (Index c = 0; c < cols; ++c) dst[r * dst_cols + offset + c] += scale * src[r * cols + c];
    }
    /// out[b, :] = sum_l coef(l) * g[b, l, :], coef = psi below cutoff else 1 (broadcast + truncation adjoint).
    void reduce_ws(const float* g, Index batch, Index num_ws, Index dim, float psi, Index cutoff, float* out) const {
        for (Index b = 0; b < batch; ++b)
            for (Index i = 0; i < dim; ++i) {
                double acc = 0;
                for (Index l = 0; l < num_ws; ++l) acc += (l < cutoff ? psi : 1.0f) * g[(b * num_ws + l) * dim + i];
                out[b * dim + i] = static_cast<float>(acc);
            }
    }

    // ------------------------------------------------------------------ mapping pieces
    /// y = x * rsqrt(mean(x^2) + 1e-8) per row.
    void normalize_2nd_moment(const float* x, Index rows, Index dim, float* y) const {
        for (Index r = 0; r < rows; ++r) {
            double m = 0;
            for (Index i = 0; i < dim; ++i) m += static_cast<double>(x[r * dim + i]) * x[r * dim + i];
            const float scale = 1.0f / std::sqrt(static_cast<float>(m / static_cast<double>(dim)) + 1e-8f);
            for (Index i = 0; i < dim; ++i) y[r * dim + i] = x[r * dim + i] * scale;
        }
    }
    void normalize_2nd_moment_backward(const float* x, const float* grad_y, Index rows, Index dim, float* grad_x) const {
        for (Index r = 0; r < rows; ++r) {
            double m = 0, gx = 0;
            for (Index i = 0; i < dim; ++i) {
                m += static_cast<double>(x[r * dim + i]) * x[r * dim + i];
                gx += static_cast<double>(grad_y[r * dim + i]) * x[r * dim + i];
            }
            const double ms = m / static_cast<double>(dim) + 1e-8;
            const double s = 1.0 / std::sqrt(ms);
            // d/dx_j [x_i s] = s delta_ij - x_i x_j s^3 / dim
            const double k = gx * s * s * s / static_cast<double>(dim);
            for (Index i = 0; i < dim; ++i)
                grad_x[r * dim + i] = static_cast<float>(grad_y[r * dim + i] * s - x[r * dim + i] * k);
        }
    }

    void linear_forward(const float* x, Index n, const float* w, const float* b, const nn::LinearParams& p, float* y) const {
        nn::linear_forward(x, n, w, b, p, y);
    }
    void linear_backward(const float* x, Index n, const float* w, const float* y, float* grad_y, const nn::LinearParams& p,
                         float* grad_x, float* grad_w, float* grad_b) const {
        nn::linear_backward(x, n, w, y, grad_y, p, grad_x, grad_w, grad_b);
    }

    // ------------------------------------------------------------------ all layers' styles
    /// styles[:, l.offset + c] = affine_l(ws[:, l.w_index]) for every layer l (other columns kept).
    void affine_styles(const float* ws, Index n, Index num_ws, Index w_dim, std::span<const nn::StyleAffine> layers,
                       Index style_dim, float* styles) const {
        std::vector<float> w(static_cast<std::size_t>(n * w_dim));
        for (const nn::StyleAffine& l : layers) {
            std::vector<float> s(static_cast<std::size_t>(n * l.channels));
            gather_columns(ws, n, num_ws * w_dim, l.w_index * w_dim, w_dim, 1.0f, w.data());
            nn::linear_forward(w.data(), n, l.weight, l.bias, affine_linear(l, w_dim), s.data());
            for (Index r = 0; r < n; ++r)
                std::copy_n(s.data() + r * l.channels, l.channels, styles + r * style_dim + l.offset);
        }
    }
    /// grad_ws (overwritten) from grad_styles; each layer's grad_weight / grad_bias (if set) accumulate.
    void affine_styles_backward(const float* ws, const float* grad_styles, Index n, Index num_ws, Index w_dim,
                                std::span<const nn::StyleAffine> layers, Index style_dim, float* grad_ws) const {
        std::fill_n(grad_ws, n * num_ws * w_dim, 0.0f);
        std::vector<float> w(static_cast<std::size_t>(n * w_dim)), gw(w.size());
        for (const nn::StyleAffine& l : layers) {
            std::vector<float> g(static_cast<std::size_t>(n * l.channels));
            gather_columns(grad_styles, n, style_dim, l.offset, l.channels, 1.0f, g.data());
            gather_columns(ws, n, num_ws * w_dim, l.w_index * w_dim, w_dim, 1.0f, w.data());
            const std::vector<float> y = g;  // a linear affine's backward never reads its output
            nn::linear_backward(w.data(), n, l.weight, y.data(), g.data(), affine_linear(l, w_dim), gw.data(),
                                l.grad_weight, l.grad_bias);
            scatter_add_columns(gw.data(), n, w_dim, 1.0f, grad_ws, num_ws * w_dim, l.w_index * w_dim);
        }
    }
    /// b.data[r, :] = b.scale * src[r, b.offset : b.offset + b.cols] for every block b.
    void gather_column_blocks(const float* src, Index rows, Index cols, std::span<const nn::ColumnBlock> blocks) const {
        for (const nn::ColumnBlock& b : blocks) gather_columns(src, rows, cols, b.offset, b.cols, b.scale, b.data);
    }
    /// dst[r, b.offset : b.offset + b.cols] += b.scale * b.data[r, :] for every block b.
    void scatter_add_column_blocks(std::span<const nn::ColumnBlock> blocks, Index rows, float* dst, Index cols) const {
        for (const nn::ColumnBlock& b : blocks) scatter_add_columns(b.data, rows, b.cols, b.scale, dst, cols, b.offset);
    }

    // ------------------------------------------------------------------ synthesis pieces
    void modconv_forward(const float* x, const float* w, const float* s, const float* filter, const nn::ModConvShape& sh,
                         float* y, float* dcoefs) const {
        nn::modconv_forward(x, w, s, filter, sh, y, dcoefs);
    }
    /// grad_x (may be null) and grad_s overwritten, grad_w (may be null) accumulates; with
    /// `accumulate_grad_x`, grad_x += instead.
    void modconv_backward(const float* x, const float* w, const float* s, const float* filter, const float* dcoefs,
                          const float* y, const float* grad_y, const nn::ModConvShape& sh, float* grad_x,
                          float* grad_s, float* grad_w, bool accumulate_grad_x = false) const {
        if (!accumulate_grad_x || !grad_x) {
            nn::modconv_backward(x, w, s, filter, dcoefs, y, grad_y, sh, grad_x, grad_s, grad_w);
            return;
        }
        std::vector<float> gx(static_cast<std::size_t>(sh.batch * sh.in_channels * sh.in_h * sh.in_w));
        nn::modconv_backward(x, w, s, filter, dcoefs, y, grad_y, sh, gx.data(), grad_s, grad_w);
        for (std::size_t i = 0; i < gx.size(); ++i) grad_x[i] += gx[i];
    }
    /// modconv_forward, then out = bias_act(y + strength * noise + bias) (noise and bias may be null).
    void modconv_forward_fused(const float* x, const float* w, const float* s, const float* filter,
                               const nn::ModConvShape& sh, float* y, float* dcoefs, float* out, const float* noise,
                               bool noise_per_sample, const float* strength, const float* bias,
                               const nn::BiasActParams& act) const {
        modconv_forward(x, w, s, filter, sh, y, dcoefs);
        const Index O = sh.out_channels, spatial = sh.out_h() * sh.out_w();
        std::copy(y, y + sh.batch * O * spatial, out);
        if (noise) add_noise(out, sh.batch, O, spatial, noise, noise_per_sample, strength);
        bias_act_forward(out, sh.batch, O, spatial, bias, act);
    }

    /// y[n, c, :] += strength * noise[n or 0, :] (noise_per_sample selects the first index).
    void add_noise(float* y, Index batch, Index channels, Index spatial, const float* noise, bool noise_per_sample,
                   const float* strength) const {
        const float k = *strength;
#pragma omp parallel for schedule(static) if (batch * channels * spatial > nn::kParallelMinWork)
        for (Index nc = 0; nc < batch * channels; ++nc) {
            const float* nz = noise + (noise_per_sample ? (nc / channels) * spatial : 0);
            float* row = y + nc * spatial;
            for (Index i = 0; i < spatial; ++i) row[i] += k * nz[i];
        }
    }
    /// grad_noise[n, :] = strength * sum_c g[n, c, :] (overwritten); grad_strength += sum g * noise.
    void add_noise_backward(const float* g, Index batch, Index channels, Index spatial, const float* noise,
                            bool noise_per_sample, const float* strength, float* grad_noise, float* grad_strength) const {
        double gs = 0;
        for (Index n = 0; n < batch; ++n) {
            const float* nz = noise + (noise_per_sample ? n * spatial : 0);
            for (Index i = 0; i < spatial; ++i) {
                double acc = 0;
                for (Index c = 0; c < channels; ++c) acc += g[(n * channels + c) * spatial + i];
                gs += acc * nz[i];
                if (grad_noise) grad_noise[n * spatial + i] = static_cast<float>(acc) * *strength;
            }
        }
        if (grad_strength) *grad_strength += static_cast<float>(gs);
    }

    void bias_act_forward(float* x, Index n, Index c, Index spatial, const float* bias, const nn::BiasActParams& p) const {
        nn::bias_act_forward(x, n, c, spatial, bias, p);
    }
    void bias_act_backward(const float* y, const float* grad_y, Index n, Index c, Index spatial,
                           const nn::BiasActParams& p, float* grad_x, float* grad_bias) const {
        nn::bias_act_backward(y, grad_y, n, c, spatial, p, grad_x, grad_bias);
    }

    /// bias_act_backward, then add_noise_backward of its result when noise is given.
    void bias_act_noise_backward(const float* y, const float* grad_y, Index n, Index c, Index spatial,
                                 const nn::BiasActParams& p, const float* noise, bool noise_per_sample,
                                 const float* strength, float* grad_x, float* grad_bias, float* grad_noise,
                                 float* grad_strength) const {
        bias_act_backward(y, grad_y, n, c, spatial, p, grad_x, grad_bias);
        if (noise) add_noise_backward(grad_x, n, c, spatial, noise, noise_per_sample, strength, grad_noise, grad_strength);
    }

    /// The backward of modconv_forward_fused from grad_out: bias_act_noise_backward, then
    /// modconv_backward of its result (grad_x, grad_s, grad_noise overwritten; grad_w, grad_bias,
    /// grad_strength accumulate; any of grad_w, grad_bias, grad_noise, grad_strength may be null).
    void modconv_backward_fused(const float* x, const float* w, const float* s, const float* filter,
                                const float* dcoefs, const float* y, const float* out, const float* grad_out,
                                const nn::ModConvShape& sh, const nn::BiasActParams& act, const float* noise,
                                bool noise_per_sample, const float* strength, float* grad_x, float* grad_s,
                                float* grad_w, float* grad_bias, float* grad_noise, float* grad_strength,
                                bool accumulate_grad_x = false) const {
        const Index spatial = sh.out_h() * sh.out_w();
        std::vector<float> g_pre(static_cast<std::size_t>(sh.batch * sh.out_channels * spatial));
        bias_act_noise_backward(out, grad_out, sh.batch, sh.out_channels, spatial, act, noise, noise_per_sample, strength,
                                g_pre.data(), grad_bias, grad_noise, grad_strength);
        modconv_backward(x, w, s, filter, dcoefs, y, g_pre.data(), sh, grad_x, grad_s, grad_w, accumulate_grad_x);
    }

    void upfirdn2d_forward(const float* x, Index planes, Index h, Index w, const float* f, Index fh, Index fw,
                           const nn::Upfirdn2dParams& p, float* y) const {
        nn::upfirdn2d_forward(x, planes, h, w, f, fh, fw, p, y);
    }
    void upfirdn2d_backward(const float* gy, Index planes, Index h, Index w, const float* f, Index fh, Index fw,
                            const nn::Upfirdn2dParams& p, float* gx) const {
        nn::upfirdn2d_backward(gy, planes, h, w, f, fh, fw, p, gx);
    }

    // ------------------------------------------------------------------ optimizer (invert/device_loop.hpp)
    // Contracts shared with Cuda; the math per element/row is nn/optimizer_ops.hpp's.
    /// ws[r, k*code_dim + j] = code[r, j] + noise_scale[step] * philox_normal(seed, step, r*code_dim + j), k < repeat.
    void exploration_ws(const float* code, Index rows, Index code_dim, Index repeat, const nn::StepState& s,
                        std::uint64_t seed, float* ws) const {
        const auto step = static_cast<std::uint64_t>(*s.step);
        const float scale = s.noise_scale[step];
        for (Index i = 0; i < rows * code_dim; ++i) {
            const float x = code[i] + (scale != 0.0f ? scale * philox_normal(seed, step, static_cast<std::uint64_t>(i)) : 0.0f);
            const Index r = i / code_dim, j = i % code_dim;
            for (Index k = 0; k < repeat; ++k) ws[(r * repeat + k) * code_dim + j] = x;
        }
    }
    /// Adam (learning_rate[step], bias correction t = step + 1) on the rows of every segment whose running flag is set.
    void adam_segments(std::span<const nn::ParamSegment> segs, Index rows, const nn::AdamConstants& c,
                       const nn::StepState& s) const {
        const nn::AdamStepSize sz = nn::adam_step_size(c, s.learning_rate[static_cast<Index>(*s.step)], *s.step);
        for (const nn::ParamSegment& g : segs)
            for (Index r = 0; r < rows; ++r) {
                if (s.running[r] == 0.0f) continue;
#pragma omp parallel for schedule(static) if (g.row_len > nn::kParallelMinWork)
                for (Index j = r * g.row_len; j < (r + 1) * g.row_len; ++j)
                    nn::adam_element(c, sz, g.grad[j] + (g.grad2 ? g.grad2_scale * g.grad2[j] : 0.0f), g.param[j], g.m[j], g.v[j]);
            }
    }
    /// Every running row of every segment's param to zero mean / unit variance (double sums).
    void renormalize_segments(std::span<const nn::ParamSegment> segs, Index rows, const nn::StepState& s) const {
        for (const nn::ParamSegment& g : segs)
            for (Index r = 0; r < rows; ++r) {
                if (s.running[r] == 0.0f) continue;
                float* x = g.param + r * g.row_len;
                double mean = 0, sq = 0;
                for (Index i = 0; i < g.row_len; ++i) mean += x[i];
                mean /= static_cast<double>(g.row_len);
                for (Index i = 0; i < g.row_len; ++i) sq += (x[i] - mean) * (x[i] - mean);
                const double inv = 1.0 / std::sqrt(sq / static_cast<double>(g.row_len) + 1e-30);
                for (Index i = 0; i < g.row_len; ++i) x[i] = static_cast<float>((x[i] - mean) * inv);
            }
    }
    /// history[step, :] = values, the stop rule per row (nn::stop_update), then *step += 1: a step's last op.
    void stop_and_advance(const float* values, Index rows, const nn::StopRule& rule, const nn::StopState& st,
                          float* step) const {
        const float t = *step;
        for (Index r = 0; r < rows; ++r) {
            st.history[static_cast<Index>(t) * rows + r] = values[r];
            nn::stop_update(rule, values[r], t, st.best[r], st.since[r], st.stopped_at[r], st.running[r]);
        }
        *step = t + 1.0f;
    }
    /// Host memory that copy_to_host_async may write into (pinned on CUDA).
    std::shared_ptr<float[]> host_buffer(Index n) const { return std::shared_ptr<float[]>(new float[static_cast<std::size_t>(std::max<Index>(n, 1))]); }
    /// Starts dst[0, n) = src[0, n) (dst from host_buffer); complete after wait_host_copies().
    void copy_to_host_async(const float* src, Index n, float* dst) const { copy(src, dst, n); }
    /// Waits for the copies started by copy_to_host_async (not for other work).
    void wait_host_copies() const {}
    /// dst[0, n) = src[0, n) from host memory (host_buffer's; on CUDA an asynchronous copy: src
    /// must stay unchanged until the next wait_host_copies()).
    void copy_to_device_async(const float* src, Index n, float* dst) const { copy(src, dst, n); }

    // ------------------------------------------------------------------ L-BFGS (invert/device_lbfgs.hpp)
    // Contracts shared with Cuda; the math is nn/lbfgs_ops.hpp's functors. Each row's sums run
    // in element order, as the host Lbfgs's dot products do.
    /// d = -H g by the two-loop recursion (<= max_pairs pairs) on the kLbfgsRun rows; out: g'd, g'g, max |g|, pairs.
    void lbfgs_direction(const nn::LbfgsVectors& v, const nn::LbfgsRows& w, Index max_pairs) const {
        nn::lbfgs_direction_passes(v, w, max_pairs, LbfgsRun{v.rows, v.len});
    }
    /// kLbfgsKeep: g_best = g_trial; kLbfgsReset: d = -g, history cleared; kLbfgsWrite: trial = x + step d, out moved.
    void lbfgs_trial(const nn::LbfgsVectors& v, const nn::LbfgsRows& w) const {
        LbfgsRun{v.rows, v.len}.reduce(nn::LbfgsTrial{{v, w}});
    }
    /// out slope = g_trial'd on the kLbfgsWrite rows.
    void lbfgs_slope(const nn::LbfgsVectors& v, const nn::LbfgsRows& w) const {
        LbfgsRun{v.rows, v.len}.reduce(nn::LbfgsSlope{{v, w}});
    }
    /// kLbfgsKeep first; kLbfgsAccept: x = x + step d, g = g_best, the pair stored if it has curvature; kLbfgsClear.
    void lbfgs_accept(const nn::LbfgsVectors& v, const nn::LbfgsRows& w) const {
        const LbfgsRun run{v.rows, v.len};
        run.reduce(nn::LbfgsAcceptDots{{v, w}});
        run.map(nn::LbfgsAcceptMove{{v, w}});
    }
    /// b.input[r, l, :] = point[r, b.offset : b.offset + b.len] for l < b.repeat, every block b.
    void scatter_row_blocks(const float* point, Index rows, Index width, std::span<const nn::RowBlock> blocks) const {
        for (const nn::RowBlock& b : blocks)
            for (Index r = 0; r < rows; ++r)
                for (Index l = 0; l < b.repeat; ++l)
                    std::memcpy(b.input + (r * b.repeat + l) * b.len, point + r * width + b.offset,
                                sizeof(float) * static_cast<std::size_t>(b.len));
    }
    /// grad[r, b.offset + j] = nn::row_block_grad(b, r, j) for every block b.
    void gather_row_blocks(std::span<const nn::RowBlock> blocks, Index rows, Index width, float* grad) const {
        for (const nn::RowBlock& b : blocks)
            for (Index r = 0; r < rows; ++r)
                for (Index j = 0; j < b.len; ++j) grad[r * width + b.offset + j] = nn::row_block_grad(b, r, j);
    }

    // ------------------------------------------------------------------ CMA-ES (invert/device_cma.hpp)
    // Contracts shared with Cuda; the math is nn/cma_ops.hpp's functors, the host CmaEs's code,
    // each row's elements in order: the device loop on Cpu follows the host CmaEs bit for bit.
    /// z, Y = B D z and the samples x = mean + sigma Y of the kCmaSample rows; kCmaFrozen rows: x = best.
    void cma_sample(const nn::CmaConstants& k, const nn::CmaVectors& v) const { nn::cma_sample_passes(k, v, CmaRun{v.rows}); }
    /// kCmaImprove: best = the command's sample; kCmaUpdate: mean, paths, covariance; kCmaSymmetrize: C = (C + C') / 2.
    void cma_update(const nn::CmaConstants& k, const nn::CmaVectors& v) const { nn::cma_update_passes(k, v, CmaRun{v.rows}); }
    /// out: max sqrt(C_jj), max diag, max 1 / diag of the kCmaUpdate rows.
    void cma_stats(const nn::CmaConstants& k, const nn::CmaVectors& v) const { nn::cma_stats_passes(k, v, CmaRun{v.rows}); }

private:
    /// The loops behind the L-BFGS functors: a map over each active row's elements, a reduction
    /// that sums each row's elements in order (rows in parallel, each row by one thread).
    struct LbfgsRun {
        Index rows, len;
        template <class M>
        void map(const M& m) const {
            for (Index r = 0; r < rows; ++r) {
                if (!m.active(r)) continue;
#pragma omp parallel for schedule(static) if (len > nn::kParallelMinWork)
                for (Index j = 0; j < len; ++j) m(r, j);
            }
        }
        template <class T>
        void reduce(const T& t) const {
#pragma omp parallel for schedule(static) if (rows > 1 && rows * len > nn::kParallelMinWork)
            for (Index r = 0; r < rows; ++r) {
                double acc[T::kSums] = {};
                if (t.active(r))
                    for (Index j = 0; j < len; ++j) t.add(acc, r, j);
                t.finish(r, acc);
            }
        }
    };
    /// The CMA-ES passes' loops: LbfgsRun's, with the length of each pass.
    struct CmaRun {
        Index rows;
        template <class M>
        void map(const M& m, Index len) const { LbfgsRun{rows, len}.map(m); }
        template <class T>
        void reduce(const T& t, Index len) const { LbfgsRun{rows, len}.reduce(t); }
    };
    static nn::LinearParams affine_linear(const nn::StyleAffine& l, Index w_dim) {
        nn::LinearParams p;
        p.in = w_dim, p.out = l.channels, p.weight_gain = l.weight_gain, p.bias_gain = l.bias_gain;
        return p;
    }
};

}  // namespace ganinv
