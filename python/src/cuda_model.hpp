// The CUDA side of ganinv.Generator (device="cuda"): a StyleGAN2<Cuda>, its stream and the CUDA
// losses behind a plain C++ interface, so that the bindings' .cpp files never see a CUDA header.
// Defined in cuda_model.cu, compiled only when CMake found nvcc (GANINV_PYTHON_HAS_CUDA).
//
// Streams: the model computes on its own non-blocking stream. Each call names the caller's stream
// (a cudaStream_t as an integer, 0 = the legacy default stream, which is PyTorch's default): the
// model's stream first waits for the work queued on the caller's stream (inputs produced there are
// ready), and the caller's stream then waits for the model's work (results are ready for anything
// queued on it afterwards). No host synchronisation unless a result goes to host memory.
#pragma once

#include <ganinv/concepts/generator_inputs.hpp>
#include <ganinv/core/tensor.hpp>
#include <ganinv/invert/dispatch.hpp>
#include <ganinv/loss/loss_spec.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ganinv::python {

/// Device memory handed to Python (a DLPack producer): `data` stays valid until release(owner) is
/// called. Releasing returns the block to the model's memory pool in stream order: it is reused
/// only after the work queued on the caller's stream at release time has run.
struct DeviceArray {
    float* data = nullptr;
    std::vector<std::size_t> shape;
    int device = 0;
    void* owner = nullptr;
    void (*release)(void*) noexcept = nullptr;
};

/// Where an input array lives: host memory, or device memory of the model's GPU.
enum class Placement { host, device };

/// A view of the caller's float32 rows (C-contiguous), with where they live.
struct RowsIn {
    const float* data = nullptr;
    Index rows = 0;
    Placement placement = Placement::host;
};

class CudaModel {
public:
    /// Whether a CUDA device is usable; `why` receives the runtime's reason when it is not.
    static bool available(std::string* why = nullptr);

    /// Loads the generator file onto GPU `device` with the given precision ("fp32", "tf32",
    /// "bf16"). Throws CudaError (no such device), IoError/FormatError (the file), ValueError.
    CudaModel(const std::string& path, int device, const std::string& precision);
    ~CudaModel();
    CudaModel(const CudaModel&) = delete;
    CudaModel& operator=(const CudaModel&) = delete;

    int device() const;
    /// "NVIDIA H100 80GB HBM3 (sm_90), convolutions tf32 on wgmma kernels".
    std::string device_name() const;

    /// ws [n, num_ws, w_dim] on the device. `stream`: the caller's stream (see above).
    DeviceArray mapping(const RowsIn& z, const Truncation& trunc, std::uintptr_t stream);
    /// images [n, C, R, R] on the device; device inputs are read in place (no copy).
    DeviceArray synthesis(const RowsIn& ws, NoiseMode mode, std::uint64_t noise_seed, std::uintptr_t stream);
    /// d(loss)/d(ws) [n, num_ws, w_dim] on the device, given d(loss)/d(images) (same placement).
    DeviceArray synthesis_backward(const RowsIn& ws, const RowsIn& grad_img, NoiseMode mode, std::uint64_t noise_seed,
                                   std::uintptr_t stream);

    /// A device result copied into host memory (waits for it), then released.
    Tensor<float> to_host(DeviceArray&& a);
    /// Rows of `shape` read from the caller's device memory into a host tensor (waits for them).
    Tensor<float> rows_to_host(const float* data, const Shape& shape, std::uintptr_t stream);

    /// The same inversion as `ganinv invert --device cuda` (run_inversion on StyleGAN2<Cuda> with
    /// the CUDA losses): targets in host memory, results in host memory.
    InversionResult invert(const std::string& space, const std::string& optimizer, const OptimizerSettings& settings,
                           const std::string& loss_spec, const LossWeightFiles& files, const InverterOptions& o,
                           const Tensor<float>& targets);

    /// Defined in cuda_model.cu (CUDA types); named here so that the arrays handed out can share it.
    struct Impl;

private:
    std::shared_ptr<Impl> impl_;  // shared with the DeviceArrays it handed out (their stream and pool)
};

}  // namespace ganinv::python
