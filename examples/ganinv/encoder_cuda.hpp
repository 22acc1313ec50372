/// @file encoder_cuda.hpp
/// @brief `ganinv train-encoder --device cuda` and `ganinv encode --device cuda`: the encoder
///        (PspEncoderCuda) and the generator (StyleGAN2<Cuda>) on the GPU behind plain C++
///        classes; the kernels live in encoder_cuda.cu, built only when CMake found nvcc and
///        cuDNN (GANINV_CLI_HAS_CUDNN says so: the encoder's convolutions are cuDNN's).
#pragma once

#include "cli.hpp"

#include <ganinv/cuda/options.hpp>
#include <ganinv/invert/encoder_refine.hpp>
#include <ganinv/invert/encoder_training.hpp>
#include <ganinv/models/psp_encoder.hpp>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace ganinv::cli {

/// EncoderTrainerCuda on the current CUDA device, with the members of EncoderTrainer that
/// train-encoder uses (its loop runs either).
class CudaEncoderTraining {
public:
    /// Loads the generator onto the GPU and uploads `initial` (the encoder's starting weights).
    /// Throws CudaError when no CUDA device is usable, ValueError for an option the GPU
    /// trainer lacks, IoError/FormatError for a bad model file.
    /// With `bootstrap` (a single-pass encoder, copied to the GPU) every batch's refinement starts
    /// at its codes (EncoderTrainerCuda::set_bootstrap).
    CudaEncoderTraining(const std::filesystem::path& model, const PspEncoder& initial, const EncoderTrainerOptions& o,
                        Tensor<float> real, const cuda::CudaOptions& options, const PspEncoder* bootstrap = nullptr);
    ~CudaEncoderTraining();
    CudaEncoderTraining(const CudaEncoderTraining&) = delete;
    CudaEncoderTraining& operator=(const CudaEncoderTraining&) = delete;

    /// "NVIDIA H100 80GB HBM3 (sm_90), convolutions fp32".
    std::string device_name() const;
    const EncoderTrainerOptions& options() const;
    Index steps_done() const;
    const std::vector<std::vector<double>>& history() const;
    Index history_first_step() const;
    EncoderStepStats step();
    /// EncoderTrainer's checkpoint format: either trainer resumes it.
    void save_checkpoint(const std::filesystem::path& path) const;
    void resume(const std::filesystem::path& path);
    /// The encoder as trained so far, on the host (for --export).
    PspEncoder encoder() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

/// encode_images (encoder_refine.hpp) on the current CUDA device: one generator and encoder
/// (and bootstrapping encoder) reused across batches.
class CudaEncoding {
public:
    /// Throws CudaError when no CUDA device is usable, IoError/FormatError for a bad model file.
    CudaEncoding(const std::filesystem::path& model, const PspEncoder& encoder, const PspEncoder* bootstrap,
                 const cuda::CudaOptions& options);
    ~CudaEncoding();
    CudaEncoding(const CudaEncoding&) = delete;
    CudaEncoding& operator=(const CudaEncoding&) = delete;

    std::string device_name() const;
    /// Encodes host images [N, C, R, R] in `iterations` passes; `on_iteration` (may be empty) sees
    /// each iterate downloaded (codes and reconstruction); returns the last.
    RefineState encode(const Tensor<float>& images, Index iterations,
                       const std::function<void(Index, const RefineState&)>& on_iteration = {});

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace ganinv::cli
