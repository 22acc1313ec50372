// ganinv edit: edits of one latent code (a seed, or the code `ganinv invert` wrote): moves along
// SeFa / GANSpace / saved W directions, single StyleSpace channels, and style mixing. Writes a
// labelled grid (rows = edits, columns = alphas), the edited codes and an optional static report.
//
// Every edit is applied as a change of the styles: an S-space code (tensor `styles`) keeps its
// own styles and receives styles(ws') - styles(ws), which for a W edit is exact because the styles
// are affine in w; a W/W+ code gets exactly styles(ws').
#include "html_report.hpp"
#include "invert_support.hpp"

#include <ganinv/edit/directions.hpp>
#include <ganinv/edit/ganspace.hpp>
#include <ganinv/edit/sampling.hpp>
#include <ganinv/edit/sefa.hpp>
#include <ganinv/edit/stylespace.hpp>

#include <iostream>
#include <sstream>

namespace ganinv::cli {
namespace {

struct Code {
    Tensor<float> ws;      ///< [1, num_ws, w_dim]
    Tensor<float> styles;  ///< [1, style_dim]
    std::string label;
};

Code load_code(StyleGAN2<Cpu>& g, const std::string& spec, const std::string& option) {
    Code c;
    if (spec.rfind("seed:", 0) == 0 || spec.find_first_not_of("0123456789") == std::string::npos) {
        const std::string num = spec.rfind("seed:", 0) == 0 ? spec.substr(5) : spec;
        long long v = -1;
        try {
            v = std::stoll(num);
        } catch (const std::exception&) {
        }
        if (v < 0 || v > 0xFFFFFFFFLL) throw UsageError("--" + option + ": seed must be in [0, 2^32), got '" + num + "'");
        c.ws = g.mapping(edit::z_from_seed(static_cast<std::uint32_t>(v), g.z_dim()));
        c.styles = g.styles(c.ws);
        c.label = "seed " + num;
        return c;
    }
    const SafetensorsFile f(spec);
    if (!f.contains("ws")) {
        std::string names;
        for (const auto& e : f.entries()) names += (names.empty() ? "" : ", ") + e.name;
        throw FormatError("--" + option + " '" + spec + "' has no tensor 'ws' (it holds: " + names +
                          "); give a code written by ganinv invert or restore, or 'generate --out-tensor'");
    }
    const Tensor<float> ws = load_nonempty(f, "ws");
    const Index L = g.num_ws(), D = g.w_dim();
    const Shape& s = ws.shape();
    if (!((s.size() == 3 && s[1] == L && s[2] == D) || (s.size() == 2 && s[0] == L && s[1] == D)))
        throw ShapeError(concat("--", option, " '", spec, "': ws has shape ", shape_to_string(s), " but this generator's codes are [1, ",
                                L, ", ", D, "]"));
    if (s.size() == 3 && s[0] > 1) std::cerr << "warning: " << spec << " holds " << s[0] << " codes; editing the first\n";
    c.ws = Tensor<float>({1, L, D});
    std::copy(ws.data(), ws.data() + L * D, c.ws.data());
    if (f.contains("styles")) {
        const Tensor<float> st = load_nonempty(f, "styles");
        if (st.numel() < g.style_dim() || st.numel() % g.style_dim() != 0)
            throw ShapeError(concat("--", option, " '", spec, "': styles has shape ", shape_to_string(st.shape()),
                                    " but this generator's style_dim is ", g.style_dim()));
        c.styles = Tensor<float>({1, g.style_dim()});
        std::copy(st.data(), st.data() + g.style_dim(), c.styles.data());
    } else {
        c.styles = g.styles(c.ws);
    }
    c.label = std::filesystem::path(spec).filename().string();
    return c;
}

/// One row of the grid: its label and how it turns alpha into edited styles (and ws).
struct Row {
    std::string label;
    std::function<std::pair<Tensor<float>, Tensor<float>>(float)> apply;  ///< alpha -> {ws, styles}
};

std::vector<float> parse_alphas(const std::string& s) {
    std::vector<float> out;
    std::size_t start = 0;
    while (start <= s.size()) {
        const std::size_t comma = s.find(',', start);
        const std::string item = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        start = comma == std::string::npos ? s.size() + 1 : comma + 1;
        try {
            std::size_t used = 0;
            const double v = std::stod(item, &used);
            if (used != item.size() || !std::isfinite(v)) throw std::invalid_argument("bad");
            out.push_back(static_cast<float>(v));
        } catch (const std::exception&) {
            throw UsageError("--alphas expects a comma list of numbers (e.g. -3,-1.5,0,1.5,3), got '" + s + "'");
        }
    }
    if (out.size() > 15) throw UsageError("--alphas: at most 15 values");
    return out;
}

/// "K" or "A-B" (inclusive) -> indices.
std::vector<Index> parse_indices(const std::string& s, const std::string& spec) {
    const auto dash = s.find('-');
    try {
        std::size_t u1 = 0, u2 = 0;
        const long long a = std::stoll(s.substr(0, dash), &u1);
        const long long b = dash == std::string::npos ? a : std::stoll(s.substr(dash + 1), &u2);
        if (u1 != (dash == std::string::npos ? s.size() : dash) || (dash != std::string::npos && u2 != s.size() - dash - 1) ||
            a < 0 || b < a || b - a > 31)
            throw std::invalid_argument("range");
        std::vector<Index> out;
        for (long long k = a; k <= b; ++k) out.push_back(k);
        return out;
    } catch (const std::exception&) {
        throw UsageError("--direction '" + spec + "': expected an index K or a range A-B (at most 32 directions)");
    }
}

int run_edit(const Args& a) {
    const std::string model = a.require("model"), out_dir = output_dir_option(a);
    if (a.has("code") == a.has("seed")) throw UsageError("give exactly one of --code C.safetensors and --seed N");
    if (a.has("mix-layers") && !a.has("mix")) throw UsageError("--mix-layers needs --mix CODE");
    if (a.has("target") && !a.has("report")) throw UsageError("--target is shown in the report: give --report too");
    const std::vector<float> alphas = parse_alphas(a.get("alphas").value_or("-3,-1.5,0,1.5,3"));
    const long long samples = a.integer("samples", 10000), scale = a.integer("scale", 0);
    if (samples < 2) throw UsageError("--samples must be >= 2");
    const auto seed = static_cast<std::uint64_t>(a.integer("stats-seed", 0));

    StyleGAN2<Cpu> g = StyleGAN2<Cpu>::load(model);
    std::optional<edit::LayerRange> layers;
    try {
        if (a.has("layers")) layers = edit::parse_layer_range(*a.get("layers")).resolved(g.num_ws(), "--layers");
    } catch (const ValueError& e) {
        throw UsageError(e.what());
    }
    const Code base = load_code(g, a.has("code") ? *a.get("code") : "seed:" + *a.get("seed"), a.has("code") ? "code" : "seed");
    const Tensor<float> base_own = g.styles(base.ws);  // styles(ws); the edits add styles(ws') - this

    auto w_row = [&](const std::string& label, std::vector<float> dir, float sigma, edit::LayerRange range) {
        return Row{label, [&, dir, sigma, range](float alpha) {
                       const Tensor<float> ws = edit::apply_direction(base.ws, dir, alpha * sigma, range);
                       Tensor<float> st = base.styles;
                       const Tensor<float> moved = g.styles(ws);
                       for (Index i = 0; i < st.numel(); ++i) st[i] += moved[i] - base_own[i];
                       return std::make_pair(ws, st);
                   }};
    };
    std::vector<Row> rows;
    std::map<std::string, edit::Directions> computed;  // sefa / ganspace, computed once
    for (const std::string& spec : a.all("direction")) {
        const auto colon = spec.rfind(':');
        const std::string head = spec.substr(0, colon);
        edit::Directions d;
        std::vector<Index> ks;
        if (head == "sefa" || head == "ganspace") {
            if (colon == std::string::npos) throw UsageError("--direction " + head + " needs an index: " + head + ":K");
            ks = parse_indices(spec.substr(colon + 1), spec);
            const Index need = ks.back() + 1;
            if (need > g.w_dim()) throw UsageError(concat("--direction ", spec, ": index ", ks.back(), " outside [0, ", g.w_dim(), ")"));
            auto it = computed.find(head);
            if (it == computed.end() || it->second.count() < need) {
                if (head == "sefa") {
                    edit::SefaOptions o;
                    o.layers = layers.value_or(edit::LayerRange::all());
                    o.count = std::min<Index>(g.w_dim(), std::max<Index>(need, 10));
                    d = edit::sefa(g, o);
                    d.stddev = edit::direction_stddev(g, d.directions, samples, seed);
                } else {
                    edit::GanSpaceOptions o;
                    o.samples = samples;
                    o.count = std::min<Index>(g.w_dim(), std::max<Index>(need, 10));
                    o.seed = seed;
                    o.layers = layers.value_or(edit::LayerRange::all());
                    d = edit::ganspace(g, o);
                }
                computed[head] = d;
            }
            d = computed[head];
        } else {
            const bool indexed = colon != std::string::npos && spec.find(".safetensors:") != std::string::npos;
            const std::string file = indexed ? head : spec;
            d = edit::load_directions(file);
            if (d.space != edit::EditSpace::w && d.space != edit::EditSpace::wplus)
                throw UsageError("--direction '" + file + "' holds directions of space '" + edit::to_string(d.space) +
                                 "'; only W directions can be applied (StyleSpace channels: --stylespace)");
            if (d.dim() != g.w_dim())
                throw UsageError(concat("--direction '", file, "' holds directions of dimension ", d.dim(), " but this generator's w_dim is ",
                                        g.w_dim(), " (made for another generator?)"));
            ks = indexed ? parse_indices(spec.substr(colon + 1), spec) : std::vector<Index>{0};
            if (!indexed) for (Index k = 1; k < std::min<Index>(d.count(), 5); ++k) ks.push_back(k);
            if (ks.back() >= d.count())
                throw UsageError(concat("--direction ", spec, ": index ", ks.back(), " outside the file's ", d.count(), " directions"));
            if (layers) d.layers = *layers;
            try {
                d.layers = d.layers.resolved(g.num_ws(), concat("--direction '", file, "' layers"));
            } catch (const ValueError& e) {
                throw UsageError(e.what());
            }
        }
        const std::string name = head == "sefa" || head == "ganspace" ? head : std::filesystem::path(head).stem().string();
        for (Index k : ks) {
            const auto row = d.row(k);
            rows.push_back(w_row(concat(name, ":", k), std::vector<float>(row.begin(), row.end()), d.sigma(k), d.layers));
        }
    }
    std::optional<edit::StyleStats> stats;
    for (const std::string& spec : a.all("stylespace")) {
        const auto colon = spec.rfind(':');
        if (colon == std::string::npos || colon + 1 == spec.size())
            throw UsageError("--stylespace expects LAYER:CHANNEL (e.g. b8.conv1:12), got '" + spec + "'");
        const std::string layer = spec.substr(0, colon), ch = spec.substr(colon + 1);
        Index channel = -1, index = -1;
        try {
            std::size_t used = 0;
            channel = std::stoll(ch, &used);
            if (used != ch.size()) throw std::invalid_argument("trailing");
        } catch (const std::exception&) {
            throw UsageError("--stylespace '" + spec + "': the channel must be an integer");
        }
        try {
            index = edit::style_channel_index(g.plan(), layer, channel);
        } catch (const ValueError& e) {
            throw UsageError(concat("--stylespace '", spec, "': ", e.what()));
        }
        if (!stats) stats = edit::style_statistics(g, samples, seed);
        rows.push_back(Row{"S " + spec, [&, index](float alpha) {
                               return std::make_pair(base.ws, edit::edit_style_channel(base.styles, index, alpha, *stats));
                           }});
    }
    if (rows.empty() && !a.has("mix"))
        throw UsageError("nothing to do: give --direction, --stylespace and/or --mix");
    // Every input is read before the first file is written: a bad --mix or --target leaves no
    // half-filled DIR behind.
    edit::LayerRange mix_layers;
    std::optional<Code> other;
    if (a.has("mix")) {
        try {
            mix_layers = edit::parse_layer_range(a.get("mix-layers").value_or(concat(g.num_ws() / 2, ":")))
                             .resolved(g.num_ws(), "--mix-layers");
        } catch (const ValueError& e) {
            throw UsageError(e.what());
        }
        other = load_code(g, *a.get("mix"), "mix");
    }
    std::optional<TargetSet> target;
    if (a.has("target")) {
        target = load_targets({std::filesystem::path(*a.get("target"))}, g, true, a.max_pixels());
        if (!target->failures.empty()) throw IoError(target->failures.front());
    }

    const std::filesystem::path d(out_dir);
    std::filesystem::create_directories(d);
    const Index R = g.resolution(), A = static_cast<Index>(alphas.size());
    const int zoom = scale > 0 ? static_cast<int>(scale) : std::max<int>(1, 96 / static_cast<int>(R));
    const Tensor<float> recon = g.synthesis_from_styles(base.styles);
    save_png(d / "base.png", tensor_to_image(recon));

    // Every row at every alpha: one synthesis batch per row; codes collected for edits.safetensors.
    std::vector<std::vector<Image>> cells;
    std::vector<std::vector<double>> change;  ///< PSNR of each edit vs the unedited image
    Tensor<float> all_ws({static_cast<Index>(rows.size()), A, g.num_ws(), g.w_dim()});
    Tensor<float> all_styles({static_cast<Index>(rows.size()), A, g.style_dim()});
    for (std::size_t r = 0; r < rows.size(); ++r) {
        Tensor<float> batch({A, g.style_dim()});
        for (Index j = 0; j < A; ++j) {
            const auto [ws, st] = rows[r].apply(alphas[static_cast<std::size_t>(j)]);
            std::copy(st.data(), st.data() + g.style_dim(), batch.data() + j * g.style_dim());
            std::copy(st.data(), st.data() + g.style_dim(), all_styles.data() + (static_cast<Index>(r) * A + j) * g.style_dim());
            std::copy(ws.data(), ws.data() + ws.numel(), all_ws.data() + (static_cast<Index>(r) * A + j) * ws.numel());
        }
        Tensor<float> imgs = g.synthesis_from_styles(batch);
        // An edit that leaves the styles as they are (alpha 0) is the unedited image itself: drawn
        // again inside a batch of another size it would differ in the last float bits (batched
        // convolutions add in another order), and the change table would say ~144 dB, not inf.
        const Index img_size = recon.numel(), style_dim = g.style_dim();
        for (Index j = 0; j < A; ++j)
            if (std::equal(batch.data() + j * style_dim, batch.data() + (j + 1) * style_dim, base.styles.data()))
                std::copy(recon.data(), recon.data() + img_size, imgs.data() + j * img_size);
        cells.push_back(tensor_to_images(imgs));
        std::vector<double> ch;
        for (Index j = 0; j < A; ++j) {
            Tensor<float> one = slice_batch(imgs, j, 1);
            for (float& v : one.values()) v = std::fmin(1.0f, std::fmax(-1.0f, v));
            Tensor<float> ref = recon;
            for (float& v : ref.values()) v = std::fmin(1.0f, std::fmax(-1.0f, v));
            ch.push_back(metrics::psnr_from_mse(metrics::mse(one, ref)[0], metrics::DataRange::signed_unit()));
        }
        change.push_back(ch);
    }
    std::vector<std::string> alpha_labels;
    for (float v : alphas) alpha_labels.push_back(html::fixed(v, std::fabs(v - std::round(v)) < 1e-6f ? 0 : 1));
    if (!rows.empty()) {
        const int cell = static_cast<int>(R) * zoom, gap = 4, font = 2;
        int label_w = 0;
        for (const auto& r : rows) label_w = std::max(label_w, text_width(r.label, font));
        label_w += 3 * gap;
        const int header_h = 7 * font + 3 * gap;
        Image grid = make_image(label_w + static_cast<int>(A) * (cell + gap), header_h + static_cast<int>(rows.size()) * (cell + gap), 3, 255);
        for (Index j = 0; j < A; ++j) {
            const std::string& t = alpha_labels[static_cast<std::size_t>(j)];
            draw_text(grid, label_w + static_cast<int>(j) * (cell + gap) + (cell - text_width(t, font)) / 2, gap, t, Rgb{0, 0, 0}, font);
        }
        for (std::size_t r = 0; r < rows.size(); ++r) {
            const int y = header_h + static_cast<int>(r) * (cell + gap);
            draw_text(grid, gap, y + (cell - 7 * font) / 2, rows[r].label, Rgb{0, 0, 0}, font);
            for (Index j = 0; j < A; ++j)
                detail::blit(grid, enlarge(cells[r][static_cast<std::size_t>(j)], zoom), label_w + static_cast<int>(j) * (cell + gap), y);
        }
        save_png(d / "edits.png", g.img_channels() == 1 ? convert_channels(grid, 1) : grid);
        SafetensorsWriter w;
        w.add("alphas", {A}, alphas);
        w.add("ws", all_ws);
        w.add("styles", all_styles);
        std::string labels;
        for (const auto& r : rows) labels += (labels.empty() ? "" : ";") + r.label;
        w.set_metadata("rows", labels);
        w.set_metadata("base", base.label);
        w.write(d / "edits.safetensors");
        std::cout << "wrote " << (d / "edits.png").string() << " (" << rows.size() << " edit(s) x " << A
                  << " alphas) and edits.safetensors\n";
    }

    std::string mix_range;
    if (other) {
        const edit::LayerRange& mr = mix_layers;
        const Tensor<float> mixed_ws = edit::mix_styles(base.ws, other->ws, mr.begin, mr.end);
        Tensor<float> mixed = base.styles;
        const Tensor<float> moved = g.styles(mixed_ws);
        for (Index i = 0; i < mixed.numel(); ++i) mixed[i] += moved[i] - base_own[i];
        const Tensor<float> other_img = g.synthesis_from_styles(other->styles), mixed_img = g.synthesis_from_styles(mixed);
        save_png(d / "mix.png", hconcat({enlarge(tensor_to_image(recon), zoom), enlarge(tensor_to_image(other_img), zoom),
                                         enlarge(tensor_to_image(mixed_img), zoom)}, 4));
        SafetensorsWriter w;
        w.add("ws", mixed_ws);
        w.add("styles", mixed);
        mix_range = concat(mr.begin, ":", mr.end);
        w.set_metadata("mix_layers", mix_range);
        w.write(d / "mix.safetensors");
        std::cout << "wrote " << (d / "mix.png").string() << " (base | " << other->label << " | base with w " << mix_range
                  << " from it)\n";
    }

    if (a.has("report")) {
        std::optional<metrics::Comparison> fit;
        if (target) {
            const TargetSet& ts = *target;
            Tensor<float> rc = recon;
            for (float& v : rc.values()) v = std::fmin(1.0f, std::fmax(-1.0f, v));
            const auto m = metrics::compare(rc, ts.images, metrics::DataRange::signed_unit());
            fit = m[0];
            save_png(d / "target.png", tensor_to_image(ts.images));
        }
        std::ostringstream h;
        html::begin_page(h, "ganinv edit report");
        h << "<p>model <code>" << html::escape(model) << "</code>, code <b>" << html::escape(base.label)
          << "</b>; alphas in standard deviations of sampled codes along each direction / channel.</p>\n";
        if (fit) html::figure(h, "target", html::png_data_uri(d / "target.png"), "target", 4 * static_cast<int>(R));
        html::figure(h, fit ? "reconstruction" : "unedited", html::png_data_uri(d / "base.png"), "unedited image",
                     4 * static_cast<int>(R));
        if (fit)
            html::table(h, {"", "PSNR dB (float)", "SSIM (float)", "MSE (float)"},
                        {{"reconstruction vs target", html::fixed(fit->psnr, 2), html::fixed(fit->ssim, 4),
                          html::fixed(fit->mse, 5)}});
        if (!rows.empty()) {
            h << "<h2>Edits</h2>\n<p class=\"note\">Rows: edits; columns: alpha.</p>\n";
            html::figure(h, "", html::png_data_uri(d / "edits.png"), "edit grid");
            h << "<h2>Change per edit</h2>\n<p class=\"note\">PSNR (dB) of each edited image against the unedited one, on "
                 "float images in [-1, 1]: lower = larger change; inf at alpha 0, where the edit is the unedited "
                 "image.</p>\n";
            std::vector<std::string> header{"edit"};
            for (const auto& l : alpha_labels) header.push_back("alpha " + l);
            std::vector<std::vector<std::string>> cells_txt;
            for (std::size_t r = 0; r < rows.size(); ++r) {
                std::vector<std::string> line{rows[r].label};
                for (double v : change[r]) line.push_back(html::fixed(v, 2));
                cells_txt.push_back(line);
            }
            html::table(h, header, cells_txt);
        }
        if (other) {
            h << "<h2>Style mixing</h2>\n<p class=\"note\">unedited | " << html::escape(other->label)
              << " | unedited with w indices " << mix_range << " (half-open) taken from it</p>\n";
            html::figure(h, "", html::png_data_uri(d / "mix.png"), "style mixing");
        }
        html::end_page(h);
        write_file_atomically(d / "report.html", h.str());
        std::cout << "wrote " << (d / "report.html").string() << "\n";
    }
    return 0;
}

const bool edit_registered = register_command(Command{
    "edit",
    "Edit a latent code: W directions (SeFa, GANSpace, files), StyleSpace channels, style mixing.",
    "--model M.safetensors (--code C.safetensors | --seed N) --out DIR\n"
    "       [--direction sefa:K|ganspace:K|D.safetensors[:K] ...] [--alphas a,b,...] [--layers a:b]\n"
    "       [--stylespace LAYER:CHANNEL ...] [--mix CODE|seed:N [--mix-layers a:b]] [--report [--target IMG]]\n"
    "       [--samples N] [--stats-seed S] [--scale S] [--max-pixels N]",
    {
        {"model", "M.safetensors", "generator weights"},
        {"code", "C.safetensors", "the code to edit: tensor 'ws' (and 'styles' for S-space codes), as invert writes"},
        {"seed", "N", "edit the code of this seed instead (z as the official scripts draw it)"},
        {"out", "DIR", "output directory: edits.png, edits.safetensors, base.png, mix.png, report.html"},
        {"direction", "SPEC", "sefa:K or ganspace:K (K or A-B: direction indices), or a directions file "
                              "(ganinv directions) with :K / A-B (default its first 5)", true},
        {"alphas", "LIST", "steps in standard deviations of sampled codes (default -3,-1.5,0,1.5,3)"},
        {"layers", "a:b", "w indices the W edits act on (default: all, or the directions file's range)"},
        {"stylespace", "LAYER:CH", "one StyleSpace channel (layer name such as b8.conv1, or plan index) per row", true},
        {"mix", "CODE", "style mixing: take --mix-layers from this code (file or seed:N)"},
        {"mix-layers", "a:b", "w indices taken from --mix (default: the upper half)"},
        {"samples", "N", "sampled codes for stddevs and GANSpace's PCA (default 10000)"},
        {"stats-seed", "S", "seed of those samples (default 0)"},
        {"scale", "S", "enlarge the images S times in the pictures (default: about 96 pixels)"},
        {"report", "", "write DIR/report.html (static, images embedded)"},
        {"target", "IMG", "the image the code was inverted from: shown in the report with the fit"},
        max_pixels_option(),
    },
    run_edit});

}  // namespace
}  // namespace ganinv::cli
