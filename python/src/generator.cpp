// ganinv.Generator: a StyleGAN2 generator on the CPU. Inputs are read in place (TensorView of
// the caller's array), results are handed to NumPy without copying, and the GIL is released
// while the generator computes.
#include "bindings.hpp"

#include <ganinv/cuda/options.hpp>
#include <ganinv/edit/sampling.hpp>

#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>

#include <atomic>
#include <chrono>
#include <optional>

namespace ganinv::python {

namespace {

Generator* load_generator(const std::string& path, const std::string& device, const std::string& precision) {
    GANINV_CHECK(device == "cpu" || device == "cuda", ValueError, "device must be 'cpu' or 'cuda', got '", device, "'");
    const cuda::Precision p = cuda::parse_precision(precision);  // ValueError naming the choices
    GANINV_CHECK(device == "cpu", Error,
                 "device='cuda': this ganinv package was built for the CPU only (ganinv.cuda_available() is False); "
                 "use device='cpu', or the ganinv tool's --device cuda");
    GANINV_CHECK(p == cuda::Precision::fp32, ValueError, "precision='", precision,
                 "' applies to device='cuda' only; the CPU computes in fp32");
    StyleGAN2<Cpu> model = [&] {
        nb::gil_scoped_release unlocked;
        return StyleGAN2<Cpu>::load(path);
    }();
    return new Generator(std::move(model), path);
}

NumpyFloat mapping(Generator& g, const AnyArray& z, float psi, std::optional<Index> cutoff) {
    const auto view = float_view<2>(z, "z", {kAnySize, g.model.z_dim()});
    GANINV_CHECK(std::isfinite(psi), ValueError, "psi must be finite, got ", psi);
    GANINV_CHECK(!cutoff || *cutoff >= 0, ValueError, "cutoff must be >= 0, got ", cutoff.value_or(0));
    Tensor<float> ws;
    {
        nb::gil_scoped_release unlocked;
        const std::lock_guard lock(g.busy);
        ws = g.model.mapping(view, Truncation{psi, cutoff});
    }
    return to_numpy(std::move(ws));
}

/// The noise modes Python can ask for (explicit noise maps are not exposed).
NoiseMode python_noise_mode(const std::string& noise_mode) {
    const NoiseMode mode = parse_noise_mode(noise_mode);
    GANINV_CHECK(mode != NoiseMode::explicit_maps, ValueError, "noise_mode must be 'const', 'none' or 'random', got '",
                 noise_mode, "'");
    return mode;
}

/// Seconds the library's synthesis took in the last g.synthesis call (of any generator). The
/// overhead benchmark subtracts it from the same call's time seen from Python: the generator's
/// run-to-run noise (milliseconds on a loaded machine) cancels, the binding's cost remains.
std::atomic<double> last_synthesis_seconds{0.0};

NumpyFloat synthesis(Generator& g, const AnyArray& ws, const std::string& noise_mode, std::uint64_t noise_seed) {
    const auto view = float_view<3>(ws, "ws", {kAnySize, g.model.num_ws(), g.model.w_dim()});
    const NoiseMode mode = python_noise_mode(noise_mode);
    Tensor<float> img;
    {
        nb::gil_scoped_release unlocked;
        const std::lock_guard lock(g.busy);
        const auto start = std::chrono::steady_clock::now();
        img = g.model.synthesis(view, NoiseInput<Cpu>{mode, noise_seed});
        last_synthesis_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    return to_numpy(std::move(img));
}

/// d(loss)/d(ws) for d(loss)/d(img) = grad_img: one synthesis forward with its cache, then the
/// backward (the torch.autograd.Function of ganinv.torch calls this).
NumpyFloat synthesis_backward(Generator& g, const AnyArray& ws, const AnyArray& grad_img, const std::string& noise_mode,
                              std::uint64_t noise_seed) {
    const Index r = g.model.resolution();
    const auto ws_view = float_view<3>(ws, "ws", {kAnySize, g.model.num_ws(), g.model.w_dim()});
    const auto grad_view = float_view<4>(grad_img, "grad_img", {ws_view.dim(0), g.model.img_channels(), r, r});
    const NoiseMode mode = python_noise_mode(noise_mode);
    Tensor<float> grad_ws;
    {
        nb::gil_scoped_release unlocked;
        const std::lock_guard lock(g.busy);
        // The backward needs the forward's cache, which keeps its own copy of ws.
        StyleGAN2<Cpu>::Cache cache;
        g.model.synthesis(to_tensor(ws_view), NoiseInput<Cpu>{mode, noise_seed}, &cache);
        grad_ws = g.model.synthesis_backward_ws(cache, to_tensor(grad_view));
    }
    return to_numpy(std::move(grad_ws));
}

/// Seconds per call of the C++ synthesis on `ws` (the view, as g.synthesis passes it), timed in
/// C++ over `repeats` calls: the baseline of the per-call overhead benchmark (docs/python.md).
NumpyFloat seed_z(const Generator& g, long long seed, long long count) {
    GANINV_CHECK(seed >= 0 && seed <= 0xFFFFFFFFLL, ValueError, "seed must be in [0, 2**32), got ", seed);
    GANINV_CHECK(count >= 1 && seed + count - 1 <= 0xFFFFFFFFLL, ValueError,
                 "count must be >= 1 and keep seed + count - 1 below 2**32, got count ", count);
    const Index z_dim = g.model.z_dim();
    Tensor<float> z({count, z_dim});
    for (long long k = 0; k < count; ++k) {
        // One RandomState per seed, as the official generate.py and `ganinv generate --seed`.
        const Tensor<float> row = edit::z_from_seed(static_cast<std::uint32_t>(seed + k), z_dim);
        std::copy(row.data(), row.data() + z_dim, z.data() + k * z_dim);
    }
    return to_numpy(std::move(z));
}

}  // namespace

void bind_generator(nb::module_& m) {
    nb::class_<Generator>(m, "Generator", "A StyleGAN2 generator (mapping + synthesis) on the CPU.")
        .def_static("load", &load_generator, nb::arg("path"), nb::arg("device") = "cpu", nb::arg("precision") = "fp32",
                    nb::rv_policy::take_ownership,
                    "Loads a generator file (safetensors with its config). device='cuda' and precision other than "
                    "'fp32' need a CUDA build (ganinv.cuda_available()).")
        .def_prop_ro("z_dim", [](const Generator& g) { return g.model.z_dim(); })
        .def_prop_ro("w_dim", [](const Generator& g) { return g.model.w_dim(); })
        .def_prop_ro("num_ws", [](const Generator& g) { return g.model.num_ws(); })
        .def_prop_ro("resolution", [](const Generator& g) { return g.model.resolution(); })
        .def_prop_ro("channels", [](const Generator& g) { return g.model.img_channels(); })
        .def_prop_ro("style_dim", [](const Generator& g) { return g.model.style_dim(); })
        .def_prop_ro("path", [](const Generator& g) { return g.path; })
        .def_prop_ro("device", [](const Generator&) { return std::string("cpu"); })
        .def("mapping", &mapping, nb::arg("z"), nb::arg("psi") = 1.0f, nb::arg("cutoff") = nb::none(),
             "ws [N, num_ws, w_dim] from z [N, z_dim] (float32, C-contiguous; read in place). psi < 1 truncates "
             "towards the mean w on the first `cutoff` layers (all when None).")
        .def("synthesis", &synthesis, nb::arg("ws"), nb::arg("noise_mode") = "const", nb::arg("noise_seed") = 0,
             "Images [N, C, R, R] (about [-1, 1], unclamped) from ws [N, num_ws, w_dim] (float32, C-contiguous; read "
             "in place). noise_mode: 'const' (the generator's maps), 'none' or 'random' (from noise_seed).")
        .def("_synthesis_backward", &synthesis_backward, nb::arg("ws"), nb::arg("grad_img"),
             nb::arg("noise_mode") = "const", nb::arg("noise_seed") = 0,
             "d(loss)/d(ws) [N, num_ws, w_dim] given d(loss)/d(images) [N, C, R, R].")
        .def_static("_last_synthesis_seconds", [] { return last_synthesis_seconds.load(); },
                    "Seconds the library's synthesis took inside the last g.synthesis call (overhead benchmark).")
        .def("seed_z", &seed_z, nb::arg("seed"), nb::arg("count") = 1,
             "z [count, z_dim] of the official seeds seed .. seed + count - 1 (numpy RandomState(seed).randn).")
        .def("__repr__", [](const Generator& g) {
            return concat("ganinv.Generator('", g.path, "', resolution=", g.model.resolution(), ", channels=",
                          g.model.img_channels(), ", num_ws=", g.model.num_ws(), ", w_dim=", g.model.w_dim(), ")");
        });
}

}  // namespace ganinv::python
