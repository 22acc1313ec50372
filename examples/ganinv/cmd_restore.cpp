// ganinv restore: image restoration through inversion. The generator's output is compared with
// the observation through the task's forward model (Masked<Mse> for inpainting, Degraded<Mse,
// area down-sampling> for super-resolution, Degraded<Mse, RGB->gray> for colorization), so the
// found code explains what is known and the generator supplies the rest. Given clean images, the
// tool degrades them itself and scores the result and a naive baseline against the original.
#include "html_report.hpp"
#include "invert_dispatch.hpp"
#include "invert_support.hpp"
#include "restore_support.hpp"

#include <iomanip>
#include <iostream>
#include <sstream>

namespace ganinv::cli {
namespace {

using restore::Task;

/// One image: what the inverter sees, and what the scores need.
struct Item {
    std::string name;
    Tensor<float> truth;        ///< [1, C, R, R]; empty with --observed
    Tensor<float> observation;  ///< the degraded input in its own shape (low-res, gray, ...)
    Tensor<float> target;       ///< [1, C, R, R] the inverter's target (Degraded/Masked read what matters)
    Tensor<float> mask;         ///< inpainting: [1, 1, R, R], 1 = known
    Tensor<float> baseline;     ///< [1, C, R, R] mean fill / bicubic / gray replicated
};

struct Column {
    std::string key, label;
};

std::vector<Column> columns_for(Task t, bool truth) {
    std::vector<Column> c;
    if (truth && t == Task::inpaint)
        c = {{"hole_psnr", "hole PSNR"}, {"hole_psnr_mean_fill", "mean-fill"}, {"psnr", "PSNR all"}};
    if (truth && t == Task::superres)
        c = {{"psnr", "PSNR"}, {"psnr_bicubic", "bicubic"}, {"ssim", "SSIM"}, {"ssim_bicubic", "SSIM bic."}};
    if (truth && t == Task::colorize)
        c = {{"psnr", "PSNR"}, {"psnr_gray", "gray"}, {"chroma_psnr", "chroma"}, {"chroma_psnr_gray", "chroma gray"}};
    c.push_back({"fit_psnr", "fit PSNR"});
    return c;
}

std::string task_name(Task t) { return t == Task::inpaint ? "inpaint" : t == Task::superres ? "superres" : "colorize"; }

Tensor<float> degrade(Task task, const Tensor<float>& img, Index factor) {
    if (task == Task::superres) return resize_area(img, img.dim(2) / factor, img.dim(3) / factor);
    if (task == Task::colorize) return to_channels(img, 1);
    return img;
}

/// Fills target and baseline of an item whose observation (and mask) are set.
void prepare(Item& it, Task task, Index factor, Index R) {
    if (task == Task::inpaint) {
        it.target = restore::mean_fill(it.observation, it.mask);  // the hole's values never reach the loss
        it.baseline = it.target;
    } else if (task == Task::superres) {
        it.target = restore::replicate_up(it.observation, factor);
        it.baseline = restore::clamp_unit(resize_bicubic(it.observation, R, R));
    } else {
        it.target = to_channels(it.observation, 3);
        it.baseline = it.target;
    }
}

std::vector<Item> load_items(const Args& a, Task task, const StyleGAN2<Cpu>& g, Index factor,
                             const restore::HoleSpec& hole, std::uint64_t seed) {
    const Index R = g.resolution(), C = g.img_channels();
    const std::vector<std::filesystem::path> paths = collect_image_paths(a);
    std::vector<Item> items;
    if (!a.has("observed")) {
        TargetSet ts = load_targets(paths, g, true, a.max_pixels());
        for (const auto& msg : ts.warnings) std::cerr << "warning: " << msg << "\n";
        if (!ts.failures.empty()) throw IoError(ts.failures.front());
        for (std::size_t i = 0; i < ts.names.size(); ++i) {
            Item it;
            it.name = ts.names[i];
            it.truth = slice_batch(ts.images, static_cast<Index>(i), 1);
            if (task == Task::inpaint) it.mask = restore::make_mask(hole, R, seed, static_cast<Index>(i));
            it.observation = degrade(task, it.truth, factor);
            if (task == Task::inpaint) it.observation = restore::show_hole(it.truth, it.mask);
            prepare(it, task, factor, R);
            items.push_back(std::move(it));
        }
        return items;
    }
    // Observations: their size and channels must be what the forward model produces.
    const Index side = task == Task::superres ? R / factor : R;
    for (std::size_t i = 0; i < paths.size(); ++i) {
        const Image img = load_image(paths[i], a.max_pixels());
        if (img.width != side || img.height != side)
            throw ShapeError(concat("--observed: '", paths[i].string(), "' is ", img.width, "x", img.height, "; ",
                                    task == Task::superres ? "the low-res input must be " : "the input must be ", side,
                                    "x", side, task == Task::superres ? concat(" (the resolution ", R, " / --factor ", factor, ")")
                                                                      : std::string(" (the generator's resolution)")));
        Item it;
        it.name = paths[i].stem().string();
        it.observation = image_to_tensor(img, task == Task::colorize ? 1 : static_cast<int>(C));
        if (task == Task::inpaint) it.mask = restore::make_mask(hole, R, seed, static_cast<Index>(i));
        prepare(it, task, factor, R);
        items.push_back(std::move(it));
    }
    return items;
}

std::vector<double> score(const Item& it, const Tensor<float>& result, Task task, Index factor) {
    std::vector<double> v;
    if (it.truth.numel() > 0) {
        if (task == Task::inpaint) {
            const Tensor<float> hole = restore::hole_of(it.mask);
            v = {restore::psnr_where(result, it.truth, hole), restore::psnr_where(it.baseline, it.truth, hole),
                 restore::psnr_where(result, it.truth)};
        } else if (task == Task::superres) {
            const auto mr = metrics::compare(result, it.truth, metrics::DataRange::signed_unit());
            const auto mb = metrics::compare(it.baseline, it.truth, metrics::DataRange::signed_unit());
            v = {mr[0].psnr, mb[0].psnr, mr[0].ssim, mb[0].ssim};
        } else {
            v = {restore::psnr_where(result, it.truth), restore::psnr_where(it.baseline, it.truth),
                 restore::psnr_where(restore::chroma(result), restore::chroma(it.truth)),
                 restore::psnr_where(restore::chroma(it.baseline), restore::chroma(it.truth))};
        }
    }
    // How well the result explains the observation (known pixels / low-res / gray).
    v.push_back(task == Task::inpaint ? restore::psnr_where(result, it.observation, it.mask)
                                      : restore::psnr_where(degrade(task, result, factor), it.observation));
    return v;
}

void write_item(const std::filesystem::path& d, const Item& it, const InversionResult& r, Index i, Task task, Index factor) {
    SafetensorsWriter w;
    w.add("ws", row_of(r.ws, i));
    if (r.z.numel() > 0) w.add("z", row_of(r.z, i));
    if (r.styles.numel() > 0) w.add("styles", row_of(r.styles, i));
    if (task == Task::inpaint) w.add("mask", it.mask);
    w.set_metadata("space", r.space);
    w.set_metadata("task", task_name(task));
    w.write(d / (it.name + ".safetensors"));

    const Tensor<float> result = restore::clamp_unit(row_of(r.reconstruction, i));
    const Index R = result.dim(2);
    const int zoom = std::max<int>(1, 128 / static_cast<int>(R));
    const Image input = tensor_to_image(it.observation), res = tensor_to_image(result);
    save_png(d / (it.name + "_input.png"), input);
    save_png(d / (it.name + "_result.png"), res);
    const int input_zoom = zoom * static_cast<int>(task == Task::superres ? factor : 1);
    std::vector<Image> panels{enlarge(input, input_zoom), enlarge(tensor_to_image(it.baseline), zoom), enlarge(res, zoom)};
    if (it.truth.numel() > 0) panels.push_back(enlarge(tensor_to_image(it.truth), zoom));
    save_png(d / (it.name + "_compare.png"), hconcat(panels, 4));
}

std::string baseline_name(Task t) {
    return t == Task::inpaint ? "mean fill" : t == Task::superres ? "bicubic up-sampling" : "gray input as RGB";
}

void write_summary(const std::filesystem::path& d, const std::vector<Item>& items, const std::vector<std::vector<double>>& rows,
                   const std::vector<Column>& cols, const std::string& header, Task task) {
    std::ostringstream table;
    table << std::left << std::setw(22) << "image" << std::right;
    for (const auto& c : cols) table << std::setw(13) << c.label;
    table << "\n";
    std::vector<double> mean(cols.size(), 0.0);
    for (std::size_t i = 0; i < items.size(); ++i) {
        table << std::left << std::setw(22) << items[i].name.substr(0, 21) << std::right;
        for (std::size_t c = 0; c < cols.size(); ++c) {
            table << std::setw(13) << html::fixed(rows[i][c], cols[c].key.find("ssim") == 0 ? 4 : 2);
            mean[c] += rows[i][c] / static_cast<double>(items.size());
        }
        table << "\n";
    }
    table << std::left << std::setw(22) << "mean" << std::right;
    for (std::size_t c = 0; c < cols.size(); ++c)
        table << std::setw(13) << html::fixed(mean[c], cols[c].key.find("ssim") == 0 ? 4 : 2);
    table << "\n";
    std::cout << "\n" << table.str();

    Json root{Json::Object{}};
    root.set("task", task_name(task));
    root.set("settings", header);
    root.set("baseline", baseline_name(task));
    Json::Array images;
    Json means{Json::Object{}};
    for (std::size_t i = 0; i < items.size(); ++i) {
        Json j{Json::Object{}};
        j.set("name", items[i].name);
        for (std::size_t c = 0; c < cols.size(); ++c) j.set(cols[c].key, std::isfinite(rows[i][c]) ? Json(rows[i][c]) : Json());
        images.push_back(j);
    }
    for (std::size_t c = 0; c < cols.size(); ++c) means.set(cols[c].key, std::isfinite(mean[c]) ? Json(mean[c]) : Json());
    root.set("images", images);
    root.set("mean", means);
    write_file_atomically(d / "summary.json", root.dump() + "\n");
    std::ostringstream md;
    md << "# ganinv restore --task " << task_name(task) << "\n\n" << header << "\n\nPSNR in dB on [-1, 1] images; baseline: "
        << baseline_name(task)
        << ". `fit PSNR` compares the degraded result with the observation. Comparison strips: input | baseline | "
           "result"
        << (items.empty() || items[0].truth.numel() == 0 ? "" : " | ground truth") << ".\n\n```\n" << table.str() << "```\n";
    write_file_atomically(d / "summary.md", md.str());
}

int run_restore(const Args& a) {
    const Task task = restore::parse_task(a.require("task"));
    const std::string model = a.require("model"), out_dir = output_dir_option(a);
    const std::string space = space_option(a, "w");
    const std::string optimizer = optimizer_option(a, false, "restore");
    const Index batch_arg = batch_option(a);
    const Index factor = a.integer("factor", 4);
    if (task != Task::superres && a.has("factor")) throw UsageError("--factor is an option of --task superres");
    if (task != Task::inpaint && (a.has("mask") || a.has("hole"))) throw UsageError("--mask and --hole are options of --task inpaint");
    if (a.has("mask") && a.has("hole")) throw UsageError("give either --mask FILE or --hole KIND:FRACTION, not both");
    if (a.get("init").value_or("").rfind("encoder:", 0) == 0)  // the encoder sees clean images, not degraded ones
        throw UsageError("--init encoder:E is an option of invert (hybrid inversion); restore takes mean, random or a "
                         "code file");
    restore::HoleSpec hole;
    if (a.has("hole")) hole = restore::parse_hole(*a.get("hole"));
    if (a.has("mask")) {
        hole.kind = restore::HoleSpec::Kind::file;
        hole.file = *a.get("mask");
    }

    StyleGAN2<Cpu> g = StyleGAN2<Cpu>::load(model);
    const Index R = g.resolution();
    if (task == Task::superres) {
        if (factor < 1 || R % factor != 0)
            throw UsageError(concat("--factor ", factor, " does not divide the generator's resolution ", R));
        restore::superres_loss(factor);  // rejects unsupported factors before any work
    }
    if (task == Task::colorize && g.img_channels() != 3)
        throw UsageError(concat("--task colorize needs an RGB generator; '", model, "' makes ", g.img_channels(),
                                "-channel images"));
    InverterOptions o = inverter_options_from_args(a);
    const std::vector<Item> items = load_items(a, task, g, factor, hole, o.seed);
    // Different holes cannot share a batch (the loss holds one mask), so random holes go one by one.
    const bool shared_mask = task != Task::inpaint || hole.kind != restore::HoleSpec::Kind::random;
    const Index batch = shared_mask ? batch_arg : 1;
    const Index n = static_cast<Index>(items.size());
    const std::filesystem::path d(out_dir);
    std::filesystem::create_directories(d);
    const std::vector<Column> cols = columns_for(task, items[0].truth.numel() > 0);
    std::vector<std::vector<double>> rows;
    double seconds = 0;
    for (Index b0 = 0, bi = 1; b0 < n; b0 += batch, ++bi) {
        const Index nb = std::min(batch, n - b0);
        const Index C = items[0].target.dim(1);
        Tensor<float> t({nb, C, R, R});
        for (Index j = 0; j < nb; ++j)
            std::copy(items[b0 + j].target.values().begin(), items[b0 + j].target.values().end(), t.data() + j * C * R * R);
        AnyLoss<Cpu> loss = task == Task::inpaint   ? restore::inpaint_loss(items[b0].mask)
                            : task == Task::superres ? restore::superres_loss(factor)
                                                     : restore::colorize_loss();
        ProgressBar bar(concat(task_name(task), " batch ", bi, "/", (n + batch - 1) / batch), o.steps);
        o.on_progress = [&](const InversionProgress& p) { bar.update(p); };
        const InversionResult r = run_inversion<false>(space, optimizer, a, g, loss, o, t);
        bar.finish();
        seconds += r.seconds;
        for (Index j = 0; j < nb; ++j) {
            const Item& it = items[b0 + j];
            write_item(d, it, r, j, task, factor);
            rows.push_back(score(it, restore::clamp_unit(row_of(r.reconstruction, j)), task, factor));
        }
    }
    std::vector<Image> strips;
    for (const auto& it : items) strips.push_back(load_image(d / (it.name + "_compare.png")));
    save_png(d / "overview.png", make_grid(strips, strips.size() > 8 ? 2 : 1, 6, 255));
    const std::string header = concat("model `", model, "`, task ", task_name(task),
                                      task == Task::superres ? concat(" x", factor) : std::string(),
                                      task == Task::inpaint ? (hole.kind == restore::HoleSpec::Kind::file
                                                                   ? ", mask " + hole.file
                                                                   : concat(", hole ", hole.kind == restore::HoleSpec::Kind::center ? "center" : "random",
                                                                            ":", hole.fraction))
                                                            : std::string(),
                                      ", space ", space, ", optimizer ", optimizer, ", ", o.steps, " steps, seed ", o.seed,
                                      ", ", n, " image(s), ", html::fixed(seconds, 1), " s");
    write_summary(d, items, rows, cols, header, task);
    std::cout << "wrote " << n << " restoration(s) to " << d.string() << " (summary.md, summary.json, overview.png)\n";
    return 0;
}

const bool restore_registered = register_command(Command{
    "restore",
    "Restore images through inversion: inpainting, super-resolution or colorization, scored against baselines.",
    "--task inpaint|superres|colorize --model M.safetensors (--image A.png ... | --dir D) --out DIR\n"
    "       [--hole center:F|random:F | --mask M.png] [--factor K] [--observed]\n"
    "       [--space z|w|wplus|s] [--optimizer adam|lbfgs] [--steps N] [--seed S] [--batch B]\n"
    "       [--init mean|random|C.safetensors] [--lr LR] [--optimize-noise] [--w-avg-prior W]\n"
    "       [--wplus-spread-prior W] [--lbfgs-history K] [--max-pixels N]",
    {
        {"task", "TASK", "inpaint (Masked<Mse>), superres (Degraded<Mse, area down-sampling>) or colorize "
                         "(Degraded<Mse, RGB->gray>, needs an RGB generator)"},
        {"model", "M.safetensors", "generator weights"},
        {"image", "FILE", "images: clean originals (degraded here and scored), or observations with --observed", true},
        {"dir", "D", "every image file in this directory"},
        {"out", "DIR", "output directory (created)"},
        {"observed", "", "the images are already degraded: generator-size with a hole (inpaint), R/K x R/K "
                         "(superres) or gray (colorize); nothing to score against"},
        {"hole", "KIND:F", "inpaint: a square hole covering share F of the image, centred (center:0.25, the "
                           "default) or at a random place per image (random:F, seeded by --seed)"},
        {"mask", "M.png", "inpaint: mask of the generator's size, white = hole (pixels to fill), black = known"},
        {"factor", "K", "superres: down-sampling factor 2, 4 (default), 8 or 16; must divide the resolution"},
        {"space", "SPACE", "latent space: w (default: the strongest prior for missing content), wplus, z or s"},
        {"optimizer", "OPT", "adam (default, official projector schedule) or lbfgs"},
        {"steps", "N", "optimizer steps (default 500)"},
        {"seed", "S", "random seed (default 0): exploration noise and random holes"},
        {"lr", "LR", "initial learning rate (Adam, default 0.1)"},
        {"init", "KIND", "mean (default), random, or a safetensors file with 'ws'"},
        {"w-avg-prior", "W", "weight of an L2 pull of the code towards the mean w (default 0)"},
        {"wplus-spread-prior", "W", "weight of the distance of W+ layers from their mean (default 0)"},
        {"optimize-noise", "", "optimise the noise maps too"},
        {"lbfgs-history", "K", "L-BFGS history size (default 10)"},
        {"batch", "B", "images restored together (default 8; random holes go one at a time)"},
        max_pixels_option(),
    },
    run_restore});

}  // namespace
}  // namespace ganinv::cli
