// Shared pieces of the ganinv Python extension (_ganinv): the Generator object, the checks that
// turn a NumPy array / PyTorch tensor into a borrowed TensorView without copying it, and the
// hand-over of C++ results to NumPy without copying them. The bindings are the top layer, like
// the ganinv tool: they include the library, the library never includes them.
#pragma once

#include <ganinv/backend/cpu.hpp>
#include <ganinv/core/tensor.hpp>
#include <ganinv/io/image.hpp>
#include <ganinv/models/stylegan2.hpp>

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace ganinv::python {

namespace nb = nanobind;

/// Any array that nanobind reads through DLPack or the buffer protocol, read-only arrays
/// included. No dtype or shape constraint on purpose: nanobind would otherwise convert (copy)
/// silently or fail with a generic TypeError, where ganinv names the argument and what it expects.
using AnyArray = nb::ndarray<nb::ro>;
/// A float32 NumPy array handed over from C++ (it owns the C++ buffer through a capsule).
using NumpyFloat = nb::ndarray<nb::numpy, float>;
using NumpyDouble = nb::ndarray<nb::numpy, double>;
using NumpyBytes = nb::ndarray<nb::numpy, std::uint8_t>;

/// Expected size of each dimension; kAnySize leaves a dimension free.
inline constexpr Index kAnySize = -1;

class CudaModel;  // cuda_model.hpp (built with CUDA only)

/// A StyleGAN2 generator as Python sees it: always the host model (its config, and the CPU
/// computations: editors, encoder, metrics), plus a copy on a GPU when loaded with device="cuda"
/// (mapping, synthesis and invert then run there). The mutex serialises calls on one generator
/// from several Python threads (the GIL is released while it computes).
struct Generator {
    StyleGAN2<Cpu> model;
    std::string path;
    std::shared_ptr<CudaModel> cuda;  ///< null for device="cpu"
    std::mutex busy;

    Generator(StyleGAN2<Cpu>&& m, std::string p, std::shared_ptr<CudaModel> c = {})
        : model(std::move(m)), path(std::move(p)), cuda(std::move(c)) {}
    /// "cpu" or "cuda:N".
    std::string device() const;
};

/// Records the data address of the last array handed to (or returned from) the C++ side under a
/// name: the tests prove zero-copy with it (ganinv._debug_addresses()).
void record_address(const std::string& name, const void* address);

/// The shape the user passed, "[2, 3, 32, 32]", and the expected one, "[N, 14, 512]".
std::string array_shape_string(const AnyArray& a);
std::string expected_shape_string(std::span<const Index> expected);

/// The array's element type in NumPy's words ("float32", "uint8", ...).
std::string dtype_name(const AnyArray& a);

/// Throws ValueError unless the array lives in host memory (CUDA tensors are named as such).
void expect_host_array(const AnyArray& a, const std::string& name);

/// Whether the array lives in CUDA device memory (a PyTorch/CuPy CUDA tensor).
inline bool on_cuda(const AnyArray& a) { return a.device_type() == nb::device::cuda::value; }

/// Throws ValueError unless the array is C-contiguous (strides in elements, row-major).
void expect_c_contiguous(const AnyArray& a, const std::string& name, const std::string& expected);

/// The checks of float_view (dtype, sizes, layout) without the placement: the caller looks at
/// on_cuda(a) and reads the data on the matching side. Returns the sizes.
template <std::size_t Rank>
std::array<Index, Rank> float_array_shape(const AnyArray& a, const std::string& name,
                                          const std::array<Index, Rank>& expected) {
    const std::string want = "a float32 array of shape " + expected_shape_string(expected);
    GANINV_CHECK(a.dtype() == nb::dtype<float>(), ValueError, name, ": expected ", want, ", got dtype ", dtype_name(a),
                 " (convert with .astype(numpy.float32) or .float())");
    bool sizes_match = a.ndim() == Rank;
    for (std::size_t d = 0; sizes_match && d < Rank; ++d)
        sizes_match = expected[d] == kAnySize || static_cast<Index>(a.shape(d)) == expected[d];
    GANINV_CHECK(sizes_match, ShapeError, name, ": expected ", want, ", got shape ", array_shape_string(a));
    expect_c_contiguous(a, name, want);
    std::array<Index, Rank> shape{};
    for (std::size_t d = 0; d < Rank; ++d) shape[d] = static_cast<Index>(a.shape(d));
    GANINV_CHECK(Rank == 0 || shape[0] > 0, ShapeError, name, ": expected ", want, " with N >= 1, got shape ",
                 array_shape_string(a));
    return shape;
}

/// The array as a contiguous float32 view of `expected` shape, borrowed, not copied. Throws
/// ganinv::ValueError (device, dtype, layout) or ganinv::ShapeError (rank, sizes) naming
/// `name` and the expected shape; both are ValueErrors in Python.
template <std::size_t Rank>
TensorView<const float, Rank> float_view(const AnyArray& a, const std::string& name,
                                         const std::array<Index, Rank>& expected) {
    expect_host_array(a, name);
    const std::array<Index, Rank> shape = float_array_shape(a, name, expected);
    const auto* data = static_cast<const float*>(a.data());
    record_address(name, data);
    return TensorView<const float, Rank>(data, shape);
}

/// The view's values in an owning Tensor (for the library calls that take one).
template <std::size_t Rank>
Tensor<float> to_tensor(const TensorView<const float, Rank>& v) {
    Shape shape(v.shape().begin(), v.shape().end());
    return Tensor<float>(std::move(shape), std::vector<float>(v.data(), v.data() + v.numel()));
}

/// Hands a C++ tensor to NumPy without copying: the array owns the tensor (capsule).
NumpyFloat to_numpy(Tensor<float>&& t);
NumpyDouble to_numpy(std::vector<double>&& values, std::vector<std::size_t> shape);

/// An 8-bit image [H, W, C] as a NumPy array (C = 1, 3 or 4, always three dimensions).
NumpyBytes image_to_numpy(Image&& img);
/// A uint8 [H, W, C] or [H, W] array as an Image (copied: Image owns its pixels).
Image image_from_array(const AnyArray& a, const std::string& name);

/// Images as the inverter and the encoder take them: float32 [N, C, R, R] in [-1, 1] (read in
/// place) or uint8 [N, R, R, C] (C = 1, 3 or 4, converted as the ganinv tool converts files).
Tensor<float> targets_from_array(const AnyArray& a, const StyleGAN2<Cpu>& g);

/// Built with the CUDA path (GANINV_PYTHON_HAS_CUDA) and a CUDA device usable now.
bool cuda_available();

/// Python's `stream` argument (a cudaStream_t as an integer, e.g. torch's
/// `torch.cuda.current_stream().cuda_stream`); None is the legacy default stream (0), PyTorch's
/// default stream.
using StreamArg = std::optional<std::uintptr_t>;

void bind_errors(nb::module_& m);
void bind_encoder(nb::module_& m);
void bind_generator(nb::module_& m);
void bind_invert(nb::module_& m);
void bind_tools(nb::module_& m);
/// ganinv.edit.interfacegan, a submodule of the editors' module (interfacegan.cpp).
void bind_interfacegan(nb::module_& edit_module);

}  // namespace ganinv::python
