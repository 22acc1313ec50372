// ganinv tune --device cuda: TuneRunner (tune_support.hpp) over StyleGAN2<Cuda> and the CUDA
// losses. The pivots use the Inverter's device-resident Adam loop, the tuning the Tuner's device
// step (the generator's weights, their gradients and Adam's moments stay on the GPU).
#include "tune_cuda.hpp"
#include "cuda_device.cuh"

#include <ganinv/backend/cuda.cuh>
#include <ganinv/cuda/stream.hpp>
#include <ganinv/loss/any_loss.hpp>
#include <ganinv/loss/pixel.hpp>
#include <ganinv/models/stylegan2.hpp>
#if GANINV_CLI_HAS_CUDNN
#include <ganinv/loss/network_losses_cuda.cuh>
#endif

namespace ganinv::cli {

namespace {

/// Checks for a usable GPU when constructed: the first member of CudaContext, so the refusal comes
/// before the stream is created (a stream on a machine without a driver fails with a CUDA error
/// that does not say "use --device cpu").
struct RequireCudaDevice {
    RequireCudaDevice() { require_cuda_device(); }
};

/// The stream and the backend, built before (and destroyed after) the generator that uses them.
struct CudaContext {
    RequireCudaDevice device_checked;  // first: members are constructed in declaration order
    cuda::Stream stream;
    Cuda backend;
    explicit CudaContext(const cuda::CudaOptions& options) : backend(stream, options) {}
};

class CudaTuneJob final : private CudaContext, public TuneRunner<StyleGAN2<Cuda>, WeightedLossSum<Cuda>> {
public:
    CudaTuneJob(const std::filesystem::path& model, const std::vector<LossTermSpec>& terms, const Args& a,
                const cuda::CudaOptions& options, const TuneSettings& s, const std::string& config_text)
        : CudaContext(options),
          TuneRunner([&] { return StyleGAN2<Cuda>::load(model, backend); },
                     [&] { return build_cli_loss<Cuda>(terms, a, backend); }, s, config_text),
          device_(describe_cuda_device(backend)) {}

    std::string device_name() const override { return device_; }

private:
    std::string device_;
};

}  // namespace

std::unique_ptr<TuneJob> make_cuda_tune_job(const std::filesystem::path& model, const std::vector<LossTermSpec>& terms,
                                            const Args& a, const cuda::CudaOptions& options, const TuneSettings& s,
                                            const std::string& config_text) {
    return std::make_unique<CudaTuneJob>(model, terms, a, options, s, config_text);
}

}  // namespace ganinv::cli
