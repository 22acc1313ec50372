// ganinv.edit.interfacegan: InterFaceGAN boundaries (ganinv/edit/interfacegan.hpp) for Python:
// fit(codes, labels) with the linear SVM or logistic regression and their options, the paper's
// top/bottom-ratio recipe from attribute scores, and conditional directions. Its own translation
// unit: the solvers pull in Eigen's dense decompositions, which the other bindings do not need.
#include "bindings.hpp"

#include <ganinv/edit/interfacegan.hpp>

#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>

namespace ganinv::python {

namespace {

/// Codes [N, dim] as the solvers take them (an owning tensor; the solvers copy into doubles anyway).
Tensor<float> codes_from_array(const AnyArray& codes, const std::string& name) {
    return to_tensor(float_view<2>(codes, name, {kAnySize, kAnySize}));
}

template <class T>
T load_as(const std::uint8_t* p) {
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

/// One label of 8, 16, 32 or 64 bits, widened to Wide (std::int64_t or std::uint64_t).
template <class Wide, class T8, class T16, class T32, class T64>
Wide read_label(const std::uint8_t* p, int bits) {
    switch (bits) {
        case 8: return load_as<T8>(p);
        case 16: return load_as<T16>(p);
        case 32: return load_as<T32>(p);
        default: return load_as<T64>(p);
    }
}

/// Labels [N] of any integer or bool dtype, 0/1 or -1/+1 (the library checks that both classes
/// are present). Floats are refused rather than rounded: 0.7 is not a class.
std::vector<int> labels_from_array(const AnyArray& labels, Index n) {
    expect_host_array(labels, "labels");
    const nb::dlpack::dtype t = labels.dtype();
    const bool integral = t.code == static_cast<std::uint8_t>(nb::dlpack::dtype_code::Int) ||
                          t.code == static_cast<std::uint8_t>(nb::dlpack::dtype_code::UInt) ||
                          t.code == static_cast<std::uint8_t>(nb::dlpack::dtype_code::Bool);
    const std::string want = concat("integer or bool labels of shape [", n, "] (0/1 or -1/+1, one per code)");
    GANINV_CHECK(integral && (t.bits == 8 || t.bits == 16 || t.bits == 32 || t.bits == 64) && t.lanes == 1,
                 ValueError, "labels: expected ", want, ", got dtype ", dtype_name(labels));
    GANINV_CHECK(labels.ndim() == 1 && static_cast<Index>(labels.shape(0)) == n, ShapeError, "labels: expected ", want,
                 ", got shape ", array_shape_string(labels));
    const bool is_signed = t.code == static_cast<std::uint8_t>(nb::dlpack::dtype_code::Int);
    const auto* bytes = static_cast<const std::uint8_t*>(labels.data());
    const std::int64_t stride = labels.stride(0) * (t.bits / 8);  // nanobind's strides count elements
    std::vector<int> out(static_cast<std::size_t>(n));
    for (Index i = 0; i < n; ++i) {
        const std::uint8_t* p = bytes + i * stride;
        if (is_signed) {
            const auto v = read_label<std::int64_t, std::int8_t, std::int16_t, std::int32_t, std::int64_t>(p, t.bits);
            GANINV_CHECK(v >= -1 && v <= 1, ValueError, "labels: label ", i, " is ", v, " (expected 0/1 or -1/+1)");
            out[static_cast<std::size_t>(i)] = static_cast<int>(v);
        } else {  // unsigned and bool
            const auto v = read_label<std::uint64_t, std::uint8_t, std::uint16_t, std::uint32_t, std::uint64_t>(p, t.bits);
            GANINV_CHECK(v <= 1, ValueError, "labels: label ", i, " is ", v, " (expected 0/1 or -1/+1)");
            out[static_cast<std::size_t>(i)] = static_cast<int>(v);
        }
    }
    return out;
}

/// Rejects an option that the chosen method does not read, so that a typo of the method does not
/// silently ignore the user's settings.
template <class T>
void refuse_option(const std::optional<T>& value, const char* option, const char* method, const std::string& chosen) {
    GANINV_CHECK(!value, ValueError, "interfacegan.fit: ", option, " is an option of method='", method,
                 "', not of method='", chosen, "'");
}

edit::SvmOptions svm_options(std::optional<double> c, std::optional<Index> max_epochs, std::optional<double> tolerance,
                             std::optional<std::uint64_t> seed) {
    edit::SvmOptions o;
    if (c) o.c = *c;
    if (max_epochs) o.max_epochs = *max_epochs;
    if (tolerance) o.tolerance = *tolerance;
    if (seed) o.seed = *seed;
    return o;
}

edit::LinearBoundary fit(const AnyArray& codes_array, const AnyArray& labels_array, const std::string& method,
                         std::optional<double> c, std::optional<Index> max_epochs, std::optional<std::uint64_t> seed,
                         std::optional<double> l2, std::optional<Index> max_iterations, std::optional<double> tolerance) {
    const Tensor<float> codes = codes_from_array(codes_array, "codes");
    const std::vector<int> labels = labels_from_array(labels_array, codes.dim(0));
    if (method == "svm") {
        refuse_option(l2, "l2", "logistic", method);
        refuse_option(max_iterations, "max_iterations", "logistic", method);
        const edit::SvmOptions o = svm_options(c, max_epochs, tolerance, seed);
        nb::gil_scoped_release unlocked;
        return edit::train_linear_svm(codes, labels, o);
    }
    if (method == "logistic") {
        refuse_option(c, "c", "svm", method);
        refuse_option(max_epochs, "max_epochs", "svm", method);
        refuse_option(seed, "seed", "svm", method);
        edit::LogisticOptions o;
        if (l2) o.l2 = *l2;
        if (max_iterations) o.max_iterations = *max_iterations;
        if (tolerance) o.tolerance = *tolerance;
        GANINV_CHECK(o.max_iterations >= 1, ValueError, "interfacegan.fit: max_iterations must be >= 1, got ",
                     o.max_iterations);
        nb::gil_scoped_release unlocked;
        return edit::train_logistic_regression(codes, labels, o);
    }
    throw ValueError("interfacegan.fit: unknown method '" + method + "' (svm or logistic)");
}

edit::LinearBoundary from_scores(const AnyArray& codes_array, const AnyArray& scores_array, double ratio,
                                 std::optional<double> c, std::optional<Index> max_epochs,
                                 std::optional<double> tolerance, std::optional<std::uint64_t> seed) {
    const Tensor<float> codes = codes_from_array(codes_array, "codes");
    const auto scores = float_view<1>(scores_array, "scores", {codes.dim(0)});
    const edit::SvmOptions o = svm_options(c, max_epochs, tolerance, seed);
    nb::gil_scoped_release unlocked;
    return edit::interfacegan_boundary(codes, std::span<const float>(scores.data(), static_cast<std::size_t>(scores.dim(0))),
                                       ratio, o);
}

NumpyFloat conditional(const AnyArray& primal_array, const std::vector<AnyArray>& condition_arrays) {
    const auto primal = float_view<1>(primal_array, "primal", {kAnySize});
    std::vector<std::vector<float>> conditions;
    for (std::size_t k = 0; k < condition_arrays.size(); ++k) {
        const auto c = float_view<1>(condition_arrays[k], concat("conditions[", k, "]"), {primal.dim(0)});
        conditions.emplace_back(c.data(), c.data() + c.dim(0));
    }
    std::vector<float> d = edit::conditional_direction(
        std::span<const float>(primal.data(), static_cast<std::size_t>(primal.dim(0))), conditions);
    const auto dim = static_cast<Index>(d.size());
    return to_numpy(Tensor<float>({dim}, std::move(d)));
}

}  // namespace

void bind_interfacegan(nb::module_& edit_module) {
    nb::module_ m = edit_module.def_submodule(
        "interfacegan", "InterFaceGAN (Shen et al., CVPR 2020): the unit normal of a hyperplane that separates codes "
                        "with and without a binary attribute is an editing direction.");
    nb::class_<edit::LinearBoundary>(m, "Boundary", "A hyperplane normal . x + offset = 0; label 1 on the positive side.")
        .def_prop_ro("normal", [](const edit::LinearBoundary& b) {
            return to_numpy(Tensor<float>({static_cast<Index>(b.normal.size())}, b.normal));
        }, nb::rv_policy::move, "float32 [dim], unit length: the editing direction")
        .def_ro("offset", &edit::LinearBoundary::offset, "signed distance of the plane from the origin's side")
        .def_ro("train_accuracy", &edit::LinearBoundary::train_accuracy,
                "fraction of the training codes on their label's side")
        .def("score", [](const edit::LinearBoundary& b, const AnyArray& codes) {
            const auto v = float_view<2>(codes, "codes", {kAnySize, static_cast<Index>(b.normal.size())});
            std::vector<double> s(static_cast<std::size_t>(v.dim(0)));
            for (Index r = 0; r < v.dim(0); ++r)
                s[static_cast<std::size_t>(r)] =
                    b.score(std::span<const float>(v.data() + r * v.dim(1), static_cast<std::size_t>(v.dim(1))));
            const std::size_t n = s.size();
            return to_numpy(std::move(s), {n});
        }, nb::arg("codes"), "float64 [N]: signed distances normal . x + offset of codes [N, dim]")
        .def("__repr__", [](const edit::LinearBoundary& b) {
            return concat("ganinv.edit.interfacegan.Boundary(dim=", b.normal.size(), ", offset=", b.offset,
                          ", train_accuracy=", b.train_accuracy, ")");
        });

    m.def("fit", &fit, nb::arg("codes"), nb::arg("labels"), nb::kw_only(), nb::arg("method") = "svm",
          nb::arg("c") = nb::none(), nb::arg("max_epochs") = nb::none(), nb::arg("seed") = nb::none(),
          nb::arg("l2") = nb::none(), nb::arg("max_iterations") = nb::none(), nb::arg("tolerance") = nb::none(),
          "A separating hyperplane of codes float32 [N, dim] with labels [N] (0/1 or -1/+1, both present). "
          "method='svm': linear SVM, 1/2 |w|^2 + c * sum of hinge losses, the bias a weight of a constant feature "
          "(c=1, max_epochs=1000, tolerance=1e-4, seed=0: the order of the coordinate sweeps). "
          "method='logistic': mean log-loss + l2/2 |w|^2, bias unpenalised, Newton's method "
          "(l2=1e-3, max_iterations=50, tolerance=1e-10). None = the library's default.");
    m.def("from_scores", &from_scores, nb::arg("codes"), nb::arg("scores"), nb::kw_only(), nb::arg("ratio") = 0.02,
          nb::arg("c") = nb::none(), nb::arg("max_epochs") = nb::none(), nb::arg("tolerance") = nb::none(),
          nb::arg("seed") = nb::none(),
          "The paper's recipe: label the `ratio` highest-scoring codes 1 and the `ratio` lowest 0 (scores float32 "
          "[N]), drop the rest, fit the linear SVM (options as fit's).");
    m.def("conditional", &conditional, nb::arg("primal"), nb::arg("conditions"),
          "The unit direction `primal` with its component in the span of `conditions` removed: moving along it "
          "leaves every condition's score unchanged (float32 [dim] each).");
}

}  // namespace ganinv::python
