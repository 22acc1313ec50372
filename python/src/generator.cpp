// ganinv.Generator: a StyleGAN2 generator on the CPU, or on a GPU (device="cuda", through
// cuda_model.hpp). Inputs are read in place (a TensorView of the caller's array on the CPU; the
// caller's device pointer on the GPU), results are handed over without copying (NumPy arrays on the
// CPU, DLPack arrays on the GPU), and the GIL is released while the generator computes.
#include "bindings.hpp"
#if GANINV_PYTHON_HAS_CUDA
#include "cuda_model.hpp"
#endif

#include <ganinv/cuda/options.hpp>
#include <ganinv/edit/sampling.hpp>

#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <optional>

namespace ganinv::python {

std::string Generator::device() const {
#if GANINV_PYTHON_HAS_CUDA
    if (cuda) return concat("cuda:", cuda->device());
#endif
    return "cpu";
}

bool cuda_available() {
#if GANINV_PYTHON_HAS_CUDA
    return CudaModel::available();
#else
    return false;
#endif
}

namespace {

/// "cpu" -> -1, "cuda" -> 0, "cuda:N" -> N; anything else is a ValueError.
int parse_device(const std::string& device) {
    if (device == "cpu") return -1;
    if (device == "cuda") return 0;
    const std::string index = device.rfind("cuda:", 0) == 0 ? device.substr(5) : std::string();
    const bool digits = !index.empty() && index.size() <= 4 &&
                        std::all_of(index.begin(), index.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
    GANINV_CHECK(digits, ValueError, "device must be 'cpu', 'cuda' or 'cuda:N', got '", device, "'");
    return std::stoi(index);
}

Generator* load_generator(const std::string& path, const std::string& device, const std::string& precision) {
    const int cuda_index = parse_device(device);
    const cuda::Precision p = cuda::parse_precision(precision);  // ValueError naming the choices
    if (cuda_index < 0) {
        GANINV_CHECK(p == cuda::Precision::fp32, ValueError, "precision='", precision,
                     "' applies to device='cuda' only; the CPU computes in fp32");
        StyleGAN2<Cpu> model = [&] {
            nb::gil_scoped_release unlocked;
            return StyleGAN2<Cpu>::load(path);
        }();
        return new Generator(std::move(model), path);
    }
#if GANINV_PYTHON_HAS_CUDA
    nb::gil_scoped_release unlocked;
    StyleGAN2<Cpu> host = StyleGAN2<Cpu>::load(path);  // first: a bad file is named before the GPU is touched
    auto model = std::make_shared<CudaModel>(path, cuda_index, precision);
    return new Generator(std::move(host), path, std::move(model));
#else
    throw Error(concat("device='", device, "': this ganinv package was built for the CPU only (nvcc was not found "
                       "when it was built; ganinv.cuda_available() is False); use device='cpu', or rebuild the "
                       "package on a machine with the CUDA toolkit"));
#endif
}

void expect_no_stream(const Generator& g, const StreamArg& stream) {
    GANINV_CHECK(!stream || g.cuda, ValueError, "stream applies to generators loaded with device='cuda'; this one is "
                 "on the CPU");
}

#if GANINV_PYTHON_HAS_CUDA
/// The caller's rows for the CUDA model: a CUDA array of the model's GPU is read in place; a host
/// array is uploaded by the model.
RowsIn cuda_rows(const Generator& g, const AnyArray& a, const std::string& name, Index rows) {
    if (on_cuda(a)) {
        GANINV_CHECK(a.device_id() == g.cuda->device(), ValueError, name, ": a CUDA array on cuda:", a.device_id(),
                     ", the generator is on cuda:", g.cuda->device(), " (move it there first)");
    } else {
        expect_host_array(a, name);
    }
    const auto* data = static_cast<const float*>(a.data());
    record_address(name, data);
    return {data, rows, on_cuda(a) ? Placement::device : Placement::host};
}

/// A device result as a DLPack array (torch.from_dlpack / cupy.from_dlpack wrap it, no copy).
nb::object device_array(DeviceArray&& d) {
    nb::capsule owner(d.owner, d.release);
    record_address("return", d.data);
    // array_api: an object with __dlpack__ and __dlpack_device__ (a bare DLPack capsule could be
    // consumed only once and would not say where it lives).
    return nb::cast(nb::ndarray<nb::array_api, float>(d.data, d.shape.size(), d.shape.data(), owner, nullptr,
                                                      nb::dtype<float>(), nb::device::cuda::value, d.device));
}

/// Runs `compute` (-> DeviceArray) without the GIL, on the generator's lock; a host input gets a
/// NumPy result (copied back), a device input a DLPack one.
template <class Compute>
nb::object run_on_cuda(Generator& g, Placement input, Compute&& compute) {
    DeviceArray out;
    Tensor<float> host;
    {
        nb::gil_scoped_release unlocked;
        const std::lock_guard lock(g.busy);
        out = compute();
        if (input == Placement::host) host = g.cuda->to_host(std::move(out));
    }
    if (input == Placement::host) return nb::cast(to_numpy(std::move(host)));
    return device_array(std::move(out));
}
#endif

nb::object mapping(Generator& g, const AnyArray& z, float psi, std::optional<Index> cutoff, StreamArg stream) {
    GANINV_CHECK(std::isfinite(psi), ValueError, "psi must be finite, got ", psi);
    GANINV_CHECK(!cutoff || *cutoff >= 0, ValueError, "cutoff must be >= 0, got ", cutoff.value_or(0));
    expect_no_stream(g, stream);
#if GANINV_PYTHON_HAS_CUDA
    if (g.cuda) {
        const auto shape = float_array_shape<2>(z, "z", {kAnySize, g.model.z_dim()});
        const RowsIn rows = cuda_rows(g, z, "z", shape[0]);
        return run_on_cuda(g, rows.placement,
                           [&] { return g.cuda->mapping(rows, Truncation{psi, cutoff}, stream.value_or(0)); });
    }
#endif
    const auto view = float_view<2>(z, "z", {kAnySize, g.model.z_dim()});
    Tensor<float> ws;
    {
        nb::gil_scoped_release unlocked;
        const std::lock_guard lock(g.busy);
        ws = g.model.mapping(view, Truncation{psi, cutoff});
    }
    return nb::cast(to_numpy(std::move(ws)));
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

nb::object synthesis(Generator& g, const AnyArray& ws, const std::string& noise_mode, std::uint64_t noise_seed,
                     StreamArg stream) {
    const NoiseMode mode = python_noise_mode(noise_mode);
    expect_no_stream(g, stream);
#if GANINV_PYTHON_HAS_CUDA
    if (g.cuda) {
        const auto shape = float_array_shape<3>(ws, "ws", {kAnySize, g.model.num_ws(), g.model.w_dim()});
        const RowsIn rows = cuda_rows(g, ws, "ws", shape[0]);
        return run_on_cuda(g, rows.placement, [&] {
            // The library's share of the call: queueing the work (the GPU runs it asynchronously).
            const auto start = std::chrono::steady_clock::now();
            DeviceArray out = g.cuda->synthesis(rows, mode, noise_seed, stream.value_or(0));
            last_synthesis_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            return out;
        });
    }
#endif
    const auto view = float_view<3>(ws, "ws", {kAnySize, g.model.num_ws(), g.model.w_dim()});
    Tensor<float> img;
    {
        nb::gil_scoped_release unlocked;
        const std::lock_guard lock(g.busy);
        const auto start = std::chrono::steady_clock::now();
        img = g.model.synthesis(view, NoiseInput<Cpu>{mode, noise_seed});
        last_synthesis_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    return nb::cast(to_numpy(std::move(img)));
}

/// d(loss)/d(ws) for d(loss)/d(img) = grad_img: one synthesis forward with its cache, then the
/// backward (the torch.autograd.Function of ganinv.torch calls this).
nb::object synthesis_backward(Generator& g, const AnyArray& ws, const AnyArray& grad_img, const std::string& noise_mode,
                              std::uint64_t noise_seed, StreamArg stream) {
    const Index r = g.model.resolution();
    expect_no_stream(g, stream);
#if GANINV_PYTHON_HAS_CUDA
    if (g.cuda) {
        const NoiseMode mode = python_noise_mode(noise_mode);
        const auto shape = float_array_shape<3>(ws, "ws", {kAnySize, g.model.num_ws(), g.model.w_dim()});
        float_array_shape<4>(grad_img, "grad_img", {shape[0], g.model.img_channels(), r, r});
        const RowsIn w = cuda_rows(g, ws, "ws", shape[0]);
        const RowsIn grad = cuda_rows(g, grad_img, "grad_img", shape[0]);
        return run_on_cuda(g, w.placement, [&] {
            return g.cuda->synthesis_backward(w, grad, mode, noise_seed, stream.value_or(0));
        });
    }
#endif
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
    return nb::cast(to_numpy(std::move(grad_ws)));
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
    nb::class_<Generator>(m, "Generator", "A StyleGAN2 generator (mapping + synthesis) on the CPU or a GPU.")
        .def_static("load", &load_generator, nb::arg("path"), nb::arg("device") = "cpu", nb::arg("precision") = "fp32",
                    nb::rv_policy::take_ownership,
                    "Loads a generator file (safetensors with its config). device: 'cpu', 'cuda' or 'cuda:N' (needs "
                    "ganinv.cuda_available()); precision 'tf32' or 'bf16' (tensor-core convolutions) on CUDA only.")
        .def_prop_ro("z_dim", [](const Generator& g) { return g.model.z_dim(); })
        .def_prop_ro("w_dim", [](const Generator& g) { return g.model.w_dim(); })
        .def_prop_ro("num_ws", [](const Generator& g) { return g.model.num_ws(); })
        .def_prop_ro("resolution", [](const Generator& g) { return g.model.resolution(); })
        .def_prop_ro("channels", [](const Generator& g) { return g.model.img_channels(); })
        .def_prop_ro("style_dim", [](const Generator& g) { return g.model.style_dim(); })
        .def_prop_ro("path", [](const Generator& g) { return g.path; })
        .def_prop_ro("device", &Generator::device, "'cpu' or 'cuda:N'")
        .def_prop_ro("device_name", [](const Generator& g) {
#if GANINV_PYTHON_HAS_CUDA
            if (g.cuda) return g.cuda->device_name();
#endif
            (void)g;
            return std::string("cpu");
        }, "the GPU and its convolution precision (device='cuda'), else 'cpu'")
        .def("mapping", &mapping, nb::arg("z"), nb::arg("psi") = 1.0f, nb::arg("cutoff") = nb::none(),
             nb::arg("stream") = nb::none(),
             "ws [N, num_ws, w_dim] from z [N, z_dim] (float32, C-contiguous; read in place). psi < 1 truncates "
             "towards the mean w on the first `cutoff` layers (all when None). On a CUDA generator a CUDA z gives a "
             "CUDA result (DLPack) and a host z a NumPy one; `stream` (an int cudaStream_t, None = the default "
             "stream) orders the work after what is queued there and the result before what is queued later.")
        .def("synthesis", &synthesis, nb::arg("ws"), nb::arg("noise_mode") = "const", nb::arg("noise_seed") = 0,
             nb::arg("stream") = nb::none(),
             "Images [N, C, R, R] (about [-1, 1], unclamped) from ws [N, num_ws, w_dim] (float32, C-contiguous; read "
             "in place). noise_mode: 'const' (the generator's maps), 'none' or 'random' (from noise_seed). CUDA "
             "generators: results where ws lives, `stream` as for mapping.")
        .def("_synthesis_backward", &synthesis_backward, nb::arg("ws"), nb::arg("grad_img"),
             nb::arg("noise_mode") = "const", nb::arg("noise_seed") = 0, nb::arg("stream") = nb::none(),
             "d(loss)/d(ws) [N, num_ws, w_dim] given d(loss)/d(images) [N, C, R, R].")
        .def_static("_last_synthesis_seconds", [] { return last_synthesis_seconds.load(); },
                    "Seconds the library's synthesis took inside the last g.synthesis call (overhead benchmark).")
        .def("seed_z", &seed_z, nb::arg("seed"), nb::arg("count") = 1,
             "z [count, z_dim] of the official seeds seed .. seed + count - 1 (numpy RandomState(seed).randn).")
        .def("__repr__", [](const Generator& g) {
            return concat("ganinv.Generator('", g.path, "', resolution=", g.model.resolution(), ", channels=",
                          g.model.img_channels(), ", num_ws=", g.model.num_ws(), ", w_dim=", g.model.w_dim(),
                          g.cuda ? concat(", device='", g.device(), "'") : std::string(), ")");
        });
}

}  // namespace ganinv::python
