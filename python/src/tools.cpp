// Images, safetensors files, metrics (PSNR, SSIM) and the editors (SeFa, GANSpace, moving along a
// direction, style mixing) for Python. Arrays cross as in bindings.hpp: read in place where the
// library takes a view, results handed to NumPy without copies.
#include "bindings.hpp"

#include <ganinv/edit/directions.hpp>
#include <ganinv/edit/ganspace.hpp>
#include <ganinv/edit/sefa.hpp>
#include <ganinv/io/safetensors.hpp>
#include <ganinv/metrics/metrics.hpp>

#include <nanobind/stl/map.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <map>
#include <optional>
#include <utility>

namespace ganinv::python {

namespace {

using OptionalLayers = std::optional<std::pair<Index, Index>>;

/// (begin, end) -> LayerRange; None = every w index. end = -1 means "to the last".
edit::LayerRange layer_range(const OptionalLayers& layers) {
    if (!layers) return edit::LayerRange::all();
    return {layers->first, layers->second};
}

NumpyFloat vector_to_numpy(const std::vector<float>& v) {
    Tensor<float> t({static_cast<Index>(v.size())}, v);
    return to_numpy(std::move(t));
}

/// float32 [N, C, H, W] (or [C, H, W]) in [-1, 1] -> the batch's first image, as tensor_to_image.
Image image_from_float(const AnyArray& a) {
    if (a.ndim() == 3) {
        const auto v = float_view<3>(a, "image", {kAnySize, kAnySize, kAnySize});
        return tensor_to_image(Tensor<float>({1, v.dim(0), v.dim(1), v.dim(2)},
                                             std::vector<float>(v.data(), v.data() + v.numel())));
    }
    const auto v = float_view<4>(a, "image", {1, kAnySize, kAnySize, kAnySize});
    return tensor_to_image(to_tensor(v));
}

void save_image_binding(const std::string& path, const AnyArray& image, int jpeg_quality) {
    const Image img = image.dtype() == nb::dtype<float>() ? image_from_float(image) : image_from_array(image, "image");
    nb::gil_scoped_release unlocked;
    save_image(path, img, jpeg_quality);
}

NumpyBytes load_image_binding(const std::string& path, std::uint64_t max_pixels) {
    Image img;
    {
        nb::gil_scoped_release unlocked;
        img = load_image(path, max_pixels);
    }
    return image_to_numpy(std::move(img));
}

NumpyFloat image_to_tensor_binding(const AnyArray& image, int channels) {
    return to_numpy(image_to_tensor(image_from_array(image, "image"), channels));
}

std::map<std::string, NumpyFloat> load_tensors(const std::string& path) {
    std::vector<std::pair<std::string, Tensor<float>>> loaded;
    {
        nb::gil_scoped_release unlocked;
        const SafetensorsFile f(path);
        for (const auto& e : f.entries()) loaded.emplace_back(e.name, f.load(e.name));
    }
    std::map<std::string, NumpyFloat> out;
    for (auto& [name, t] : loaded) out.emplace(name, to_numpy(std::move(t)));
    return out;
}

void save_tensors(const std::string& path, const nb::dict& tensors) {
    SafetensorsWriter w;
    for (auto [key, value] : tensors) {
        const std::string name = nb::cast<std::string>(key);
        const AnyArray a = nb::cast<AnyArray>(value);
        GANINV_CHECK(a.ndim() >= 1, ShapeError, name, ": expected an array of rank >= 1");
        Shape shape;
        for (std::size_t d = 0; d < a.ndim(); ++d) shape.push_back(static_cast<Index>(a.shape(d)));
        expect_host_array(a, name);
        GANINV_CHECK(a.dtype() == nb::dtype<float>(), ValueError, name, ": expected float32, got dtype ", dtype_name(a));
        expect_c_contiguous(a, name, "a float32 array");
        const auto* data = static_cast<const float*>(a.data());
        w.add(name, shape, std::span<const float>(data, static_cast<std::size_t>(shape_numel(shape))));
    }
    nb::gil_scoped_release unlocked;
    w.write(path);
}

/// Two batches [N, C, H, W] of equal shape, read in place.
std::pair<TensorView<const float, 4>, TensorView<const float, 4>> image_pair(const AnyArray& a, const AnyArray& b) {
    const auto va = float_view<4>(a, "a", {kAnySize, kAnySize, kAnySize, kAnySize});
    const auto vb = float_view<4>(b, "b", {va.dim(0), va.dim(1), va.dim(2), va.dim(3)});
    return {va, vb};
}

NumpyDouble psnr_binding(const AnyArray& a, const AnyArray& b, double data_range) {
    const auto [va, vb] = image_pair(a, b);
    std::vector<double> values;
    {
        nb::gil_scoped_release unlocked;
        values = metrics::psnr(va, vb, metrics::DataRange{data_range});
    }
    const std::size_t n = values.size();
    return to_numpy(std::move(values), {n});
}

NumpyDouble ssim_binding(const AnyArray& a, const AnyArray& b, double data_range) {
    const auto [va, vb] = image_pair(a, b);
    std::vector<double> values;
    {
        nb::gil_scoped_release unlocked;
        values = metrics::ssim(to_tensor(va), to_tensor(vb), metrics::DataRange{data_range});
    }
    const std::size_t n = values.size();
    return to_numpy(std::move(values), {n});
}

edit::Directions sefa_binding(Generator& g, Index count, const OptionalLayers& layers, const std::string& torgb) {
    edit::SefaOptions o;
    o.count = count;
    o.layers = layer_range(layers);
    o.torgb = edit::parse_sefa_torgb(torgb);
    nb::gil_scoped_release unlocked;
    const std::lock_guard lock(g.busy);
    return edit::sefa(g.model, o);
}

edit::Directions ganspace_binding(Generator& g, Index count, Index samples, std::uint64_t seed,
                                  const OptionalLayers& layers) {
    edit::GanSpaceOptions o;
    o.count = count;
    o.samples = samples;
    o.seed = seed;
    o.layers = layer_range(layers);
    nb::gil_scoped_release unlocked;
    const std::lock_guard lock(g.busy);
    return edit::ganspace(g.model, o);
}

/// ws [N, num_ws, w_dim] of any generator, read in place.
TensorView<const float, 3> ws_view(const AnyArray& ws, const std::string& name) {
    return float_view<3>(ws, name, {kAnySize, kAnySize, kAnySize});
}

NumpyFloat apply_direction_binding(const AnyArray& ws, const AnyArray& direction, float alpha,
                                   const OptionalLayers& layers) {
    const auto w = ws_view(ws, "ws");
    const auto d = float_view<1>(direction, "direction", {w.dim(2)});
    return to_numpy(edit::apply_direction(to_tensor(w), std::span<const float>(d.data(), static_cast<std::size_t>(d.dim(0))),
                                          alpha, layer_range(layers)));
}

NumpyFloat style_mix_binding(const AnyArray& ws_a, const AnyArray& ws_b, Index begin, Index end) {
    return to_numpy(edit::mix_styles(to_tensor(ws_view(ws_a, "ws_a")), to_tensor(ws_view(ws_b, "ws_b")), begin, end));
}

}  // namespace

void bind_tools(nb::module_& m) {
    m.def("load_image", &load_image_binding, nb::arg("path"), nb::arg("max_pixels") = kDefaultMaxImagePixels,
          "An image file (PNG, JPEG, BMP, ...) as uint8 [H, W, C] (C = 1, 3 or 4).");
    m.def("save_image", &save_image_binding, nb::arg("path"), nb::arg("image"), nb::arg("jpeg_quality") = kDefaultJpegQuality,
          "Writes uint8 [H, W, C] / [H, W], or float32 [C, H, W] / [1, C, H, W] in [-1, 1] (converted as the "
          "official scripts do), in the format the extension names (.png, .jpg, .bmp).");
    m.def("image_to_tensor", &image_to_tensor_binding, nb::arg("image"), nb::arg("channels"),
          "uint8 [H, W, C] -> float32 [1, channels, H, W] in [-1, 1], as `ganinv invert` reads its targets.");
    m.def("load_tensors", &load_tensors, nb::arg("path"),
          "Every tensor of a safetensors file as float32 NumPy arrays (codes from `ganinv invert`, "
          "`generate --out-tensor`, ...).");
    m.def("save_tensors", &save_tensors, nb::arg("path"), nb::arg("tensors"),
          "Writes a dict of float32 arrays as a safetensors file (readable by the ganinv tool, e.g. --init, --ws).");

    nb::module_ metrics_module = m.def_submodule("metrics", "Full-reference image metrics on float32 [N, C, H, W].");
    metrics_module.def("psnr", &psnr_binding, nb::arg("a"), nb::arg("b"), nb::arg("data_range") = 2.0,
                       "Per-image PSNR in dB (data_range 2 for [-1, 1] images, 255 for 8-bit values).");
    metrics_module.def("ssim", &ssim_binding, nb::arg("a"), nb::arg("b"), nb::arg("data_range") = 2.0,
                       "Per-image SSIM (Gaussian window 11, sigma 1.5, as skimage with gaussian_weights).");

    nb::module_ edit_module = m.def_submodule("edit", "Editing directions and code edits.");
    nb::class_<edit::Directions>(edit_module, "Directions", "Editing directions in one space, most important first.")
        .def_prop_ro("directions", [](const edit::Directions& d) { return to_numpy(Tensor<float>(d.directions)); },
                     nb::rv_policy::move, "[K, dim] unit-norm rows")
        .def_prop_ro("stddev", [](const edit::Directions& d) { return vector_to_numpy(d.stddev); }, nb::rv_policy::move)
        .def_prop_ro("eigenvalues", [](const edit::Directions& d) { return vector_to_numpy(d.eigenvalues); }, nb::rv_policy::move)
        .def_prop_ro("explained_variance",
                     [](const edit::Directions& d) { return vector_to_numpy(d.explained_variance); }, nb::rv_policy::move)
        .def_prop_ro("mean", [](const edit::Directions& d) { return vector_to_numpy(d.mean); }, nb::rv_policy::move)
        .def_ro("method", &edit::Directions::method)
        .def_prop_ro("space", [](const edit::Directions& d) { return edit::to_string(d.space); })
        .def_prop_ro("layers", [](const edit::Directions& d) { return std::make_pair(d.layers.begin, d.layers.end); })
        .def("count", &edit::Directions::count)
        .def("sigma", &edit::Directions::sigma, nb::arg("k"), "std of codes along direction k (1 when unknown)")
        .def("save", [](const edit::Directions& d, const std::string& path) { edit::save_directions(path, d); },
             nb::arg("path"))
        .def("apply", [](const edit::Directions& d, const AnyArray& ws, Index k, float sigmas) {
            return to_numpy(edit::apply_direction(to_tensor(ws_view(ws, "ws")), d, k, sigmas));
        }, nb::arg("ws"), nb::arg("k"), nb::arg("sigmas"),
           "ws moved by `sigmas` standard deviations along direction k on the directions' layers.");
    edit_module.def("load_directions", [](const std::string& path) { return edit::load_directions(path); },
                    nb::arg("path"), "Directions written by Directions.save or `ganinv directions`.");
    edit_module.def("sefa", &sefa_binding, nb::arg("g"), nb::arg("count") = 0, nb::arg("layers") = nb::none(),
                    nb::arg("torgb") = "skip",
                    "SeFa directions (closed-form factorisation of the style weights); count 0 = all w_dim.");
    edit_module.def("ganspace", &ganspace_binding, nb::arg("g"), nb::arg("count") = 0, nb::arg("samples") = 100000,
                    nb::arg("seed") = 0, nb::arg("layers") = nb::none(),
                    "GANSpace directions (PCA of sampled w) with their stddev.");
    edit_module.def("apply_direction", &apply_direction_binding, nb::arg("ws"), nb::arg("direction"),
                    nb::arg("alpha"), nb::arg("layers") = nb::none(),
                    "ws + alpha * direction on the w indices [begin, end) of `layers` (all when None).");
    edit_module.def("style_mix", &style_mix_binding, nb::arg("ws_a"), nb::arg("ws_b"), nb::arg("begin"),
                    nb::arg("end"), "ws_a with w indices [begin, end) taken from ws_b (N or 1 codes).");
    bind_interfacegan(edit_module);
}

}  // namespace ganinv::python
