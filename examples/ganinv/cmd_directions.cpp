// ganinv directions: editing directions of a generator (SeFa from the weights, GANSpace from
// sampled w), saved as safetensors, with an optional labelled preview grid.
#include "common.hpp"

#include <ganinv/backend/cpu.hpp>
#include <ganinv/edit/directions.hpp>
#include <ganinv/edit/ganspace.hpp>
#include <ganinv/edit/sampling.hpp>
#include <ganinv/edit/sefa.hpp>
#include <ganinv/io/image.hpp>
#include <ganinv/io/plot.hpp>
#include <ganinv/models/stylegan2.hpp>

#include <cmath>
#include <cstdio>
#include <iostream>

namespace ganinv::cli {
namespace {

/// Copies `src` (gray or RGB) into the RGB canvas at (x, y), enlarged `s` times (nearest).
void paste(Image& canvas, const Image& src, int x, int y, int s) {
    for (int py = 0; py < src.height * s; ++py)
        for (int px = 0; px < src.width * s; ++px)
            for (int c = 0; c < 3; ++c)
                canvas.at(x + px, y + py, c) = src.at(px / s, py / s, src.channels == 1 ? 0 : c);
}

std::string alpha_label(double v) {
    char buf[32];
    if (std::fabs(v - std::round(v)) < 1e-9) std::snprintf(buf, sizeof buf, "%+d", static_cast<int>(std::lround(v)));
    else std::snprintf(buf, sizeof buf, "%+.1f", v);
    return v == 0 ? "0" : buf;
}

/// Rows = (component, seed) pairs, columns = steps from -range to +range standard deviations
/// along the component; the middle column is the unedited image.
Image preview_grid(StyleGAN2<Cpu>& g, const edit::Directions& d, const std::vector<std::uint32_t>& seeds, Index rows,
                   int steps, double range, int scale, const Truncation& trunc, const std::string& prefix) {
    const int cell = static_cast<int>(g.resolution()) * scale, gap = 2 * scale, font = std::max(1, scale / 2);
    const int label_w = text_width(prefix + std::to_string(rows - 1), font) + 3 * gap;
    const int header_h = 7 * font + 2 * gap;
    const int n_rows = static_cast<int>(rows) * static_cast<int>(seeds.size());
    Image canvas = make_image(label_w + steps * (cell + gap), header_h + n_rows * (cell + gap) + gap, 3, 255);
    const Rgb ink{0, 0, 0};
    for (int c = 0; c < steps; ++c) {
        const double alpha = steps == 1 ? 0.0 : -range + 2.0 * range * c / (steps - 1);
        const std::string t = alpha_label(alpha);
        draw_text(canvas, label_w + c * (cell + gap) + (cell - text_width(t, font)) / 2, gap, t, ink, font);
    }
    Tensor<float> base({static_cast<Index>(seeds.size()), g.num_ws(), g.w_dim()});
    for (std::size_t s = 0; s < seeds.size(); ++s) {
        const Tensor<float> ws = g.mapping(edit::z_from_seed(seeds[s], g.z_dim()), trunc);
        std::copy(ws.values().begin(), ws.values().end(), base.data() + static_cast<Index>(s) * ws.numel());
    }
    int r = 0;
    for (Index k = 0; k < rows; ++k) {
        // One batch per component: every seed at every step.
        Tensor<float> batch({static_cast<Index>(seeds.size()) * steps, g.num_ws(), g.w_dim()});
        for (int c = 0; c < steps; ++c) {
            const double alpha = steps == 1 ? 0.0 : -range + 2.0 * range * c / (steps - 1);
            const Tensor<float> moved = edit::apply_direction(base, d, k, static_cast<float>(alpha));
            for (std::size_t s = 0; s < seeds.size(); ++s) {
                const Index per = g.num_ws() * g.w_dim();
                std::copy(moved.data() + static_cast<Index>(s) * per, moved.data() + static_cast<Index>(s + 1) * per,
                          batch.data() + (static_cast<Index>(s) * steps + c) * per);
            }
        }
        const std::vector<Image> imgs = tensor_to_images(g.synthesis(batch));
        for (std::size_t s = 0; s < seeds.size(); ++s, ++r) {
            const int y = header_h + r * (cell + gap);
            if (s == 0) draw_text(canvas, gap, y + (cell - 7 * font) / 2, prefix + std::to_string(k), ink, font);
            for (int c = 0; c < steps; ++c)
                paste(canvas, imgs[s * static_cast<std::size_t>(steps) + static_cast<std::size_t>(c)],
                      label_w + c * (cell + gap), y, scale);
        }
    }
    return canvas;
}

/// The --preview options, checked before the directions are computed (and their file written).
struct PreviewArgs {
    std::filesystem::path path;
    std::vector<std::uint32_t> seeds;
    Index rows = 0;  ///< only when --preview-rows is given; its upper bound needs the directions
    int steps = 7, scale = 4;
    double range = 3.0;
};

std::optional<PreviewArgs> preview_args(const Args& a) {
    if (!a.has("preview")) return std::nullopt;
    PreviewArgs p;
    p.path = image_output_option(a, "preview");
    for (const std::string& s : a.all("preview-seed")) {
        try {
            const long long v = std::stoll(s);
            if (v < 0 || v > 0xFFFFFFFFLL) throw std::out_of_range("seed");
            p.seeds.push_back(static_cast<std::uint32_t>(v));
        } catch (const std::exception&) {
            throw UsageError("--preview-seed expects integers in [0, 2^32), got '" + s + "'");
        }
    }
    if (p.seeds.empty()) p.seeds.push_back(0);
    p.rows = a.integer("preview-rows", 1);
    if (p.rows < 1) throw UsageError("--preview-rows must be >= 1");
    const long long steps = a.integer("preview-steps", 7), scale = a.integer("scale", 4);
    p.range = a.number("preview-range", 3.0);
    if (steps < 1 || steps > 31) throw UsageError("--preview-steps must be in [1, 31]");
    if (scale < 1 || scale > 16) throw UsageError("--scale must be in [1, 16]");
    if (!(p.range > 0) || !std::isfinite(p.range)) throw UsageError("--preview-range must be positive");
    p.steps = static_cast<int>(steps);
    p.scale = static_cast<int>(scale);
    return p;
}

int run_directions(const Args& a) {
    const std::string model = a.require("model"), method = a.require("method"), out = a.require("out");
    if (method != "sefa" && method != "ganspace") throw UsageError("--method must be sefa or ganspace");
    edit::LayerRange layers;
    try {
        if (a.has("layers")) layers = edit::parse_layer_range(*a.get("layers"));
    } catch (const ValueError& e) {
        throw UsageError(e.what());
    }
    const long long count = a.integer("count", 20), samples = a.integer("samples", method == "sefa" ? 10000 : 100000);
    if (count < 1) throw UsageError("--count must be >= 1");
    if (samples < 2) throw UsageError("--samples must be >= 2");
    const auto seed = static_cast<std::uint64_t>(a.integer("seed", 0));
    const std::optional<PreviewArgs> preview = preview_args(a);
    const Truncation trunc{static_cast<float>(a.number("truncation-psi", 1.0)), std::nullopt};

    StyleGAN2<Cpu> g = StyleGAN2<Cpu>::load(model);
    layers = layers.resolved(g.num_ws(), "--layers");
    edit::Directions d;
    if (method == "sefa") {
        edit::SefaOptions o;
        o.layers = layers;
        o.count = count;
        try {
            o.torgb = edit::parse_sefa_torgb(a.get("torgb").value_or("skip"));
        } catch (const ValueError& e) {
            throw UsageError(e.what());
        }
        d = edit::sefa(g, o);
        // SeFa's directions are unit vectors; the spread of sampled w along them gives the
        // preview (and users) a step size that means the same on every direction.
        d.stddev = edit::direction_stddev(g, d.directions, samples, seed);
        d.info["stddev_samples"] = std::to_string(samples);
    } else {
        edit::GanSpaceOptions o;
        o.samples = samples;
        o.count = count;
        o.seed = seed;
        o.layers = layers;
        d = edit::ganspace(g, o);
    }
    d.info["generator"] = model;
    // The preview's row count is checked against the directions before their file is written.
    const Index rows = preview && a.has("preview-rows") ? preview->rows : std::min<Index>(5, d.count());
    if (preview && rows > d.count()) throw UsageError(concat("--preview-rows must be in [1, ", d.count(), "]"));
    const std::filesystem::path out_path(out);
    ensure_parent_dir(out_path);
    edit::save_directions(out_path, d);
    std::cout << "wrote " << out_path.string() << ": " << d.count() << " " << method << " directions in W, layers "
              << d.layers.str() << "\n";
    std::printf("  %-4s %12s %10s %10s\n", "k", method == "sefa" ? "eigenvalue" : "variance", "stddev",
                method == "sefa" ? "" : "explained");
    for (Index k = 0; k < std::min<Index>(d.count(), 10); ++k) {
        const auto j = static_cast<std::size_t>(k);
        std::printf("  %-4lld %12.5g %10.5g", static_cast<long long>(k), d.eigenvalues[j], d.stddev[j]);
        if (!d.explained_variance.empty()) std::printf(" %9.2f%%", 100.0 * d.explained_variance[j]);
        std::printf("\n");
    }

    if (preview) {
        const Image grid = preview_grid(g, d, preview->seeds, rows, preview->steps, preview->range, preview->scale,
                                        trunc, method == "sefa" ? "D" : "PC");
        ensure_parent_dir(preview->path);
        save_image(preview->path, g.img_channels() == 1 ? convert_channels(grid, 1) : grid);  // gray: a third of the bytes
        std::cout << "wrote " << preview->path.string() << " (rows: directions 0.." << rows - 1 << " x "
                  << preview->seeds.size() << " seed(s); columns: " << -preview->range << " .. +" << preview->range
                  << " stddev)\n";
    }
    return 0;
}

const bool directions_registered = register_command(Command{
    "directions",
    "Find editing directions in W (SeFa or GANSpace) and save them; optional preview grid.",
    "--model M.safetensors --method sefa|ganspace [--layers a:b] [--count K] --out D.safetensors\n"
    "       [--torgb skip|final|all] [--samples N] [--seed S]\n"
    "       [--preview P.png [--preview-seed N ...] [--preview-rows R] [--preview-steps S] [--preview-range A]\n"
    "        [--scale S] [--truncation-psi P]]",
    {
        {"model", "M.safetensors", "generator weights"},
        {"method", "NAME", "sefa (closed form, from the style-affine weights) or ganspace (PCA of sampled w)"},
        {"layers", "a:b", "w indices [a, b): the layers SeFa factorises and every edit applies to (default all)"},
        {"count", "K", "directions to keep (default 20)"},
        {"torgb", "POLICY", "sefa: skip (default), final (official 'all') or all ToRGB layers"},
        {"samples", "N", "sampled w: PCA (ganspace, default 100000) / stddev estimate (sefa, default 10000)"},
        {"seed", "S", "seed of the sampled z (default 0)"},
        {"out", "D.safetensors", "output: 'directions' [K, w_dim], 'stddev', 'eigenvalues', ... + metadata"},
        {"preview", "P.png", "write a grid (PNG, JPEG or BMP by extension): rows = top directions, columns = -A..+A stddev"},
        {"preview-seed", "N", "seed(s) of the previewed codes (default 0)", true},
        {"preview-rows", "R", "directions shown (default min(5, K))"},
        {"preview-steps", "S", "columns (default 7)"},
        {"preview-range", "A", "largest |alpha| in stddev (default 3)"},
        {"scale", "S", "enlarge the preview images S times (default 4)"},
        {"truncation-psi", "P", "truncation of the previewed codes (default 1 = none)"},
    },
    run_directions});

}  // namespace
}  // namespace ganinv::cli
