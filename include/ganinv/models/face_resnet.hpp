/// @file face_resnet.hpp
/// @brief The dlib face-recognition ResNet as `@vladmandic/face-api` runs it (tools/README_face_api.md
///        is the layer-by-layer spec), on the CPU: 150x150 RGB (0..255) -> 128-d descriptor,
///        forward and backward w.r.t. the input.
///
/// Weights: tools/convert_face_api.mjs output. Quantised tensors are U8 codes q with F64 scalars
/// `<name>.__scale`, `<name>.__min`, dequantised exactly as tfjs does: float32(q * scale + min)
/// in double. Filters are HWIO in the file and OIHW here; each conv's bias and the following
/// per-channel affine ("scale layer") are folded into the conv: W' = W s, b' = b s + t.
#pragma once

#include "ganinv/core/error.hpp"
#include "ganinv/core/tensor.hpp"
#include "ganinv/io/safetensors.hpp"
#include "ganinv/nn/conv2d.hpp"
#include "ganinv/nn/pooling.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace ganinv {

namespace detail {

/// Reads the F64 scalar `name` of a safetensors file without rounding it to float (the reader
/// converts everything to float; the dequantisation scalars need all 53 bits).
inline double read_f64_scalar(const SafetensorsFile& f, const std::string& name) {
    const SafetensorsEntry& e = f.entry(name);
    if (e.dtype != "F64") return static_cast<double>(f.load(name, {})[0]);
    GANINV_CHECK(e.end - e.begin == 8, FormatError, "'", f.path().string(), "': '", name, "' is not a scalar");
    std::ifstream in(f.path(), std::ios::binary);
    unsigned char b[8];
    in.read(reinterpret_cast<char*>(b), 8);
    const std::uint64_t header = detail::read_le_u64(b);
    in.seekg(static_cast<std::streamoff>(8 + header + e.begin));
    in.read(reinterpret_cast<char*>(b), 8);
    GANINV_CHECK(in.good(), IoError, "'", f.path().string(), "': cannot read '", name, "'");
    return std::bit_cast<double>(detail::read_le_u64(b));
}

}  // namespace detail

class FaceResNet {
public:
    static constexpr Index kInput = 150, kDescriptor = 128;
    static constexpr std::array<float, 3> kMean{122.782f, 117.001f, 104.298f};

    struct Conv {
        Tensor<float> weight, bias;  ///< OIHW, folded with the scale layer
        nn::Conv2dShape shape(Index n, Index h, Index w) const {
            const Index k = weight.dim(2);
            return {n, weight.dim(1), weight.dim(0), h, w, k, k, stride, pad, pad};
        }
        Index stride = 1, pad = 1;
    };
    struct Block {
        std::string name;
        bool down = false;
        Conv conv1, conv2;
    };
    /// What backward needs: ReLU outputs (masks) and max-pool winners.
    struct Cache {
        Index batch = 0;
        Tensor<float> stem;                    ///< ReLU(conv32_down) [N, 32, 72, 72]
        std::vector<std::int32_t> pool_argmax; ///< the 3x3/2 max pool
        struct BlockState {
            Shape in_shape;
            Tensor<float> t1;   ///< ReLU(conv1)
            Tensor<float> out;  ///< block output (after the final ReLU)
        };
        std::vector<BlockState> blocks;
    };

    /// Loads tools/convert_face_api.mjs output (quantised or --float32).
    static FaceResNet load(const std::filesystem::path& path) {
        const SafetensorsFile f(path);
        GANINV_CHECK(f.contains("conv32_down/conv/filters"), FormatError, "'", path.string(),
                     "' is not a face-api face-recognition weights file: it has no tensor 'conv32_down/conv/filters' "
                     "(it holds ", f.entries().size(), " tensors, e.g. '", f.entries().empty() ? "" : f.entries()[0].name,
                     "'); convert the package's model with tools/convert_face_api.mjs");
        FaceResNet net;
        net.stem_ = load_conv(f, "conv32_down", 3, 32, 7, 2, 0);
        const auto add = [&](const std::string& name, Index in, Index out, bool down) {
            Block b{name, down, load_conv(f, name + "/conv1", in, out, 3, down ? 2 : 1, down ? 0 : 1),
                    load_conv(f, name + "/conv2", out, out, 3, 1, 1)};
            net.blocks_.push_back(std::move(b));
        };
        for (const char* n : {"conv32_1", "conv32_2", "conv32_3"}) add(n, 32, 32, false);
        add("conv64_down", 32, 64, true);
        for (const char* n : {"conv64_1", "conv64_2", "conv64_3"}) add(n, 64, 64, false);
        add("conv128_down", 64, 128, true);
        for (const char* n : {"conv128_1", "conv128_2"}) add(n, 128, 128, false);
        add("conv256_down", 128, 256, true);
        for (const char* n : {"conv256_1", "conv256_2"}) add(n, 256, 256, false);
        add("conv256_down_out", 256, 256, true);
        net.fc_ = load_dequantised(f, "fc", {256, kDescriptor});
        return net;
    }

    /// The layers, for the CUDA twin (models/face_resnet_cuda.cuh), which runs the same list.
    const Conv& stem() const { return stem_; }
    const std::vector<Block>& blocks() const { return blocks_; }
    const Tensor<float>& fc() const { return fc_; }

    /// Throws unless a down block's Ho x Wo branch fits its Hs x Ws shortcut (equal, or one
    /// smaller: zero-padded at the bottom and right).
    static void check_down_fit(const std::string& name, Index Ho, Index Wo, Index Hs, Index Ws) {
        GANINV_CHECK((Hs == Ho || Hs == Ho + 1) && (Ws == Wo || Ws == Wo + 1), ShapeError, "FaceResNet ", name,
                     ": branch ", Ho, "x", Wo, " does not fit the shortcut ", Hs, "x", Ws);
    }

    /// Double-precision convolutions (nn::Conv2dShape::precise), for gradient checks.
    void set_reference_precision(bool on) { precise_ = on; }

    /// rgb [N, 3, 150, 150], values 0..255 (float), RGB order -> descriptors [N, 128]. The
    /// descriptors are not L2-normalised (as face-api returns them).
    Tensor<float> forward(const Tensor<float>& rgb, Cache* cache = nullptr) const {
        GANINV_CHECK(!blocks_.empty(), ValueError, "FaceResNet: no weights loaded");
        GANINV_CHECK(rgb.rank() == 4 && rgb.dim(1) == 3 && rgb.dim(2) == kInput && rgb.dim(3) == kInput, ShapeError,
                     "FaceResNet: input must be [N, 3, 150, 150] RGB 0..255, got ", shape_to_string(rgb.shape()));
        const Index N = rgb.dim(0), plane = kInput * kInput;
        Tensor<float> x(rgb.shape());
        for (Index n = 0; n < N; ++n)
            for (Index c = 0; c < 3; ++c)
                for (Index i = 0; i < plane; ++i) {
                    const Index k = (n * 3 + c) * plane + i;
                    x[k] = (rgb[k] - kMean[static_cast<std::size_t>(c)]) / 255.0f;  // face-api: subtract, then divide
                }
        Cache local;
        Cache& cc = cache ? *cache : local;
        cc = Cache{};
        cc.batch = N;
        Tensor<float> h = conv(stem_, x);
        nn::relu_forward(h.data(), h.numel());
        const nn::Pool2dShape ps{N * 32, h.dim(2), h.dim(3), 3, 2};
        Tensor<float> p({N, 32, ps.out_h(), ps.out_w()});
        cc.pool_argmax.resize(static_cast<std::size_t>(p.numel()));
        nn::max_pool2d_forward(h.data(), ps, p.data(), cc.pool_argmax.data());
        cc.stem = std::move(h);
        h = std::move(p);
        for (const Block& b : blocks_) {
            Cache::BlockState st;
            h = block_forward(b, h, st);
            cc.blocks.push_back(std::move(st));
        }
        // global average over the final 2x2 map, then y = feat @ fc (no bias, no normalisation)
        const Index C = h.dim(1), P = h.dim(2) * h.dim(3);
        Tensor<float> y({N, kDescriptor});
        for (Index n = 0; n < N; ++n) {
            std::vector<float> feat(static_cast<std::size_t>(C));
            for (Index c = 0; c < C; ++c) {
                float acc = 0.0f;
                for (Index i = 0; i < P; ++i) acc += h[(n * C + c) * P + i];
                feat[static_cast<std::size_t>(c)] = acc / static_cast<float>(P);
            }
            for (Index k = 0; k < kDescriptor; ++k) {
                double acc = 0.0;
                for (Index c = 0; c < C; ++c) acc += static_cast<double>(feat[static_cast<std::size_t>(c)]) * fc_[c * kDescriptor + k];
                y[n * kDescriptor + k] = static_cast<float>(acc);
            }
        }
        if (!cache) cc = Cache{};
        return y;
    }

    /// dL/drgb [N, 3, 150, 150] (per 0..255 unit) from dL/ddescriptor [N, 128].
    Tensor<float> backward(const Cache& cc, const Tensor<float>& grad_desc) const {
        GANINV_CHECK(cc.batch > 0 && cc.blocks.size() == blocks_.size(), ValueError,
                     "FaceResNet::backward needs the cache filled by forward(rgb, &cache)");
        expect_shape(grad_desc, {cc.batch, kDescriptor}, "FaceResNet::backward: descriptor gradient");
        const Index N = cc.batch;
        const Tensor<float>& last = cc.blocks.back().out;
        const Index C = last.dim(1), P = last.dim(2) * last.dim(3);
        Tensor<float> g(last.shape());
        for (Index n = 0; n < N; ++n)
            for (Index c = 0; c < C; ++c) {
                double acc = 0.0;
                for (Index k = 0; k < kDescriptor; ++k) acc += static_cast<double>(grad_desc[n * kDescriptor + k]) * fc_[c * kDescriptor + k];
                for (Index i = 0; i < P; ++i) g[(n * C + c) * P + i] = static_cast<float>(acc / static_cast<double>(P));
            }
        for (std::size_t i = blocks_.size(); i-- > 0;) g = block_backward(blocks_[i], cc.blocks[i], std::move(g));
        const nn::Pool2dShape ps{N * 32, cc.stem.dim(2), cc.stem.dim(3), 3, 2};
        Tensor<float> gs(cc.stem.shape());
        nn::max_pool2d_backward(g.data(), cc.pool_argmax.data(), ps, gs.data());
        nn::relu_backward(cc.stem.data(), gs.data(), gs.numel());
        Tensor<float> gx = conv_backward(stem_, gs, {N, 3, kInput, kInput});
        for (float& v : gx.values()) v /= 255.0f;
        return gx;
    }

    /// One weight tensor as stored (HWIO filters etc.), dequantised when quantised.
    static Tensor<float> load_dequantised(const SafetensorsFile& f, const std::string& name, const Shape& shape) {
        Tensor<float> t = f.load(name, shape);
        if (!f.contains(name + ".__scale")) return t;
        const double scale = detail::read_f64_scalar(f, name + ".__scale");
        const double min = detail::read_f64_scalar(f, name + ".__min");
        for (float& v : t.values()) {
            // The product must be rounded to double before the addition, as in JavaScript: a
            // compiler allowed to contract q * scale + min into one FMA (GCC does by default
            // with -march=native) changes ~20 % of the values by an ulp.
            volatile double product = static_cast<double>(v) * scale;
            v = static_cast<float>(product + min);
        }
        return t;
    }

private:
    static Conv load_conv(const SafetensorsFile& f, const std::string& p, Index in, Index out, Index k, Index stride,
                          Index pad) {
        const Tensor<float> hwio = load_dequantised(f, p + "/conv/filters", {k, k, in, out});
        const Tensor<float> b = load_dequantised(f, p + "/conv/bias", {out});
        const Tensor<float> s = load_dequantised(f, p + "/scale/weights", {out});
        const Tensor<float> t = load_dequantised(f, p + "/scale/biases", {out});
        Conv c;
        c.stride = stride;
        c.pad = pad;
        c.weight = Tensor<float>({out, in, k, k});
        c.bias = Tensor<float>({out});
        for (Index o = 0; o < out; ++o) {
            for (Index i = 0; i < in; ++i)
                for (Index y = 0; y < k; ++y)
                    for (Index x = 0; x < k; ++x) c.weight[((o * in + i) * k + y) * k + x] = hwio[((y * k + x) * in + i) * out + o] * s[o];
            c.bias[o] = b[o] * s[o] + t[o];
        }
        return c;
    }

    Tensor<float> conv(const Conv& c, const Tensor<float>& x) const {
        nn::Conv2dShape s = c.shape(x.dim(0), x.dim(2), x.dim(3));
        s.precise = precise_;
        Tensor<float> y({s.batch, s.out_channels, s.out_h(), s.out_w()});
        nn::conv2d_forward(x.data(), c.weight.data(), c.bias.data(), s, y.data());
        return y;
    }
    Tensor<float> conv_backward(const Conv& c, const Tensor<float>& g, const Shape& in) const {
        nn::Conv2dShape s = c.shape(in[0], in[2], in[3]);
        s.precise = precise_;
        Tensor<float> gx(in);
        nn::conv2d_backward(nullptr, c.weight.data(), g.data(), s, gx.data(), nullptr, nullptr);
        return gx;
    }

    /// residual: relu(conv2(relu(conv1(x))) + x); residual_down: the branch is strided and
    /// 'valid', the shortcut a 2x2/2 average pool whose extra channels are zero, and a branch one
    /// pixel smaller than the shortcut is zero-padded at the bottom and right.
    Tensor<float> block_forward(const Block& b, const Tensor<float>& x, Cache::BlockState& st) const {
        st.in_shape = x.shape();
        Tensor<float> t1 = conv(b.conv1, x);
        nn::relu_forward(t1.data(), t1.numel());
        const Tensor<float> t2 = conv(b.conv2, t1);
        Tensor<float> out;
        if (!b.down) {
            out = t2;
            for (Index i = 0; i < out.numel(); ++i) out[i] += x[i];
        } else {
            const Index N = x.dim(0), C = x.dim(1), O = t2.dim(1), Ho = t2.dim(2), Wo = t2.dim(3);
            const nn::Pool2dShape ps{N * C, x.dim(2), x.dim(3), 2, 2};
            const Index Hs = ps.out_h(), Ws = ps.out_w();
            check_down_fit(b.name, Ho, Wo, Hs, Ws);
            Tensor<float> pooled({N, C, Hs, Ws});
            nn::avg_pool2d_forward(x.data(), ps, pooled.data());
            out = Tensor<float>({N, O, Hs, Ws}, 0.0f);
            for (Index n = 0; n < N; ++n) {
                for (Index c = 0; c < C; ++c)
                    std::copy_n(pooled.data() + (n * C + c) * Hs * Ws, Hs * Ws, out.data() + (n * O + c) * Hs * Ws);
                for (Index o = 0; o < O; ++o)
                    for (Index i = 0; i < Ho; ++i)
                        for (Index j = 0; j < Wo; ++j) out[((n * O + o) * Hs + i) * Ws + j] += t2[((n * O + o) * Ho + i) * Wo + j];
            }
        }
        nn::relu_forward(out.data(), out.numel());
        st.t1 = std::move(t1);
        st.out = out;
        return out;
    }

    Tensor<float> block_backward(const Block& b, const Cache::BlockState& st, Tensor<float> g) const {
        nn::relu_backward(st.out.data(), g.data(), g.numel());
        const Shape& in = st.in_shape;
        Tensor<float> g_t2, g_skip;
        if (!b.down) {
            g_t2 = g;
            g_skip = std::move(g);
        } else {
            const Index N = in[0], C = in[1], O = st.t1.dim(1), Ho = st.t1.dim(2), Wo = st.t1.dim(3);
            const Index Hs = g.dim(2), Ws = g.dim(3);
            g_t2 = Tensor<float>({N, O, Ho, Wo});
            Tensor<float> g_pool({N, C, Hs, Ws});
            for (Index n = 0; n < N; ++n) {
                for (Index o = 0; o < O; ++o)
                    for (Index i = 0; i < Ho; ++i)
                        for (Index j = 0; j < Wo; ++j) g_t2[((n * O + o) * Ho + i) * Wo + j] = g[((n * O + o) * Hs + i) * Ws + j];
                for (Index c = 0; c < C; ++c)
                    std::copy_n(g.data() + (n * O + c) * Hs * Ws, Hs * Ws, g_pool.data() + (n * C + c) * Hs * Ws);
            }
            g_skip = Tensor<float>(in);
            nn::avg_pool2d_backward(g_pool.data(), nn::Pool2dShape{N * C, in[2], in[3], 2, 2}, g_skip.data());
        }
        Tensor<float> g_t1 = conv_backward(b.conv2, g_t2, st.t1.shape());
        nn::relu_backward(st.t1.data(), g_t1.data(), g_t1.numel());
        Tensor<float> gx = conv_backward(b.conv1, g_t1, in);
        for (Index i = 0; i < gx.numel(); ++i) gx[i] += g_skip[i];
        return gx;
    }

    Conv stem_;
    std::vector<Block> blocks_;
    Tensor<float> fc_;  ///< [256, 128]: y = feat @ fc
    bool precise_ = false;
};

}  // namespace ganinv
