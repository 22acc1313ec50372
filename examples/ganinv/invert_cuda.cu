// ganinv invert --device cuda: StyleGAN2<Cuda> with the CUDA losses, driven by the same
// Inverter dispatch as the CPU path (invert_dispatch.hpp).
#include "invert_cuda.hpp"
#include "cuda_device.cuh"
#include "invert_dispatch.hpp"

#include <ganinv/backend/cuda.cuh>
#include <ganinv/cuda/stream.hpp>
#include <ganinv/loss/any_loss.hpp>
#include <ganinv/loss/pixel.hpp>
#include <ganinv/models/stylegan2.hpp>
#if GANINV_CLI_HAS_CUDNN
#include <ganinv/invert/domain_regularizer.hpp>
#include <ganinv/loss/network_losses_cuda.cuh>
#include <ganinv/models/psp_encoder_cuda.cuh>
#endif

#include <optional>

namespace ganinv::cli {

int select_cuda_device(int local_rank) {
    require_cuda_device();
    int count = 0;
    GANINV_CUDA_CHECK(cudaGetDeviceCount(&count));
    const int dev = local_rank % count;
    GANINV_CUDA_CHECK(cudaSetDevice(dev));
    return dev;
}

struct CudaInversion::Impl {
    cuda::Stream stream;
    Cuda backend;
    StyleGAN2<Cuda> generator;
    WeightedLossSum<Cuda> loss;
    std::string device;
#if GANINV_CLI_HAS_CUDNN
    std::unique_ptr<PspEncoderCuda> domain_encoder;  ///< --domain-regularization's E, on this stream
#endif
    std::optional<CodeRegularizerHook> domain;

    Impl(const std::filesystem::path& model, const std::vector<LossTermSpec>& terms, const Args& a,
         const cuda::CudaOptions& options)
        : backend(stream, options), generator(StyleGAN2<Cuda>::load(model, backend)), loss(build_cli_loss<Cuda>(terms, a, backend)),
          device(describe_cuda_device(backend)) {}
};

CudaInversion::CudaInversion(const std::filesystem::path& model, const std::vector<LossTermSpec>& terms, const Args& a,
                             const cuda::CudaOptions& options)
    : impl_((require_cuda_device(), std::make_unique<Impl>(model, terms, a, options))) {}
CudaInversion::~CudaInversion() = default;

Index CudaInversion::resolution() const { return impl_->generator.resolution(); }
Index CudaInversion::img_channels() const { return impl_->generator.img_channels(); }
Index CudaInversion::num_ws() const { return impl_->generator.num_ws(); }
Index CudaInversion::w_dim() const { return impl_->generator.w_dim(); }
std::string CudaInversion::device_name() const { return impl_->device; }

void CudaInversion::set_domain_regularization(const PspEncoder& encoder, double weight, NoiseMode noise,
                                              std::uint64_t noise_seed) {
#if GANINV_CLI_HAS_CUDNN
    Impl& m = *impl_;
    m.domain_encoder = std::make_unique<PspEncoderCuda>(encoder, m.backend);  // the generator's stream
    m.domain = make_domain_regularization(m.generator, *m.domain_encoder, weight, noise, noise_seed);
#else
    (void)encoder, (void)weight, (void)noise, (void)noise_seed;
    throw UsageError("--domain-regularization --device cuda: this ganinv was built without cuDNN; use --device cpu");
#endif
}

InversionResult CudaInversion::run(const std::string& space, const std::string& optimizer, const Args& a,
                                   const InverterOptions& o, const Tensor<float>& targets) {
    if (!impl_->domain) return run_inversion(space, optimizer, a, impl_->generator, impl_->loss, o, targets);
    InverterOptions with_domain = o;
    with_domain.code_regularizer = impl_->domain;
    return run_inversion(space, optimizer, a, impl_->generator, impl_->loss, with_domain, targets);
}

}  // namespace ganinv::cli
