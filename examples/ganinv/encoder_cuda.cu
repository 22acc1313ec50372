// ganinv train-encoder / encode --device cuda: EncoderTrainerCuda and the GPU refinement
// (encoder_refine_cuda.cuh) over StyleGAN2<Cuda> and PspEncoderCuda on one stream of the current
// device. The weights, their gradients and Adam's moments stay on the GPU; a training step sends
// z and its real images up and reads its loss values back.
#include "encoder_cuda.hpp"
#include "cuda_device.cuh"

#include <ganinv/backend/cuda.cuh>
#include <ganinv/cuda/stream.hpp>
#include <ganinv/invert/encoder_refine_cuda.cuh>
#include <ganinv/invert/encoder_trainer_cuda.cuh>
#include <ganinv/models/psp_encoder_cuda.cuh>
#include <ganinv/models/stylegan2.hpp>

#include <optional>
#include <utility>

namespace ganinv::cli {

namespace {

/// Checks for a usable GPU when constructed: the first member, so the refusal comes before the
/// stream is created (see tune_cuda.cu).
struct RequireEncoderDevice {
    RequireEncoderDevice() { require_cuda_device(); }
};

}  // namespace

struct CudaEncoderTraining::Impl {
    RequireEncoderDevice device_checked;  // first: members are constructed in declaration order
    cuda::Stream stream;
    Cuda backend;
    StyleGAN2<Cuda> generator;
    PspEncoderCuda encoder;
    std::optional<PspEncoderCuda> bootstrap;  // before the trainer, which keeps a pointer to it
    EncoderTrainerCuda trainer;

    Impl(const std::filesystem::path& model, const PspEncoder& initial, const EncoderTrainerOptions& o, Tensor<float> real,
         const cuda::CudaOptions& options, const PspEncoder* boot)
        : backend(stream, options),
          generator(StyleGAN2<Cuda>::load(model, backend)),
          encoder(initial, backend),
          trainer(generator, encoder, o, std::move(real)) {
        if (!boot) return;
        bootstrap.emplace(*boot, backend);
        trainer.set_bootstrap(*bootstrap, encoder_fingerprint(*boot));
    }
};

CudaEncoderTraining::CudaEncoderTraining(const std::filesystem::path& model, const PspEncoder& initial,
                                         const EncoderTrainerOptions& o, Tensor<float> real, const cuda::CudaOptions& options,
                                         const PspEncoder* bootstrap)
    : impl_(std::make_unique<Impl>(model, initial, o, std::move(real), options, bootstrap)) {}
CudaEncoderTraining::~CudaEncoderTraining() = default;

std::string CudaEncoderTraining::device_name() const { return describe_cuda_device(impl_->backend); }
const EncoderTrainerOptions& CudaEncoderTraining::options() const { return impl_->trainer.options(); }
Index CudaEncoderTraining::steps_done() const { return impl_->trainer.steps_done(); }
const std::vector<std::vector<double>>& CudaEncoderTraining::history() const { return impl_->trainer.history(); }
Index CudaEncoderTraining::history_first_step() const { return impl_->trainer.history_first_step(); }
EncoderStepStats CudaEncoderTraining::step() { return impl_->trainer.step(); }
void CudaEncoderTraining::save_checkpoint(const std::filesystem::path& path) const { impl_->trainer.save_checkpoint(path); }
void CudaEncoderTraining::resume(const std::filesystem::path& path) { impl_->trainer.resume(path); }
PspEncoder CudaEncoderTraining::encoder() const { return impl_->encoder.to_host(); }

struct CudaEncoding::Impl {
    RequireEncoderDevice device_checked;
    cuda::Stream stream;
    Cuda backend;
    StyleGAN2<Cuda> generator;
    PspEncoderCuda encoder;
    std::optional<PspEncoderCuda> bootstrap;

    Impl(const std::filesystem::path& model, const PspEncoder& e, const PspEncoder* boot, const cuda::CudaOptions& options)
        : backend(stream, options), generator(StyleGAN2<Cuda>::load(model, backend)), encoder(e, backend) {
        if (boot) bootstrap.emplace(*boot, backend);
    }
};

CudaEncoding::CudaEncoding(const std::filesystem::path& model, const PspEncoder& encoder, const PspEncoder* bootstrap,
                           const cuda::CudaOptions& options)
    : impl_(std::make_unique<Impl>(model, encoder, bootstrap, options)) {}
CudaEncoding::~CudaEncoding() = default;

std::string CudaEncoding::device_name() const { return describe_cuda_device(impl_->backend); }

RefineState CudaEncoding::encode(const Tensor<float>& images, Index iterations,
                                 const std::function<void(Index, const RefineState&)>& on_iteration) {
    const Cuda& b = impl_->backend;
    const auto host = [&](const RefineStateCuda& s) { return RefineState{b.download(s.codes), b.download(s.reconstruction)}; };
    std::function<void(Index, const RefineStateCuda&)> each;
    if (on_iteration) each = [&](Index t, const RefineStateCuda& s) { on_iteration(t, host(s)); };
    const RefineStateCuda last = encode_images(impl_->generator, impl_->encoder, b.upload(images), iterations, each,
                                               impl_->bootstrap ? &*impl_->bootstrap : nullptr);
    return host(last);
}

}  // namespace ganinv::cli
