// ganinv interpolate: a strip PNG and/or an animated GIF of the path between latent codes
// (seeds or saved codes), slerp in Z, lerp in W, W+ or S.
#include "common.hpp"

#include <ganinv/backend/cpu.hpp>
#include <ganinv/edit/interpolate.hpp>
#include <ganinv/edit/sampling.hpp>
#include <ganinv/io/gif.hpp>
#include <ganinv/io/image.hpp>
#include <ganinv/io/image_ops.hpp>
#include <ganinv/models/stylegan2.hpp>

#include <cmath>
#include <iostream>

namespace ganinv::cli {
namespace {

using edit::EditSpace;

/// Nearest-neighbour enlargement by an integer factor (keeps 32x32 pixels crisp in previews).
Image upscale(const Image& img, int s) {
    if (s == 1) return img;
    Image out = make_image(img.width * s, img.height * s, img.channels);
    for (int y = 0; y < out.height; ++y)
        for (int x = 0; x < out.width; ++x)
            for (int c = 0; c < img.channels; ++c) out.at(x, y, c) = img.at(x / s, y / s, c);
    return out;
}

/// One key code: z [1, z_dim] for space z, else ws [1, num_ws, w_dim].
struct KeySpec {
    std::optional<std::uint32_t> seed;
    std::string file;
    std::string label() const { return seed ? "seed " + std::to_string(*seed) : file; }
};

/// Splits "seed 3 seed 7 codes.safetensors" (the tokens of --from/--to/--via) into key specs.
std::vector<KeySpec> parse_keys(const std::vector<std::string>& tokens, const std::string& option) {
    std::vector<KeySpec> keys;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
        std::string t = tokens[i];
        std::string number;
        if (t == "seed") {
            if (i + 1 >= tokens.size()) throw UsageError("--" + option + ": 'seed' needs a number");
            number = tokens[++i];
        } else if (t.rfind("seed:", 0) == 0 || t.rfind("seed=", 0) == 0) {
            number = t.substr(5);
        }
        if (!number.empty() || t == "seed") {
            std::size_t used = 0;
            long long v = -1;
            try {
                v = std::stoll(number, &used);
            } catch (const std::exception&) {
                used = 0;
            }
            if (used != number.size() || v < 0 || v > 0xFFFFFFFFLL)
                throw UsageError("--" + option + ": seed must be an integer in [0, 2^32), got '" + number + "'");
            keys.push_back({static_cast<std::uint32_t>(v), {}});
        } else {
            keys.push_back({std::nullopt, t});
        }
    }
    if (keys.empty()) throw UsageError("--" + option + " needs 'seed N' or a .safetensors file");
    return keys;
}

/// [N, num_ws, w_dim], [num_ws, w_dim], [N, w_dim] or [w_dim] -> the first code as [1, num_ws, w_dim].
Tensor<float> first_ws(const Tensor<float>& t, Index num_ws, Index w_dim, const std::string& what) {
    const Shape& s = t.shape();
    Tensor<float> ws({1, num_ws, w_dim});
    if ((s.size() == 3 && s[1] == num_ws && s[2] == w_dim) || (s.size() == 2 && s[0] == num_ws && s[1] == w_dim)) {
        std::copy(t.data(), t.data() + num_ws * w_dim, ws.data());
    } else if ((s.size() == 2 && s[1] == w_dim) || (s.size() == 1 && s[0] == w_dim)) {
        for (Index l = 0; l < num_ws; ++l) std::copy(t.data(), t.data() + w_dim, ws.data() + l * w_dim);
    } else {
        throw ShapeError(concat(what, ": shape ", shape_to_string(s), " is not a code of this generator ([N, ", num_ws,
                                ", ", w_dim, "] or [N, ", w_dim, "])"));
    }
    return ws;
}

Tensor<float> key_code(StyleGAN2<Cpu>& g, const KeySpec& k, EditSpace space, const Truncation& trunc) {
    Tensor<float> z;
    if (k.seed) {
        z = edit::z_from_seed(*k.seed, g.z_dim());
    } else {
        std::string path = k.file, name;
        if (const auto c = path.find(".safetensors:"); c != std::string::npos) {
            name = path.substr(c + 13);
            path = path.substr(0, c + 12);
        }
        const SafetensorsFile f(path);
        const std::string what = "'" + k.file + "'";
        if (name.empty()) {
            if (space != EditSpace::z && f.contains("ws")) name = "ws";
            else if (f.contains("z")) name = "z";
            else if (f.entries().size() == 1) name = f.entries()[0].name;
            else throw ValueError(concat(what, " has no tensor 'z' or 'ws'; name one as FILE.safetensors:TENSOR"));
        }
        const Tensor<float> t = load_nonempty(f, name);
        const bool is_z = t.numel() % g.z_dim() == 0 && t.shape().back() == g.z_dim() && t.rank() <= 2 &&
                          (name == "z" || space == EditSpace::z);
        if (is_z) {
            z = Tensor<float>({1, g.z_dim()}, std::vector<float>(t.data(), t.data() + g.z_dim()));
        } else {
            if (space == EditSpace::z)
                throw ValueError(concat(what, ": tensor '", name, "' is not a z [N, ", g.z_dim(),
                                        "]; interpolating in Z needs z codes (use --space w for ws)"));
            Tensor<float> ws = first_ws(t, g.num_ws(), g.w_dim(), what);
            expect_finite(ws.values(), what);
            return ws;
        }
    }
    expect_finite(z.values(), "z of " + k.label());
    return space == EditSpace::z ? z : g.mapping(z, trunc);
}

int run_interpolate(const Args& a) {
    const std::string model = a.require("model");
    const std::filesystem::path out_path = image_output_option(a, "out", true);
    if (a.has("gif") && std::filesystem::path(*a.get("gif")).extension() != ".gif")
        throw UsageError("--gif '" + *a.get("gif") + "': the animation is a GIF; name it *.gif");
    const long long delay = a.integer("delay", 8);
    if (delay < 0 || delay > 65535) throw UsageError("--delay must be in [0, 65535] hundredths of a second");
    if (!a.has("from") || !a.has("to")) throw UsageError("give both --from and --to");
    EditSpace space;
    try {
        space = edit::parse_edit_space(a.get("space").value_or("w"));
    } catch (const ValueError& e) {
        throw UsageError(e.what());
    }
    const long long frames = a.integer("frames", 8);
    if (frames < 2 || frames > 1000) throw UsageError("--frames must be in [2, 1000]");
    const long long scale = a.integer("scale", 1);
    if (scale < 1 || scale > 32) throw UsageError("--scale must be in [1, 32]");
    const float psi = static_cast<float>(a.number("truncation-psi", 1.0));
    NoiseMode mode;
    try {
        mode = parse_noise_mode(a.get("noise-mode").value_or("const"));
    } catch (const ValueError& e) {
        throw UsageError(e.what());
    }

    std::vector<KeySpec> specs = parse_keys(a.all("from"), "from");
    if (a.has("via"))
        for (const auto& k : parse_keys(a.all("via"), "via")) specs.push_back(k);
    for (const auto& k : parse_keys(a.all("to"), "to")) specs.push_back(k);

    StyleGAN2<Cpu> g = StyleGAN2<Cpu>::load(model);
    const Truncation trunc{psi, std::nullopt};
    std::vector<Tensor<float>> keys;
    for (const auto& k : specs) {
        Tensor<float> code = key_code(g, k, space, trunc);
        if (space == EditSpace::w) {  // W: one w for every layer (the first of a W+ code)
            for (Index l = 1; l < g.num_ws(); ++l)
                std::copy(code.data(), code.data() + g.w_dim(), code.data() + l * g.w_dim());
        } else if (space == EditSpace::s) {
            code = g.styles(code);
        }
        keys.push_back(std::move(code));
    }
    const Tensor<float> path = edit::interpolate_path(keys, frames, space);
    Tensor<float> images;
    const NoiseInput<Cpu> noise{mode, static_cast<std::uint64_t>(a.integer("noise-seed", 0))};
    if (space == EditSpace::z) images = g.synthesis(g.mapping(path, trunc), noise);
    else if (space == EditSpace::s) images = g.synthesis_from_styles(path, noise);
    else images = g.synthesis(path, noise);

    std::vector<Image> pictures;
    for (const Image& img : tensor_to_images(images)) pictures.push_back(upscale(img, static_cast<int>(scale)));
    ensure_parent_dir(out_path);
    auto write_gif = [&](const std::filesystem::path& p) {
        ensure_parent_dir(p);
        GifOptions opts;
        opts.delay_cs = static_cast<int>(delay);
        save_gif(p, pictures, opts);
        std::cout << "wrote " << p.string() << " (GIF, " << frames << " frames)\n";
    };
    if (out_path.extension() == ".gif") {
        write_gif(out_path);
    } else {
        save_image(out_path, hconcat(pictures, 2, 255));
        std::cout << "wrote " << out_path.string() << " (strip of " << frames << " frames, " << keys.size()
                  << " keys, " << edit::to_string(space) << " space)\n";
    }
    if (a.has("gif")) write_gif(*a.get("gif"));
    return 0;
}

const bool interpolate_registered = register_command(Command{
    "interpolate",
    "Interpolate between latent codes (slerp in Z, lerp in W/W+/S) into a strip PNG or a GIF.",
    "--model M.safetensors --from (seed N | F.safetensors[:TENSOR]) [--via ...] --to (...)\n"
    "       [--space z|w|wplus|s] [--frames K] --out OUT.png|OUT.jpg|OUT.bmp|OUT.gif [--gif G.gif] [--scale S]\n"
    "       [--delay CS] [--truncation-psi P] [--noise-mode const|none|random] [--noise-seed S]",
    {
        {"model", "M.safetensors", "generator weights"},
        {"from", "SPEC", "first key: 'seed N' (numpy RandomState(N) z) or a safetensors file with z or ws", true},
        {"via", "SPEC", "intermediate keys, in order (any number of 'seed N' / files)", true},
        {"to", "SPEC", "last key", true},
        {"space", "SPACE", "z (slerp), w (default), wplus or s (lerp of the per-layer styles)"},
        {"frames", "K", "number of frames along the whole path (default 8)"},
        {"out", "OUT", "OUT.png (or .jpg, .bmp): frames side by side; OUT.gif: an animation"},
        {"gif", "G.gif", "also write the animation"},
        {"scale", "S", "enlarge every frame S times, nearest neighbour (default 1)"},
        {"delay", "CS", "GIF frame delay in 1/100 s (default 8)"},
        {"truncation-psi", "P", "truncation of codes mapped from z (default 1 = none)"},
        {"noise-mode", "MODE", "const (default), none or random"},
        {"noise-seed", "S", "seed of random noise maps (default 0)"},
    },
    run_interpolate});

}  // namespace
}  // namespace ganinv::cli
