/// @file invert_cuda.hpp
/// @brief `ganinv invert --device cuda`: the generator and the loss on the GPU, behind a plain
///        C++ interface (the kernels live in invert_cuda.cu, built only when CMake found nvcc;
///        GANINV_CLI_HAS_CUDA says so).
#pragma once

#include "cli.hpp"
#include "loss_spec.hpp"

#include <ganinv/cuda/options.hpp>
#include <ganinv/invert/options.hpp>
#include <ganinv/models/psp_encoder.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace ganinv::cli {

/// Makes GPU `local_rank % device count` this thread's device and returns its index: the ranks
/// of a node share its GPUs one each. Throws CudaError when no CUDA device is usable.
int select_cuda_device(int local_rank);

/// One generator and one loss on one CUDA stream of the current device, reused across batches.
class CudaInversion {
public:
    /// Throws CudaError when no CUDA device is usable, IoError/FormatError for a bad model file,
    /// UsageError for a loss term or weight file missing (the terms and files of the CPU path).
    CudaInversion(const std::filesystem::path& model, const std::vector<LossTermSpec>& terms, const Args& a,
                  const cuda::CudaOptions& options);
    ~CudaInversion();
    CudaInversion(const CudaInversion&) = delete;
    CudaInversion& operator=(const CudaInversion&) = delete;

    Index resolution() const;
    Index img_channels() const;
    Index num_ws() const;
    Index w_dim() const;
    /// "NVIDIA H100 80GB HBM3 (sm_90)".
    std::string device_name() const;
    /// In-domain inversion on the GPU (--domain-regularization): every later run adds
    /// weight * mean((w - E(G(w)))^2) with E = `encoder` on this generator's device (cuDNN). The
    /// optimisation then runs on the host loop, as on the CPU (a code regulariser is host code).
    void set_domain_regularization(const PspEncoder& encoder, double weight, NoiseMode noise, std::uint64_t noise_seed);
    /// Inverts host targets [N, C, R, R] in [-1, 1]; results come back on the host.
    InversionResult run(const std::string& space, const std::string& optimizer, const Args& a,
                        const InverterOptions& o, const Tensor<float>& targets);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace ganinv::cli
