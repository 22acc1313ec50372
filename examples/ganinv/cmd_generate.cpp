// ganinv generate: images from seeds, z or ws files with a StyleGAN2 generator.
#include "common.hpp"

#include <ganinv/backend/cpu.hpp>
#include <ganinv/core/numpy_rng.hpp>
#include <ganinv/io/image.hpp>
#include <ganinv/io/image_ops.hpp>
#include <ganinv/models/stylegan2.hpp>

#include <cmath>
#include <cstdio>
#include <iostream>

namespace ganinv::cli {
namespace {

/// Accepts [N, num_ws, w_dim], [num_ws, w_dim] (one image) or [N, w_dim] (broadcast to all layers).
Tensor<float> ws_from_tensor(const Tensor<float>& t, Index num_ws, Index w_dim) {
    const Shape& s = t.shape();
    if (s.size() == 3 && s[1] == num_ws && s[2] == w_dim) return t;
    if (s.size() == 2 && s[0] == num_ws && s[1] == w_dim) return Tensor<float>({1, num_ws, w_dim}, std::vector<float>(t.values().begin(), t.values().end()));
    if ((s.size() == 2 && s[1] == w_dim) || (s.size() == 1 && s[0] == w_dim)) {
        const Index n = s.size() == 2 ? s[0] : 1;
        Tensor<float> ws({n, num_ws, w_dim});
        for (Index b = 0; b < n; ++b)
            for (Index l = 0; l < num_ws; ++l)
                for (Index i = 0; i < w_dim; ++i) ws[(b * num_ws + l) * w_dim + i] = t[b * w_dim + i];
        return ws;
    }
    throw ShapeError(concat("ws tensor has shape ", shape_to_string(s), "; this generator needs [N, ", num_ws, ", ",
                            w_dim, "], [", num_ws, ", ", w_dim, "] or [N, ", w_dim, "]"));
}

int run_generate(const Args& a) {
    const std::string model = a.require("model");
    const std::filesystem::path out_path = image_output_option(a, "out");
    (void)batch_option(a);
    if (a.has("grid-columns") && a.integer("grid-columns", 1) < 1) throw UsageError("--grid-columns must be >= 1");
    const int sources = static_cast<int>(a.has("seed")) + static_cast<int>(a.has("z")) + static_cast<int>(a.has("ws"));
    if (sources != 1) throw UsageError("give exactly one of --seed, --z, --ws");
    if (a.has("count") && !a.has("seed")) throw UsageError("--count goes with --seed");
    const float psi = static_cast<float>(a.number("truncation-psi", 1.0));
    if (!std::isfinite(psi)) throw UsageError("--truncation-psi must be finite");
    std::optional<Index> cutoff;
    if (a.has("truncation-cutoff")) {
        cutoff = a.integer("truncation-cutoff", 0);
        if (*cutoff < 0) throw UsageError("--truncation-cutoff must be >= 0");
    }
    NoiseMode mode;
    try {
        mode = parse_noise_mode(a.get("noise-mode").value_or("const"));
    } catch (const ValueError& e) {
        throw UsageError(e.what());
    }
    const auto noise_seed = static_cast<std::uint64_t>(a.integer("noise-seed", 0));

    StyleGAN2<Cpu> g = StyleGAN2<Cpu>::load(model);
    Tensor<float> ws;
    std::vector<std::string> tags;
    Tensor<float> z_used;
    if (a.has("seed")) {
        const long long seed0 = a.integer("seed", 0), count = a.integer("count", 1);
        if (seed0 < 0 || seed0 > 0xFFFFFFFFLL) throw UsageError("--seed must be in [0, 2^32)");
        if (count < 1 || count > 100000) throw UsageError("--count must be in [1, 100000]");
        z_used = Tensor<float>({count, g.z_dim()});
        for (long long k = 0; k < count; ++k) {
            // One RandomState per seed, as the official generate.py does: seed N gives the same z.
            NumpyRandomState rs(static_cast<std::uint32_t>(seed0 + k));
            rs.randn(std::span<float>(z_used.data() + k * g.z_dim(), static_cast<std::size_t>(g.z_dim())));
            tags.push_back("seed" + zero_pad(seed0 + k));
        }
    } else if (a.has("z")) {
        z_used = load_tensor_arg(*a.get("z"), "z");
        if (z_used.rank() == 1) z_used.reshape({1, z_used.numel()});
        GANINV_CHECK(z_used.rank() == 2 && z_used.dim(1) == g.z_dim(), ShapeError, "z tensor has shape ",
                     shape_to_string(z_used.shape()), "; this generator needs [N, ", g.z_dim(), "]");
        for (Index k = 0; k < z_used.dim(0); ++k) tags.push_back(zero_pad(k));
    }
    if (!a.has("ws")) {
        expect_finite(z_used.values(), "z");
        ws = g.mapping(z_used, {psi, cutoff});
    } else {
        ws = ws_from_tensor(load_tensor_arg(*a.get("ws"), "ws"), g.num_ws(), g.w_dim());
        expect_finite(ws.values(), "ws");
        if (psi != 1.0f) {  // truncation of given ws: lerp towards w_avg on the first layers
            const Tensor<float> avg = g.backend().download(g.param("mapping.w_avg"));
            g.backend().truncate(ws.data(), ws.dim(0), g.num_ws(), g.w_dim(), avg.data(), psi, cutoff.value_or(g.num_ws()));
        }
        for (Index k = 0; k < ws.dim(0); ++k) tags.push_back(zero_pad(k));
    }

    const Index n = ws.dim(0), batch = std::max<long long>(1, a.integer("batch", 8));
    GANINV_CHECK(n > 0, ShapeError, "no codes to generate from (ws has shape ", shape_to_string(ws.shape()), ")");
    Tensor<float> images({n, g.img_channels(), g.resolution(), g.resolution()});
    const Index per = g.num_ws() * g.w_dim(), img_per = images.numel() / n;
    for (Index b0 = 0; b0 < n; b0 += batch) {
        const Index nb = std::min(batch, n - b0);
        Tensor<float> chunk({nb, g.num_ws(), g.w_dim()});
        std::copy(ws.data() + b0 * per, ws.data() + (b0 + nb) * per, chunk.data());
        const Tensor<float> img = g.synthesis(chunk, {mode, noise_seed + static_cast<std::uint64_t>(b0)});
        std::copy(img.data(), img.data() + nb * img_per, images.data() + b0 * img_per);
    }

    ensure_parent_dir(out_path);
    const std::vector<Image> pictures = tensor_to_images(images);
    if (a.has("grid")) {
        const int cols = static_cast<int>(a.integer("grid-columns", static_cast<long long>(std::ceil(std::sqrt(static_cast<double>(n))))));
        save_image(out_path, make_grid(pictures, std::max(1, cols), 2, 0));
        std::cout << "wrote " << out_path.string() << " (grid of " << n << ")\n";
    } else {
        for (Index k = 0; k < n; ++k) {
            const auto p = numbered_path(out_path, tags[static_cast<std::size_t>(k)], static_cast<std::size_t>(n));
            save_image(p, pictures[static_cast<std::size_t>(k)]);
            std::cout << "wrote " << p.string() << "\n";
        }
    }
    if (a.has("out-tensor")) {
        const std::filesystem::path tp(*a.get("out-tensor"));
        ensure_parent_dir(tp);
        SafetensorsWriter w;
        w.add("img", images);
        w.add("ws", ws);
        if (z_used.numel() > 0) w.add("z", z_used);
        w.set_metadata("generator", model);
        w.set_metadata("truncation_psi", std::to_string(psi));
        w.set_metadata("noise_mode", a.get("noise-mode").value_or("const"));
        w.write(tp);
        std::cout << "wrote " << tp.string() << " (img, ws" << (z_used.numel() > 0 ? ", z" : "") << ")\n";
    }
    return 0;
}

const bool generate_registered = register_command(Command{
    "generate",
    "Generate images from seeds, z vectors or ws codes.",
    "--model M.safetensors (--seed N [--count K] | --z F.safetensors[:TENSOR] | --ws F.safetensors[:TENSOR])\n"
    "       [--truncation-psi P] [--truncation-cutoff C] [--noise-mode const|none|random] [--noise-seed S]\n"
    "       --out OUT.png|OUT.jpg|OUT.bmp [--out-tensor OUT.safetensors] [--grid [--grid-columns K]] [--batch B]",
    {
        {"model", "M.safetensors", "generator weights (safetensors with config metadata)"},
        {"seed", "N", "first seed: z = numpy RandomState(N).randn(z_dim), as the official scripts"},
        {"count", "K", "number of consecutive seeds (default 1)"},
        {"z", "F[:TENSOR]", "z vectors [N, z_dim] from a safetensors file (tensor 'z' by default)"},
        {"ws", "F[:TENSOR]", "codes [N, num_ws, w_dim] (or [N, w_dim]) from a file (tensor 'ws')"},
        {"truncation-psi", "P", "truncation towards w_avg (default 1 = none)"},
        {"truncation-cutoff", "C", "truncate only the first C layers (default all)"},
        {"noise-mode", "MODE", "const (default), none or random"},
        {"noise-seed", "S", "seed of random noise maps (default 0)"},
        {"out", "OUT.png", "output image, PNG, JPEG or BMP by its extension (.png, .jpg, .bmp); several images "
                           "get _seedNNNN / _NNNN suffixes"},
        {"out-tensor", "F.safetensors", "also write the raw float32 images ('img', NCHW, unclamped) and 'ws'"},
        {"grid", "", "write all images as one grid PNG"},
        {"grid-columns", "K", "columns of the grid (default sqrt(N))"},
        {"batch", "B", "images per generator call (default 8)"},
    },
    run_generate});

}  // namespace
}  // namespace ganinv::cli
