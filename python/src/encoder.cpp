// ganinv.Encoder: an encoder file (pSp, e4e or ReStyle, trained by `ganinv train-encoder`) for
// Python: images -> codes in one pass (or K refinement passes), the learning-based inversion; its
// codes start ganinv.invert (init=...) for the hybrid one. The GIL is released while it computes.
#include "bindings.hpp"

#include <ganinv/invert/encoder_refine.hpp>
#include <ganinv/metrics/metrics.hpp>
#include <ganinv/models/encoder_file.hpp>

#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <chrono>
#include <mutex>
#include <optional>

namespace ganinv::python {

namespace {

struct Encoder {
    PspEncoder model;
    std::string path;
    std::mutex busy;
};

struct EncodeOutput {
    nb::object ws, images, psnr_per_iteration;
    std::vector<double> psnr, ssim;
    Index iterations = 1;
    double seconds = 0;
};

Encoder* load_encoder_binding(const std::string& path) {
    PspEncoder e = [&] {
        nb::gil_scoped_release unlocked;
        return load_encoder(path);
    }();
    return new Encoder{std::move(e), path, {}};
}

EncodeOutput encode(Encoder& e, Generator& g, const AnyArray& images, std::optional<Index> iterations, Encoder* bootstrap) {
    // Checked before any work, as `ganinv encode` does: the generator, the iterations, the
    // bootstrapping encoder (never `e` itself: one of the two is iterative), the images.
    check_encoder_fits(e.model.config(), g.model.num_ws(), g.model.w_dim(), g.model.img_channels(), g.model.resolution(),
                       "'" + e.path + "'");
    const Index K = iterations.value_or(e.model.config().iterations);
    check_refinement_iterations(e.model, K);
    check_refinement_start(e.model, bootstrap != nullptr);
    if (bootstrap) check_bootstrap(e.model, bootstrap->model);
    const Tensor<float> targets = targets_from_array(images, g.model);
    RefineState s;
    std::vector<std::vector<metrics::Comparison>> scores;  // per iteration, per image
    const auto start = std::chrono::steady_clock::now();
    {
        nb::gil_scoped_release unlocked;
        const auto run = [&] {
            s = encode_images(
                g.model, e.model, targets, K,
                [&](Index, const RefineState& it) { scores.push_back(metrics::compare_reconstruction(it.reconstruction, targets)); },
                bootstrap ? &bootstrap->model : nullptr);
        };
        // All the objects it reads, locked together (one scoped_lock avoids a lock-order deadlock
        // with a thread encoding through the bootstrapping encoder itself).
        if (bootstrap) {
            const std::scoped_lock lock(e.busy, g.busy, bootstrap->busy);
            run();
        } else {
            const std::scoped_lock lock(e.busy, g.busy);
            run();
        }
    }
    EncodeOutput out;
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    out.iterations = K;
    const std::size_t n = static_cast<std::size_t>(targets.dim(0));
    std::vector<double> per_iteration;
    for (const auto& row : scores)
        for (const auto& c : row) per_iteration.push_back(c.psnr);
    for (const auto& c : scores.back()) {
        out.psnr.push_back(c.psnr);
        out.ssim.push_back(c.ssim);
    }
    out.psnr_per_iteration = nb::cast(to_numpy(std::move(per_iteration), {scores.size(), n}));
    out.ws = nb::cast(to_numpy(std::move(s.codes)));
    out.images = nb::cast(to_numpy(std::move(s.reconstruction)));
    return out;
}

}  // namespace

void bind_encoder(nb::module_& m) {
    nb::class_<EncodeOutput>(m, "EncodeResult", "What ganinv.Encoder.encode found, per image.")
        .def_ro("ws", &EncodeOutput::ws, "codes [N, num_ws, w_dim] (W+): what ganinv.invert's init= takes")
        .def_ro("images", &EncodeOutput::images, "reconstructions [N, C, R, R] (unclamped, the generator's constant noise)")
        .def_ro("psnr", &EncodeOutput::psnr, "per image, dB, after the last pass: as ganinv.invert's psnr")
        .def_ro("ssim", &EncodeOutput::ssim, "per image, after the last pass")
        .def_ro("psnr_per_iteration", &EncodeOutput::psnr_per_iteration, "float64 [iterations, N]: PSNR after each pass")
        .def_ro("iterations", &EncodeOutput::iterations)
        .def_ro("seconds", &EncodeOutput::seconds, "wall time of the passes and syntheses")
        .def("__repr__", [](const EncodeOutput& r) {
            double mean = 0;
            for (double p : r.psnr) mean += p / static_cast<double>(std::max<std::size_t>(1, r.psnr.size()));
            return concat("ganinv.EncodeResult(images=", r.psnr.size(), ", iterations=", r.iterations, ", mean_psnr=", mean,
                          ", seconds=", r.seconds, ")");
        });

    nb::class_<Encoder>(m, "Encoder", "An encoder file (pSp, e4e or ReStyle) for one generator, on the CPU.")
        .def_static("load", &load_encoder_binding, nb::arg("path"), nb::rv_policy::take_ownership,
                    "Loads an encoder file written by `ganinv train-encoder` (a checkpoint or its --export).")
        .def_prop_ro("num_ws", [](const Encoder& e) { return e.model.num_ws(); })
        .def_prop_ro("w_dim", [](const Encoder& e) { return e.model.w_dim(); })
        .def_prop_ro("resolution", [](const Encoder& e) { return e.model.resolution(); })
        .def_prop_ro("channels", [](const Encoder& e) { return e.model.image_channels(); })
        .def_prop_ro("num_params", [](const Encoder& e) { return e.model.num_params(); })
        .def_prop_ro("architecture", [](const Encoder& e) { return std::string(e.model.config().e4e ? "e4e" : "psp"); })
        .def_prop_ro("iterative", [](const Encoder& e) { return e.model.iterative(); })
        .def_prop_ro("iterations", [](const Encoder& e) { return e.model.config().iterations; },
                     "refinement passes it was trained with (1 for a single-pass encoder)")
        .def_prop_ro("path", [](const Encoder& e) { return e.path; })
        .def("encode", &encode, nb::arg("g"), nb::arg("images"), nb::arg("iterations") = nb::none(),
             nb::arg("bootstrap") = nb::none(),
             "Codes of images (float32 [N, C, R, R] in [-1, 1], or uint8 [N, R, R, C]) for the "
             "generator g it was trained for: one pass, or `iterations` refinement passes of an iterative "
             "encoder (default: the number it was trained with); `bootstrap` (a single-pass Encoder) starts "
             "the refinement at its codes instead of the mean code (ReStyle's encoder bootstrapping; "
             "required for an encoder trained with `train-encoder --bootstrap`).")
        .def_prop_ro("bootstrap", [](const Encoder& e) { return e.model.config().bootstrap; },
                     "fingerprint of the single-pass encoder it was trained to refine ('' : the mean code)")
        .def("__repr__", [](const Encoder& e) {
            return concat("ganinv.Encoder('", e.path, "', architecture='", e.model.config().e4e ? "e4e" : "psp",
                          "', iterations=", e.model.config().iterations, ", num_ws=", e.model.num_ws(), ", w_dim=",
                          e.model.w_dim(), ")");
        });
}

}  // namespace ganinv::python
