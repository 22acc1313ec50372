// ganinv train-encoder: trains a pSp-style encoder for a generator on the CPU or, with --device
// cuda, on the GPU (encoder_cuda.cu: EncoderTrainerCuda) — generated samples with known codes,
// optionally real images, single-pass or iterative (ReStyle, --iterations K), pSp or e4e — and
// writes it as an encoder file (a checkpoint either device resumes).
#include "cuda_options_arg.hpp"
#include "encoder_support.hpp"
#if GANINV_CLI_HAS_CUDNN
#include "encoder_cuda.hpp"
#endif

#include <ganinv/invert/encoder_trainer.hpp>
#include <ganinv/io/idx.hpp>
#include <ganinv/io/plot.hpp>

#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>

namespace ganinv::cli {
namespace {

/// The loss curve PNG: the loss and, for an iterative encoder, each iteration's pixel loss.
/// Trainer: EncoderTrainer or CudaEncoderTraining.
template <class Trainer>
void write_loss_curve(const std::filesystem::path& path, const Trainer& t) {
    const auto& h = t.history();
    if (h.empty()) return;
    std::vector<Curve> curves;
    for (std::size_t c = 0; c < h[0].size(); ++c) {
        if (c > 0 && h[0].size() == 2) break;  // one pass: its pixel loss is in the loss already
        Curve curve{c == 0 ? std::string("loss") : concat("pixel, iteration ", c), {}, palette_color(c)};
        for (const auto& row : h) curve.values.push_back(row[c]);
        curves.push_back(std::move(curve));
    }
    // A step's loss is one small batch's: over long runs a moving mean shows the trend.
    const std::size_t window = h.size() / 100;
    if (window >= 5) {
        Curve mean{concat("loss, mean of ", window, " steps"), {}, Rgb{0, 0, 0}};
        double sum = 0;
        for (std::size_t i = 0; i < h.size(); ++i) {
            sum += h[i][0] - (i >= window ? h[i - window][0] : 0.0);
            mean.values.push_back(sum / static_cast<double>(std::min(i + 1, window)));
        }
        curves.push_back(std::move(mean));
    }
    PlotOptions po;
    po.title = "train-encoder";
    if (t.history_first_step() > 0) po.x_label = concat("step after ", t.history_first_step());
    save_png(path, plot_curves(curves, po));
}

/// Real images from an uncompressed IDX images file (MNIST / Fashion-MNIST `*-images-idx3-ubyte`):
/// the first `count` (0: all), converted and resized to the generator exactly as `--real-dir`
/// does with image files, so both give the same batches for the same pictures.
Tensor<float> load_idx_targets(const std::filesystem::path& path, long long count, Index R, Index C) {
    const IdxHeader h = read_idx_header(path);
    const long long total = h.dims.empty() ? 0 : static_cast<long long>(h.dims[0]);
    if (count > total)
        throw UsageError(concat("--real-count ", count, ": '", path.string(), "' holds ", total, " images"));
    const std::vector<Image> images = load_idx_images(path, 0, static_cast<std::size_t>(count > 0 ? count : total));
    if (images.empty()) throw IoError(concat("IDX file '", path.string(), "' holds no images"));
    Tensor<float> out({static_cast<Index>(images.size()), C, R, R});
    const Index per = C * R * R;
    for (std::size_t i = 0; i < images.size(); ++i) {
        Tensor<float> t = image_to_tensor(images[i], static_cast<int>(C));
        if (t.dim(2) != R || t.dim(3) != R) {
            if (t.dim(2) != t.dim(3)) t = center_crop_square(t);
            t = resize(t, R, R);
        }
        std::copy(t.data(), t.data() + per, out.data() + static_cast<Index>(i) * per);
    }
    if (images[0].width != R || images[0].height != R)
        std::cerr << "warning: " << images.size() << " real images of " << images[0].width << "x" << images[0].height
                  << (images[0].width != images[0].height ? " centre-cropped and" : "") << " resized to " << R << "x" << R
                  << "\n";
    return out;
}

/// "l1, vgg:0.50" -> "l1,vgg:0.5": one spelling per loss, so that a checkpoint's spec compares.
std::string canonical_loss_spec(const std::vector<LossTermSpec>& terms) {
    std::string s;
    for (const auto& t : terms) {
        if (!s.empty()) s += ',';
        s += t.name;
        if (t.weight != 1.0) s += concat(":", t.weight);
    }
    return s;
}

/// What a training run writes and how long it runs.
struct TrainRun {
    std::filesystem::path out, curve;
    long long steps = 0, every = 0;
    std::optional<std::filesystem::path> exported;
};

/// The steps, progress lines, checkpoints and loss curve of a run; Trainer: EncoderTrainer or
/// CudaEncoderTraining (the same members). `e` describes the network; `trained` gives the
/// encoder as trained (--export).
template <class Trainer>
int train_loop(Trainer& t, const PspEncoder& e, const TrainRun& run, const std::function<PspEncoder()>& trained) {
    std::cerr << "encoder: " << e.num_params() << " parameters"
              << (e.config().e4e ? concat(", e4e (one w + ", e.num_ws() - 1, " per-layer offsets; offset weight ",
                                          t.options().offset_weight, ", one more offset every ",
                                          t.options().progressive_every, " steps)")
                                 : "")
              << (e.iterative() ? concat(", iterative (", e.config().iterations, " refinement iterations per batch)") : "")
              << "; batch " << t.options().batch << " ("
              << std::lround(t.options().real_ratio * 100) << "% real), seed " << t.options().seed << "\n";
    const std::filesystem::path& out = run.out;
    const std::filesystem::path& curve = run.curve;
    const long long steps = run.steps, every = run.every;
    const Index decay = t.options().lr_decay_steps;  // a resumed run's comes from its checkpoint
    if (decay > 0 && t.steps_done() + steps > decay)
        throw UsageError(concat("the run would end at step ", t.steps_done() + steps, ", past the learning-rate decay's end (",
                                decay, " steps, where the rate reaches zero): give --steps <= ",
                                std::max<Index>(0, decay - t.steps_done()), " or a longer --lr-decay-steps"));
    ensure_parent_dir(out);
    ensure_parent_dir(curve);
    const Index first = t.steps_done(), last = first + steps, report = std::max<long long>(1, steps / 20);
    const auto t0 = std::chrono::steady_clock::now();
    double avg = 0, avg_code = 0, avg_pixel = 0, avg_adv = 0, avg_d = 0, avg_img_adv = 0, avg_img_d = 0, avg_r1 = 0;
    std::vector<double> avg_iter(static_cast<std::size_t>(e.config().iterations), 0.0);
    Index in_avg = 0;
    for (Index s = first; s < last; ++s) {
        const EncoderStepStats st = t.step();
        avg += st.loss;
        avg_code += st.code_loss;
        avg_pixel += st.pixel_loss;
        avg_adv += st.adversarial_loss;
        avg_d += st.discriminator_loss;
        avg_img_adv += st.image_adversarial_loss;
        avg_img_d += st.image_discriminator_loss;
        avg_r1 += st.r1;
        for (std::size_t i = 0; i < st.iteration_pixel_loss.size(); ++i) avg_iter[i] += st.iteration_pixel_loss[i];
        ++in_avg;
        const Index done = st.step - first;
        if (done % report == 0 || st.step == last) {
            const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            const double n = static_cast<double>(in_avg);
            std::string per_iteration;  // does each refinement pass improve on the last?
            if (avg_iter.size() > 1 && t.options().pixel_weight > 0)
                for (std::size_t i = 0; i < avg_iter.size(); ++i) {
                    char v[32];
                    std::snprintf(v, sizeof v, "%.5f", avg_iter[i] / n);
                    per_iteration += concat(i == 0 ? "  pixel per iteration " : " -> ", v);
                }
            if (t.options().latent_adversarial > 0)  // the two players: the encoder's term and D's own loss
                per_iteration += concat("  adversarial ", static_cast<float>(avg_adv / n), " (D ",
                                        static_cast<float>(avg_d / n), ")");
            if (t.options().image_adversarial > 0)
                per_iteration += concat("  image adversarial ", static_cast<float>(avg_img_adv / n), " (D ",
                                        static_cast<float>(avg_img_d / n), ")");
            if (t.options().r1_gamma > 0) per_iteration += concat("  R1 ", static_cast<float>(avg_r1 / n));
            if (decay > 0) per_iteration += concat("  lr ", static_cast<float>(t.options().learning_rate_at(st.step - 1)));
            if (e.config().e4e)  // how far the progressive schedule is, and what the offsets cost
                per_iteration += concat("  offsets ", st.active_offsets, "/", e.num_ws() - 1, " (norm ",
                                        static_cast<float>(st.offset_loss), ")");
            std::fprintf(stderr, "step %ld/%ld  loss %.5f (code %.5f, %s %.5f)%s  %.2f s/step  eta %.0f s\n",
                         static_cast<long>(st.step), static_cast<long>(last), avg / n, avg_code / n,
                         t.options().image_loss.empty() ? "pixel" : t.options().image_loss.c_str(), avg_pixel / n,
                         per_iteration.c_str(), secs / static_cast<double>(done),
                         secs / static_cast<double>(done) * static_cast<double>(last - st.step));
            avg = avg_code = avg_pixel = avg_adv = avg_d = avg_img_adv = avg_img_d = avg_r1 = 0;
            std::fill(avg_iter.begin(), avg_iter.end(), 0.0);
            in_avg = 0;
        }
        if (every > 0 && st.step % every == 0 && st.step != last) {
            t.save_checkpoint(out);
            write_loss_curve(curve, t);
        }
    }
    t.save_checkpoint(out);
    write_loss_curve(curve, t);
    std::cout << "wrote " << out.string() << " (step " << t.steps_done() << "; resume with --resume "
              << out.string() << ") and its loss curve " << curve.string() << "\n";
    if (run.exported) {
        const std::optional<std::filesystem::path>& exported = run.exported;
        ensure_parent_dir(*exported);
        save_encoder(*exported, trained());
        std::cout << "wrote " << exported->string() << " (the encoder alone, for encode and invert --init encoder:)\n";
    }
    return 0;
}

int run_train_encoder(const Args& a) {
    const std::string model = a.require("model");
    const std::string device = encoder_device_option(a);
    [[maybe_unused]] const cuda::CudaOptions cuda_options = cuda_options_from_args(a, device);  // used by the CUDA build
    if (cuda_options.precision == cuda::Precision::bf16)
        throw UsageError("--cuda-precision bf16: train-encoder on the GPU takes fp32 (default) or tf32");
    const std::filesystem::path out(a.require("out"));
    if (out.extension() != ".safetensors") throw UsageError("--out must name a .safetensors file, got '" + out.string() + "'");
    const long long steps = a.integer("steps", 2000);
    // --steps 0 only rewrites a checkpoint (with --export: its weights alone).
    if (steps < (a.has("resume") ? 0 : 1))
        throw UsageError(concat("--steps must be >= ", a.has("resume") ? 0 : 1, ", got ", steps));
    std::optional<std::filesystem::path> exported;
    if (a.has("export")) {
        exported = *a.get("export");
        if (exported->extension() != ".safetensors")
            throw UsageError("--export must name a .safetensors file, got '" + exported->string() + "'");
        if (std::filesystem::weakly_canonical(*exported) == std::filesystem::weakly_canonical(out))
            throw UsageError("--export must differ from --out (the checkpoint)");
    }
    const long long every = a.integer("checkpoint-every", 0);
    if (every < 0) throw UsageError("--checkpoint-every must be >= 0");
    const std::optional<long long> iterations =
        a.has("iterations") ? std::optional<long long>(a.integer("iterations", 1)) : std::nullopt;
    if (iterations && *iterations < 1) throw UsageError("--iterations must be >= 1, got " + std::to_string(*iterations));
    const long long width = a.integer("width", 1), blocks = a.integer("blocks-per-stage", 0);
    if (width < 1 || width > 16) throw UsageError(concat("--width must be in [1, 16], got ", width));
    if (a.has("blocks-per-stage") && (blocks < 1 || blocks > 8))
        throw UsageError(concat("--blocks-per-stage must be in [1, 8], got ", blocks));
    if (a.has("resume") && (a.has("width") || a.has("blocks-per-stage")))
        throw UsageError("--width and --blocks-per-stage shape a new encoder; a resumed run keeps its checkpoint's network");
    if (a.has("init") && a.has("resume"))
        throw UsageError("--init starts a new run from an encoder's weights, --resume continues a run: give one of them");
    if (a.has("init") && (a.has("width") || a.has("blocks-per-stage") || a.has("e4e")))
        throw UsageError("--init takes the network from its file: leave out --width, --blocks-per-stage and --e4e");
    std::filesystem::path curve = out;
    curve.replace_filename(out.stem().string() + "_loss.png");
    if (a.has("loss-curve")) curve = *a.get("loss-curve");
    if (curve.extension() != ".png") throw UsageError("--loss-curve must name a .png file, got '" + curve.string() + "'");
    EncoderTrainerOptions o;
    o.batch = batch_option(a, 8);
    o.seed = static_cast<std::uint64_t>(a.integer("seed", 0));
    o.learning_rate = a.number("lr", 1e-3);
    if ((a.has("lr-decay-steps") || a.has("lr-decay-start")) && a.has("resume"))
        throw UsageError("--lr-decay-steps and --lr-decay-start shape a new run's learning rate; a resumed run keeps its "
                         "checkpoint's schedule");
    o.lr_decay_steps = a.integer("lr-decay-steps", 0);
    if (a.has("lr-decay-steps") && o.lr_decay_steps < 1)
        throw UsageError(concat("--lr-decay-steps must be >= 1, got ", o.lr_decay_steps));
    o.lr_decay_start = a.integer("lr-decay-start", 0);
    if (a.has("lr-decay-start") && !a.has("lr-decay-steps")) throw UsageError("--lr-decay-start needs --lr-decay-steps T");
    if (a.has("lr-decay-start") && (o.lr_decay_start < 0 || o.lr_decay_start >= o.lr_decay_steps))
        throw UsageError(concat("--lr-decay-start must be in [0, ", o.lr_decay_steps, ") (before the decay's end), got ",
                                o.lr_decay_start));
    o.code_weight = a.number("code-weight", 1.0);
    o.pixel_weight = a.number("pixel-weight", 1.0);
    if ((a.has("offset-weight") || a.has("progressive-every")) && !a.has("e4e") && !a.has("resume") && !a.has("init"))
        throw UsageError("--offset-weight and --progressive-every need --e4e");
    o.latent_adversarial = a.number("latent-adversarial", 0.0);
    o.discriminator_lr = a.number("discriminator-lr", 2e-4);
    o.image_adversarial = a.number("image-adversarial", 0.0);
    if (a.has("discriminator-lr") && !a.has("latent-adversarial") && !a.has("image-adversarial"))
        throw UsageError("--discriminator-lr needs --latent-adversarial W or --image-adversarial W");
    o.r1_gamma = a.number("r1", 0.0);
    if (a.has("r1") && !a.has("latent-adversarial") && !a.has("image-adversarial"))
        throw UsageError("--r1 needs --latent-adversarial W or --image-adversarial W (it regularises their discriminators)");
    o.offset_weight = a.number("offset-weight", 2e-4);
    // An e4e file given to --init was trained with its offsets on: they stay on unless asked.
    o.progressive_every = a.integer("progressive-every", a.has("init") ? 0 : 500);
    // The reconstruction term: the built-in pixel MSE unless --loss names another (L1, perceptual).
    const std::string loss_spec = a.has("loss") ? canonical_loss_spec(parse_loss_terms(*a.get("loss"))) : "mse";
    if (device == "cuda") {  // refused before anything is loaded
        EncoderTrainerOptions on_gpu = o;
        if (loss_spec != "mse") on_gpu.image_loss = loss_spec;
        if (const char* missing = encoder_option_not_on_gpu(on_gpu))
            throw UsageError(concat("--device cuda: ", missing, " is not available on the GPU; use --device cpu"));
    }
    std::optional<WeightedLossSum<Cpu>> image_loss;
    if (loss_spec != "mse") image_loss.emplace(parse_loss_spec(loss_spec, a));
    const bool has_real = a.has("real-dir") || a.has("real-idx");
    if (a.has("real-dir") && a.has("real-idx")) throw UsageError("give the real images with --real-dir or --real-idx, not both");
    if (a.has("real-count") && !a.has("real-idx")) throw UsageError("--real-count needs --real-idx F");
    const long long real_count = a.integer("real-count", 0);
    if (a.has("real-count") && real_count < 1) throw UsageError(concat("--real-count must be >= 1, got ", real_count));
    o.real_ratio = a.number("ratio", has_real ? 0.5 : 0.0);
    if (o.real_ratio > 0 && !has_real) throw UsageError("--ratio needs real images (--real-dir D or --real-idx F)");
    try {
        o.validate();
    } catch (const ValueError& e) {
        throw UsageError(e.what());
    }
    std::vector<std::filesystem::path> real_paths;
    if (a.has("real-dir")) {
        Args only_dir;
        only_dir.values_["dir"] = {*a.get("real-dir")};
        try {
            real_paths = collect_image_paths(only_dir);
        } catch (const IoError& e) {
            throw UsageError(std::string("--real-dir: ") + e.what());
        }
    }

    std::optional<StyleGAN2<Cpu>> cpu_g;  // the CPU trainer's generator; the GPU path loads its own
    if (device == "cpu") cpu_g.emplace(StyleGAN2<Cpu>::load(model));
    const StyleGAN2Config gc = cpu_g ? cpu_g->config() : generator_config_of(model);
    const Index R = gc.img_resolution, C = gc.img_channels;
    Tensor<float> real;
    if (!real_paths.empty()) {
        TargetSet ts = load_targets(real_paths, R, C, true, a.max_pixels());
        for (const auto& m : ts.failures) std::cerr << "warning: skipped " << m << "\n";
        if (ts.names.empty()) throw IoError("none of the images in --real-dir could be read");
        std::cerr << "real images: " << ts.names.size() << " from " << *a.get("real-dir") << "\n";
        real = std::move(ts.images);
    } else if (a.has("real-idx")) {
        real = load_idx_targets(*a.get("real-idx"), real_count, R, C);
        std::cerr << "real images: " << real.dim(0) << " from " << *a.get("real-idx") << "\n";
    }
    EncoderConfig config = EncoderConfig::for_generator(R, C, gc.num_ws(), gc.w_dim);
    if (width != 1 || a.has("blocks-per-stage"))
        config = config.widened(width, a.has("blocks-per-stage") ? blocks : config.blocks_per_stage);
    if (iterations) {
        config.iterative = true;
        config.iterations = *iterations;
    }
    if (a.has("e4e")) {
        config.e4e = true;
        config.active_offsets = config.num_ws - 1;  // the trainer's progressive schedule lowers it
    }
    if (a.has("resume")) {  // the checkpoint's network, refinement setting included
        const EncoderConfig saved = load_encoder(*a.get("resume")).config();
        if (iterations && (!saved.iterative || saved.iterations != *iterations))
            throw UsageError(concat("--iterations ", *iterations, ": '", *a.get("resume"), "' was trained ",
                                    saved.iterative ? concat("with --iterations ", saved.iterations) : std::string("single-pass"),
                                    "; a resumed run keeps its setting (leave out --iterations)"));
        if (a.has("e4e") && !saved.e4e)
            throw UsageError(concat("--e4e: '", *a.get("resume"), "' is a pSp encoder; a resumed run keeps its architecture"));
        if ((a.has("offset-weight") || a.has("progressive-every")) && !saved.e4e)
            throw UsageError(concat("--offset-weight and --progressive-every: '", *a.get("resume"), "' is not an e4e encoder"));
        config = saved;
    }
    std::optional<PspEncoder> start;  // --init: a trained encoder's network and weights, a new run
    if (a.has("init")) {
        start.emplace(load_encoder(*a.get("init")));
        check_encoder_fits(start->config(), gc.num_ws(), gc.w_dim, C, R, concat("'", *a.get("init"), "' (--init)"));
        if ((a.has("offset-weight") || a.has("progressive-every")) && !start->config().e4e)
            throw UsageError(concat("--offset-weight and --progressive-every: '", *a.get("init"), "' is not an e4e encoder"));
        if (iterations && !start->iterative()) {
            // ReStyle grown from a single-pass encoder: its first pass starts where the file is.
            if (start->config().e4e)
                throw UsageError(concat("--iterations: '", *a.get("init"), "' is an e4e encoder; ReStyle grows from a pSp one"));
            start.emplace(PspEncoder::iterative_from(*start, *iterations));
            std::cerr << "--iterations " << *iterations << " from a single-pass encoder: its weights, the stem's "
                      << "reconstruction inputs zero (the first pass gives its codes)\n";
        } else if (iterations) {
            EncoderConfig changed = start->config();
            changed.iterations = *iterations;  // the same network, refining another number of passes
            PspEncoder again(changed);
            again.params() = start->params();
            again.set_w_avg(start->w_avg());
            start.emplace(std::move(again));
        }
        // A new run: --bootstrap (checked below) names its E_0, whatever the file was refining.
        if (a.has("bootstrap")) start->set_bootstrap("");
        config = start->config();
        if (config.e4e) config.active_offsets = config.num_ws - 1;  // the schedule (--progressive-every) sets it
    }
    PspEncoder e(config, o.seed);
    if (start) {
        e.params() = start->params();
        std::cerr << "weights from '" << *a.get("init") << "' (" << e.num_params() << " parameters); a new run: step 0, "
                  << "a fresh Adam, this command's options\n";
    }
    // --bootstrap E0 (ReStyle's encoder bootstrapping): each batch's refinement starts at E0's codes.
    std::optional<PspEncoder> bootstrap;
    if (!a.has("bootstrap") && !e.config().bootstrap.empty())
        throw UsageError(concat("'", *a.get(a.has("resume") ? "resume" : "init"), "' refines the codes of a bootstrapping "
                                "encoder (", e.config().bootstrap, "): give it with --bootstrap E0.safetensors"));
    if (a.has("bootstrap")) {
        if (!e.iterative())
            throw UsageError("--bootstrap starts an iterative (ReStyle) encoder's refinement: give --iterations K "
                             "(or resume / --init an iterative encoder)");
        bootstrap.emplace(load_encoder_for(*a.get("bootstrap"), gc.num_ws(), gc.w_dim, C, R));
        try {
            check_bootstrap(e, *bootstrap);
        } catch (const ValueError& err) {
            throw UsageError(concat("--bootstrap '", *a.get("bootstrap"), "': ", err.what()));
        }
    }
    const TrainRun run{out, curve, steps, every, exported};
    if (device == "cpu") {
        EncoderTrainer t(*cpu_g, e, o, real);
        if (image_loss) t.set_image_loss(loss_spec, std::move(*image_loss));
        if (bootstrap) t.set_bootstrap(*bootstrap);
        if (a.has("resume")) {
            t.resume(*a.get("resume"));
            std::cerr << "resumed '" << *a.get("resume") << "' at step " << t.steps_done() << " (its options apply)\n";
        }
        return train_loop(t, e, run, [&] { return e; });
    }
#if GANINV_CLI_HAS_CUDNN
    CudaEncoderTraining t(model, e, o, std::move(real), cuda_options, bootstrap ? &*bootstrap : nullptr);
    std::cerr << "device: cuda, " << t.device_name() << "\n";
    if (a.has("resume")) {
        t.resume(*a.get("resume"));
        std::cerr << "resumed '" << *a.get("resume") << "' at step " << t.steps_done() << " (its options apply)\n";
    }
    return train_loop(t, e, run, [&] { return t.encoder(); });
#else
    throw UsageError("--device cuda: this ganinv has no GPU encoder");  // refused by encoder_device_option already
#endif
}

const bool train_encoder_registered = register_command(Command{
    "train-encoder",
    "Train a pSp-style encoder for a generator on the CPU or the GPU (generated samples, optionally real images).",
    "--model M.safetensors --out E.safetensors [--steps N] [--batch B] [--seed S] [--lr LR]\n"
    "       [--real-dir D | --real-idx F [--real-count N]] [--ratio R] [--code-weight W] [--pixel-weight W]\n"
    "       [--resume E.safetensors | --init E.safetensors] [--iterations K [--bootstrap E0.safetensors]]\n"
    "       [--e4e [--offset-weight W] [--progressive-every N]]\n"
    "       [--width K] [--blocks-per-stage N] [--lr-decay-steps T [--lr-decay-start S]]\n"
    "       [--loss SPEC [--vgg-weights F] [--lpips-weights F] [--identity-weights F]] [--latent-adversarial W]\n"
    "       [--image-adversarial W] [--discriminator-lr LR] [--r1 GAMMA] [--checkpoint-every N] [--loss-curve F.png]\n"
    "       [--export F.safetensors] [--device cpu|cuda] [--cuda-precision fp32|tf32] [--max-pixels N]",
    {
        {"model", "M.safetensors", "generator weights (frozen)"},
        {"out", "E.safetensors", "encoder file to write (also a checkpoint: --resume continues it)"},
        {"steps", "N", "training steps to run (default 2000; with --resume: steps added, 0 rewrites the checkpoint)"},
        {"batch", "B", "images per step (default 8)"},
        {"seed", "S", "random seed: weights and every batch (default 0)"},
        {"lr", "LR", "Adam learning rate (default 1e-3)"},
        {"lr-decay-steps", "T", "anneal the learning rate on a cosine from --lr to zero at step T (default: constant; the run must end by T; a resumed run keeps its checkpoint's)"},
        {"lr-decay-start", "S", "the step where the decay begins, the rate constant before it (default 0)"},
        {"real-dir", "D", "real images (PNG, JPEG, BMP) mixed into the batches, reconstruction loss only"},
        {"real-idx", "F", "real images from an uncompressed IDX images file (MNIST / Fashion-MNIST "
                          "*-images-idx3-ubyte; gunzip the .gz first), resized as --real-dir's"},
        {"real-count", "N", "take the first N images of --real-idx (default: all)"},
        {"ratio", "R", "fraction of each batch taken from the real images (default 0.5 with --real-dir or --real-idx)"},
        {"code-weight", "W", "weight of the W+ code regression on generated samples (default 1)"},
        {"pixel-weight", "W", "weight of the reconstruction term of G(E(x)) (default 1)"},
        {"loss", "SPEC", "the reconstruction term, as invert's --loss: comma list of TERM[:WEIGHT] of mse (default), "
                         "l1, charbonnier, lpips, vgg, identity (batch mean of the per-image values)"},
        {"vgg-weights", "F", "VGG16 trunk weights (safetensors) for the lpips/vgg terms"},
        {"lpips-weights", "F", "LPIPS linear-layer weights for the lpips term"},
        {"identity-weights", "F", "face-recognition ResNet (safetensors, tools/README_face_api.md) for the identity term"},
        {"iterations", "K", "train an iterative (ReStyle) encoder: it reads [image, G(w)] and refines w from the mean "
                            "code, K passes per batch with a loss and an Adam step each (default: single-pass)"},
        {"bootstrap", "E0.safetensors", "ReStyle's encoder bootstrapping in training: each batch's refinement starts at the codes "
                                        "of this frozen single-pass encoder instead of the mean code (then encode with the same --bootstrap)"},
        {"latent-adversarial", "W", "weight of a latent discriminator's adversarial term: a small MLP trained alongside "
                                    "tells the codes from the mapping network's w, pulling them onto W (e4e used 0.1)"},
        {"image-adversarial", "W", "weight of an image discriminator's adversarial term on the reconstructions "
                                   "(in-domain inversion's domain-guided encoder; with --loss mse,vgg its other terms)"},
        {"discriminator-lr", "LR", "the latent discriminator's Adam learning rate (default 2e-4: e4e's 2e-5 on "
                                   "unit-scale, equalised-learning-rate weights)"},
        {"r1", "GAMMA", "R1 penalty on the discriminators: GAMMA/2 * mean ||dD/dx||^2 on the real samples (default 0: off)"},
        {"e4e", "", "train an e4e encoder: one w plus per-layer offsets w_i = w + delta_i, the offsets' norms "
                    "penalised and enabled one layer at a time"},
        {"offset-weight", "W", "e4e: weight of the sum of the offsets' L2 norms (default 2e-4)"},
        {"progressive-every", "N", "e4e: steps before each further offset joins (default 500, 0 with --init; 0: all from the start)"},
        {"width", "K", "a K times wider encoder than the generator's preset (stem, stages, pyramid, heads; default 1)"},
        {"blocks-per-stage", "N", "residual blocks in each stage (default: the preset's; 1 for small generators)"},
        {"resume", "E.safetensors", "continue a checkpoint written by train-encoder (its options apply)"},
        {"init", "E.safetensors", "start a new run from a trained encoder's network and weights (an exported file or a checkpoint): fine-tune it on other images, with other options or a decaying rate (step 0, a fresh Adam); with --iterations K a single-pass file grows into a ReStyle encoder whose first pass gives its codes"},
        {"loss-curve", "F.png", "loss curve of the whole run, resumed steps included (default: beside --out, E_loss.png)"},
        {"checkpoint-every", "N", "also write --out every N steps (default 0: only at the end)"},
        {"export", "F.safetensors", "at the end also write the encoder alone, without the optimizer state (a fifth "
                                    "of the checkpoint's size): the file to ship for encode and invert --init encoder:"},
        {"device", "DEV", "cpu (default) or cuda: generator, encoder and Adam on the GPU (needs a build with CUDA and "
                          "cuDNN; --loss, the adversaries and --r1 need cpu); checkpoints resume on either device"},
        {"cuda-precision", "P", "--device cuda: fp32 (default, exact) or tf32 tensor-core convolutions in the generator"},
        max_pixels_option(),
    },
    run_train_encoder});

}  // namespace
}  // namespace ganinv::cli
