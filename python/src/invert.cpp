// ganinv.invert and ganinv.metrics.lpips: the Inverter (every space and optimizer, chosen by
// name through the library's dispatch, the same as `ganinv invert`) and the LPIPS network. Kept
// in their own translation unit: the Inverter instantiations are the slow part of the build.
#include "bindings.hpp"
#if GANINV_PYTHON_HAS_CUDA
#include "cuda_model.hpp"
#endif

#include <ganinv/invert/dispatch.hpp>
#include <ganinv/loss/loss_spec.hpp>
#include <ganinv/loss/lpips.hpp>

#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <algorithm>
#include <optional>

namespace ganinv::python {

/// Targets as the inverter takes them: float32 [N, C, R, R] in [-1, 1] is read in place; uint8
/// images [N, R, R, C] (C = 1, 3 or 4) are converted as `ganinv invert` converts image files.
Tensor<float> targets_from_array(const AnyArray& a, const StyleGAN2<Cpu>& g) {
    const Index r = g.resolution(), c = g.img_channels();
    if (a.dtype() == nb::dtype<std::uint8_t>()) {
        expect_host_array(a, "targets");
        const std::string want = concat("uint8 images of shape [N, ", r, ", ", r, ", C] (C = 1, 3 or 4)");
        const bool shape_ok = a.ndim() == 4 && a.shape(0) > 0 && static_cast<Index>(a.shape(1)) == r &&
                              static_cast<Index>(a.shape(2)) == r &&
                              (a.shape(3) == 1 || a.shape(3) == 3 || a.shape(3) == 4);
        GANINV_CHECK(shape_ok, ShapeError, "targets: expected ", want, " or float32 [N, ", c, ", ", r, ", ", r,
                     "], got shape ", array_shape_string(a));
        expect_c_contiguous(a, "targets", want);
        const auto n = static_cast<Index>(a.shape(0));
        const int in_channels = static_cast<int>(a.shape(3));
        const std::size_t bytes = static_cast<std::size_t>(r * r * in_channels);
        const auto* pixels = static_cast<const std::uint8_t*>(a.data());
        Tensor<float> out({n, c, r, r});
        for (Index i = 0; i < n; ++i) {
            Image img = make_image(static_cast<int>(r), static_cast<int>(r), in_channels);
            std::copy(pixels + i * bytes, pixels + (i + 1) * bytes, img.pixels.begin());
            const Tensor<float> t = image_to_tensor(img, static_cast<int>(c));
            std::copy(t.data(), t.data() + t.numel(), out.data() + i * t.numel());
        }
        return out;
    }
    return to_tensor(float_view<4>(a, "targets", {kAnySize, c, r, r}));
}

namespace {

/// What ganinv.invert returns: NumPy arrays (handed over without copies) and per-image lists.
struct InvertOutput {
    std::string space;
    nb::object ws, z, styles, images, images_fixed_noise, loss_history;
    nb::list noise;
    std::vector<double> psnr, ssim, mse, psnr_fixed_noise, ssim_fixed_noise;
    std::vector<Index> stopped_at;
    Index steps_run = 0;
    double seconds = 0;
};

nb::object numpy_or_none(Tensor<float>&& t) {
    if (t.numel() == 0) return nb::none();
    return nb::cast(to_numpy(std::move(t)));
}

InvertOutput invert(Generator& g, const AnyArray& targets_array, const std::string& space, const std::string& loss_spec,
                    const std::string& optimizer, Index steps, bool optimize_noise, std::uint64_t seed,
                    const nb::object& init, const nb::object& progress, double lr, bool schedule, double lr_rampup,
                    double lr_rampdown, double w_noise, double noise_regularization, double w_avg_prior, double wplus_spread_prior,
                    std::optional<double> target_loss, Index patience, Index lbfgs_history, Index population,
                    double sigma, Index inner_steps, Index final_steps, std::optional<std::string> vgg_weights,
                    std::optional<std::string> lpips_weights, std::optional<std::string> identity_weights) {
    // Every argument is checked before the work starts, as the ganinv tool does.
    GANINV_CHECK(steps >= 1, ValueError, "steps must be >= 1, got ", steps);
    GANINV_CHECK(lr_rampup >= 0 && lr_rampup <= 1 && lr_rampdown >= 0 && lr_rampdown <= 1, ValueError,
                 "lr_rampup and lr_rampdown are fractions of the run in [0, 1], got ", lr_rampup, " and ", lr_rampdown);
    GANINV_CHECK(w_noise >= 0, ValueError, "w_noise must be >= 0, got ", w_noise);
    Tensor<float> targets;
#if GANINV_PYTHON_HAS_CUDA
    if (g.cuda && on_cuda(targets_array)) {
        // CUDA targets (float32 [N, C, R, R]) come to the host once: the inverter keeps its own copy
        // of the targets and uploads it once per batch.
        const Index r = g.model.resolution();
        const auto shape = float_array_shape<4>(targets_array, "targets", {kAnySize, g.model.img_channels(), r, r});
        GANINV_CHECK(targets_array.device_id() == g.cuda->device(), ValueError, "targets: a CUDA array on cuda:",
                     targets_array.device_id(), ", the generator is on cuda:", g.cuda->device());
        record_address("targets", targets_array.data());
        nb::gil_scoped_release unlocked;
        const std::lock_guard lock(g.busy);  // the copy runs on the generator's stream
        targets = g.cuda->rows_to_host(static_cast<const float*>(targets_array.data()),
                                       Shape(shape.begin(), shape.end()), 0);
    }
#endif
    if (targets.numel() == 0) targets = targets_from_array(targets_array, g.model);

    InverterOptions o;
    o.steps = steps;
    o.seed = seed;
    o.learning_rate = lr;
    o.projector_schedule = schedule;
    o.lr_rampup = lr_rampup;
    o.lr_rampdown = lr_rampdown;
    o.w_noise_factor = w_noise;
    o.optimize_noise = optimize_noise;
    o.noise_regularization = noise_regularization;
    o.w_avg_prior = w_avg_prior;
    o.wplus_spread_prior = wplus_spread_prior;
    o.target_loss = target_loss;
    o.patience = patience;
    o.progress_every = std::max<Index>(1, steps / 100);  // as the tool: every 1%
    if (init.is_none() || nb::isinstance<nb::str>(init)) {
        o.init.kind = parse_init_kind(init.is_none() ? std::string("mean") : nb::cast<std::string>(init));
        o.init.seed = seed;
    } else {
        const AnyArray codes = nb::cast<AnyArray>(init);
        o.init.kind = InitKind::given;
        if (codes.ndim() == 3)
            o.init.codes = to_tensor(float_view<3>(codes, "init", {kAnySize, g.model.num_ws(), g.model.w_dim()}));
        else
            o.init.codes = to_tensor(float_view<2>(codes, "init", {kAnySize, kAnySize}));
    }
    OptimizerSettings settings;
    settings.lbfgs_history = lbfgs_history;
    settings.population = population;
    settings.sigma = sigma;
    settings.inner_steps = inner_steps;
    settings.final_steps = final_steps;
    LossWeightFiles files;
    if (vgg_weights) files.vgg = *vgg_weights;
    if (lpips_weights) files.lpips = *lpips_weights;
    if (identity_weights) files.identity = *identity_weights;
    // On the CPU the loss is built (its weight files read) before the work starts; the CUDA model
    // builds its own on the device, with the same terms and files.
    std::optional<WeightedLossSum<Cpu>> cpu_loss;
    if (!g.cuda) cpu_loss.emplace(build_loss<Cpu>(loss_spec, files));

    nb::object report;  // a callable(step, total_steps, losses), or None
    if (nb::isinstance<nb::bool_>(progress))
        report = nb::cast<bool>(progress) ? nb::module_::import_("ganinv._progress").attr("print_progress") : nb::none();
    else if (!progress.is_none()) {
        GANINV_CHECK(PyCallable_Check(progress.ptr()), ValueError,
                     "progress must be True, False, None or a callable(step, total_steps, losses)");
        report = progress;
    }
    if (!report.is_none())
        o.on_progress = [&report](const InversionProgress& p) {
            nb::gil_scoped_acquire locked;  // the inversion runs without the GIL
            report(p.step, p.total_steps, *p.loss);
        };

    InversionResult r;
    {
        nb::gil_scoped_release unlocked;
        const std::lock_guard lock(g.busy);
#if GANINV_PYTHON_HAS_CUDA
        if (g.cuda) r = g.cuda->invert(space, optimizer, settings, loss_spec, files, o, targets);
#endif
        if (cpu_loss) r = run_inversion(space, optimizer, settings, g.model, *cpu_loss, o, targets);
    }

    InvertOutput out;
    out.space = r.space;
    out.ws = numpy_or_none(std::move(r.ws));
    out.z = numpy_or_none(std::move(r.z));
    out.styles = numpy_or_none(std::move(r.styles));
    out.images = numpy_or_none(std::move(r.reconstruction));
    out.images_fixed_noise = numpy_or_none(std::move(r.reconstruction_fixed_noise));
    for (Tensor<float>& map : r.noise) out.noise.append(to_numpy(std::move(map)));
    const std::size_t n = static_cast<std::size_t>(targets.dim(0));
    std::vector<double> history;
    history.reserve(r.loss_history.size() * n);
    for (const auto& step : r.loss_history) history.insert(history.end(), step.begin(), step.end());
    out.loss_history = nb::cast(to_numpy(std::move(history), {r.loss_history.size(), n}));
    for (const auto& m : r.metrics) {
        out.psnr.push_back(m.psnr);
        out.ssim.push_back(m.ssim);
        out.mse.push_back(m.mse);
    }
    for (const auto& m : r.metrics_fixed_noise) {
        out.psnr_fixed_noise.push_back(m.psnr);
        out.ssim_fixed_noise.push_back(m.ssim);
    }
    out.stopped_at = r.stopped_at;
    out.steps_run = r.steps_run;
    out.seconds = r.seconds;
    return out;
}

NumpyDouble lpips(const AnyArray& a, const AnyArray& b, const std::string& lpips_weights,
                  std::optional<std::string> vgg_weights) {
    const auto va = float_view<4>(a, "a", {kAnySize, kAnySize, kAnySize, kAnySize});
    const auto vb = float_view<4>(b, "b", {va.dim(0), va.dim(1), va.dim(2), va.dim(3)});
    std::vector<double> d;
    {
        nb::gil_scoped_release unlocked;
        std::optional<std::filesystem::path> vgg;
        if (vgg_weights) vgg = *vgg_weights;
        Lpips<Cpu> net(lpips_trunk(lpips_weights, vgg), Lpips<Cpu>::load_lin(lpips_weights));
        d = net.distance(to_tensor(va), to_tensor(vb));
    }
    const std::size_t n = d.size();
    return to_numpy(std::move(d), {n});
}

}  // namespace

void bind_invert(nb::module_& m) {
    nb::class_<InvertOutput>(m, "InversionResult", "What ganinv.invert found, per image.")
        .def_ro("space", &InvertOutput::space, "the latent space: z, w, wplus or s")
        .def_ro("ws", &InvertOutput::ws, "codes [N, num_ws, w_dim] (S space: the ws it started from)")
        .def_ro("z", &InvertOutput::z, "z [N, z_dim] (Z space), else None")
        .def_ro("styles", &InvertOutput::styles, "styles [N, style_dim] (S space), else None")
        .def_ro("noise", &InvertOutput::noise, "optimised noise maps, one [N, R, R] per layer (optimize_noise)")
        .def_ro("images", &InvertOutput::images, "reconstructions [N, C, R, R] (unclamped)")
        .def_ro("images_fixed_noise", &InvertOutput::images_fixed_noise,
                "reconstructions with the generator's fixed noise (optimize_noise), else None")
        .def_ro("loss_history", &InvertOutput::loss_history, "float64 [steps, N]: each image's loss per step")
        .def_ro("psnr", &InvertOutput::psnr, "per image, dB: reconstruction (clamped) vs target, data range 2")
        .def_ro("ssim", &InvertOutput::ssim, "per image, as psnr")
        .def_ro("mse", &InvertOutput::mse, "per image, as psnr")
        .def_ro("psnr_fixed_noise", &InvertOutput::psnr_fixed_noise, "per image, images_fixed_noise (optimize_noise)")
        .def_ro("ssim_fixed_noise", &InvertOutput::ssim_fixed_noise, "per image, images_fixed_noise (optimize_noise)")
        .def_ro("stopped_at", &InvertOutput::stopped_at, "per image, the step it stopped at")
        .def_ro("steps_run", &InvertOutput::steps_run)
        .def_ro("seconds", &InvertOutput::seconds, "wall time of the optimisation")
        .def("__repr__", [](const InvertOutput& r) {
            double mean_psnr = 0;
            for (double p : r.psnr) mean_psnr += p / static_cast<double>(std::max<std::size_t>(1, r.psnr.size()));
            return concat("ganinv.InversionResult(space='", r.space, "', images=", r.psnr.size(),
                          ", steps_run=", r.steps_run, ", mean_psnr=", mean_psnr, ", seconds=", r.seconds, ")");
        });

    const InverterOptions defaults;  // the library's defaults, which the ganinv tool uses too
    const OptimizerSettings optimizer_defaults;
    m.def("invert", &invert, nb::arg("g"), nb::arg("targets"), nb::kw_only(), nb::arg("space") = "wplus",
          nb::arg("loss") = "mse", nb::arg("optimizer") = "adam", nb::arg("steps") = 500,
          nb::arg("optimize_noise") = false, nb::arg("seed") = 0, nb::arg("init") = nb::none(),
          nb::arg("progress") = true, nb::arg("lr") = defaults.learning_rate, nb::arg("schedule") = true,
          nb::arg("lr_rampup") = defaults.lr_rampup, nb::arg("lr_rampdown") = defaults.lr_rampdown,
          nb::arg("w_noise") = defaults.w_noise_factor,
          nb::arg("noise_regularization") = defaults.noise_regularization, nb::arg("w_avg_prior") = 0.0,
          nb::arg("wplus_spread_prior") = 0.0, nb::arg("target_loss") = nb::none(), nb::arg("patience") = 0,
          nb::arg("lbfgs_history") = optimizer_defaults.lbfgs_history,
          nb::arg("population") = optimizer_defaults.population, nb::arg("sigma") = optimizer_defaults.sigma,
          nb::arg("inner_steps") = optimizer_defaults.inner_steps, nb::arg("final_steps") = optimizer_defaults.final_steps, nb::arg("vgg_weights") = nb::none(), nb::arg("lpips_weights") = nb::none(),
          nb::arg("identity_weights") = nb::none(),
          "Finds the codes of target images (see ganinv/__init__.pyi for every argument).");
    m.def("_lpips", &lpips, nb::arg("a"), nb::arg("b"), nb::arg("lpips_weights"), nb::arg("vgg_weights") = nb::none());
}

}  // namespace ganinv::python
