// The _ganinv extension module: exceptions, the array helpers shared by every binding, and the
// module's entry point. The Python package (python/ganinv/) re-exports it with docstrings.
#include "bindings.hpp"

#include <nanobind/stl/map.h>
#include <nanobind/stl/string.h>

#include <map>
#include <sstream>

namespace ganinv::python {

namespace {

std::mutex addresses_mutex;
std::map<std::string, std::uintptr_t> last_addresses;

/// A Python exception class ganinv.NAME deriving from every class in `bases`.
PyObject* new_exception(const char* qualified_name, std::initializer_list<PyObject*> bases, const char* doc) {
    nb::object base_tuple = nb::steal(PyTuple_New(static_cast<Py_ssize_t>(bases.size())));
    Py_ssize_t i = 0;
    for (PyObject* b : bases) {
        Py_INCREF(b);
        PyTuple_SET_ITEM(base_tuple.ptr(), i++, b);
    }
    PyObject* cls = PyErr_NewExceptionWithDoc(qualified_name, doc, base_tuple.ptr(), nullptr);
    if (!cls) throw nb::python_error();
    return cls;
}

}  // namespace

void record_address(const std::string& name, const void* address) {
    const std::lock_guard lock(addresses_mutex);
    last_addresses[name] = reinterpret_cast<std::uintptr_t>(address);
}

std::string array_shape_string(const AnyArray& a) {
    Shape shape;
    for (std::size_t d = 0; d < a.ndim(); ++d) shape.push_back(static_cast<Index>(a.shape(d)));
    return shape_to_string(shape);
}

std::string expected_shape_string(std::span<const Index> expected) {
    std::string s = "[";
    for (std::size_t d = 0; d < expected.size(); ++d) {
        if (d) s += ", ";
        s += expected[d] != kAnySize ? std::to_string(expected[d]) : (d == 0 ? "N" : "*");
    }
    return s + "]";
}

std::string dtype_name(const AnyArray& a) {
    const nb::dlpack::dtype t = a.dtype();
    const char* kind = "unknown";
    switch (static_cast<nb::dlpack::dtype_code>(t.code)) {
        case nb::dlpack::dtype_code::Int: kind = "int"; break;
        case nb::dlpack::dtype_code::UInt: kind = "uint"; break;
        case nb::dlpack::dtype_code::Float: kind = "float"; break;
        case nb::dlpack::dtype_code::Bfloat: kind = "bfloat"; break;
        case nb::dlpack::dtype_code::Complex: kind = "complex"; break;
        case nb::dlpack::dtype_code::Bool: return "bool";
        default: break;
    }
    return kind + std::to_string(t.bits);
}

void expect_host_array(const AnyArray& a, const std::string& name) {
    GANINV_CHECK(!on_cuda(a), ValueError, name, ": expected an array in host memory, got a CUDA array (this call "
                 "computes on the CPU: use .cpu() first, or a generator loaded with device='cuda' where the call "
                 "takes CUDA arrays)");
    GANINV_CHECK(a.device_type() == nb::device::cpu::value, ValueError, name,
                 ": expected an array in host memory, got one on DLPack device type ", a.device_type(),
                 " (use .cpu() first)");
}

void expect_c_contiguous(const AnyArray& a, const std::string& name, const std::string& expected) {
    // No elements, no layout: NumPy 2 exports such arrays with arbitrary strides, and the caller's
    // check of the sizes names the real problem (an empty batch).
    if (a.size() == 0) return;
    Index stride = 1;
    for (std::size_t d = a.ndim(); d-- > 0;) {
        const auto size = static_cast<Index>(a.shape(d));
        GANINV_CHECK(size == 1 || static_cast<Index>(a.stride(d)) == stride, ValueError, name, ": expected ", expected,
                     " in C-contiguous memory, got a strided view (make it contiguous: numpy.ascontiguousarray or "
                     ".contiguous())");
        stride *= size;
    }
}

NumpyFloat to_numpy(Tensor<float>&& t) {
    auto* owned = new Tensor<float>(std::move(t));
    nb::capsule owner(owned, [](void* p) noexcept { delete static_cast<Tensor<float>*>(p); });
    const std::vector<std::size_t> shape(owned->shape().begin(), owned->shape().end());
    record_address("return", owned->data());
    return NumpyFloat(owned->data(), shape.size(), shape.data(), owner);
}

NumpyDouble to_numpy(std::vector<double>&& values, std::vector<std::size_t> shape) {
    auto* owned = new std::vector<double>(std::move(values));
    nb::capsule owner(owned, [](void* p) noexcept { delete static_cast<std::vector<double>*>(p); });
    return NumpyDouble(owned->data(), shape.size(), shape.data(), owner);
}

NumpyBytes image_to_numpy(Image&& img) {
    auto* owned = new Image(std::move(img));
    nb::capsule owner(owned, [](void* p) noexcept { delete static_cast<Image*>(p); });
    const std::size_t shape[3] = {static_cast<std::size_t>(owned->height), static_cast<std::size_t>(owned->width),
                                  static_cast<std::size_t>(owned->channels)};
    return NumpyBytes(owned->pixels.data(), 3, shape, owner);
}

Image image_from_array(const AnyArray& a, const std::string& name) {
    const std::string want = "a uint8 image of shape [H, W, C] (C = 1, 3 or 4) or [H, W]";
    expect_host_array(a, name);
    GANINV_CHECK(a.dtype() == nb::dtype<std::uint8_t>(), ValueError, name, ": expected ", want, ", got dtype ",
                 dtype_name(a));
    const bool rank_ok = a.ndim() == 2 || (a.ndim() == 3 && (a.shape(2) == 1 || a.shape(2) == 3 || a.shape(2) == 4));
    GANINV_CHECK(rank_ok && a.shape(0) > 0 && a.shape(1) > 0, ShapeError, name, ": expected ", want, ", got shape ",
                 array_shape_string(a));
    expect_c_contiguous(a, name, want);
    const int channels = a.ndim() == 3 ? static_cast<int>(a.shape(2)) : 1;
    Image img = make_image(static_cast<int>(a.shape(1)), static_cast<int>(a.shape(0)), channels);
    const auto* src = static_cast<const std::uint8_t*>(a.data());
    std::copy(src, src + img.pixels.size(), img.pixels.begin());
    return img;
}

void bind_errors(nb::module_& m) {
    // Created once per process: the classes live as long as the interpreter.
    static PyObject* error = new_exception("ganinv.Error", {PyExc_RuntimeError}, "Base of every error ganinv raises.");
    static PyObject* io_error =
        new_exception("ganinv.IoError", {error, PyExc_OSError}, "A file could not be opened, read or written.");
    static PyObject* format_error = new_exception(
        "ganinv.FormatError", {error}, "A file was readable but its content is malformed (safetensors, JSON, image).");
    static PyObject* shape_error = new_exception(
        "ganinv.ShapeError", {error, PyExc_ValueError}, "An array has the wrong shape, rank, dtype or size.");
    static PyObject* value_error = new_exception(
        "ganinv.ValueError", {error, PyExc_ValueError}, "An argument has an invalid value.");
    m.attr("Error") = nb::borrow(error);
    m.attr("IoError") = nb::borrow(io_error);
    m.attr("FormatError") = nb::borrow(format_error);
    m.attr("ShapeError") = nb::borrow(shape_error);
    m.attr("ValueError") = nb::borrow(value_error);
    // The message is the C++ exception's, unchanged: the same text as the ganinv tool prints.
    nb::register_exception_translator([](const std::exception_ptr& p, void*) {
        try {
            std::rethrow_exception(p);
        } catch (const ganinv::ShapeError& e) {
            PyErr_SetString(shape_error, e.what());
        } catch (const ganinv::ValueError& e) {
            PyErr_SetString(value_error, e.what());
        } catch (const ganinv::FormatError& e) {
            PyErr_SetString(format_error, e.what());
        } catch (const ganinv::IoError& e) {
            PyErr_SetString(io_error, e.what());
        } catch (const ganinv::Error& e) {
            PyErr_SetString(error, e.what());
        }
    });
}

}  // namespace ganinv::python

NB_MODULE(_ganinv, m) {
    using namespace ganinv::python;
    m.doc() = "ganinv's C++ core (StyleGAN2 generator, inverter, editors, metrics) on the CPU.";
    m.attr("__version__") = GANINV_PYTHON_VERSION;
    bind_errors(m);
    bind_generator(m);
    bind_invert(m);
    bind_tools(m);
    bind_encoder(m);
    m.def("cuda_available", &cuda_available,
          "True when this build of the package has the CUDA path (nvcc was found when it was built) and a CUDA "
          "device is usable now; Generator.load(..., device='cuda') needs it.");
    m.def("cuda_built", [] { return static_cast<bool>(GANINV_PYTHON_HAS_CUDA); },
          "Whether this build of the package has the CUDA path at all (False: built without nvcc).");
    m.def("_debug_addresses", [] {
        const std::lock_guard lock(addresses_mutex);
        return last_addresses;
    }, "Data address of the last array each argument name passed to C++ ('return': the last result handed to "
       "NumPy). For the zero-copy tests.");
}
