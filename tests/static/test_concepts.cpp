// Compile-only checks: every model satisfies its concept. Building this file is the test.
#include <ganinv/backend/cpu.hpp>
#include <ganinv/concepts/backend.hpp>
#include <ganinv/concepts/code_regularizer.hpp>
#include <ganinv/concepts/encoder.hpp>
#include <ganinv/concepts/generator.hpp>
#include <ganinv/concepts/latent_space.hpp>
#include <ganinv/concepts/loss.hpp>
#include <ganinv/concepts/optimizer.hpp>
#include <ganinv/invert/domain_regularizer.hpp>
#include <ganinv/latent/spaces.hpp>
#include <ganinv/loss/any_loss.hpp>
#include <ganinv/loss/compose.hpp>
#include <ganinv/loss/pixel.hpp>
#include <ganinv/models/psp_encoder.hpp>
#include <ganinv/models/stylegan2.hpp>
#include <ganinv/optim/optim.hpp>

namespace ganinv {
static_assert(BackendMemory<Cpu>);
static_assert(BackendLayerOps<Cpu>);
static_assert(BackendBufferOps<Cpu>);
static_assert(Backend<Cpu>);
static_assert(Encoder<PspEncoder>);
static_assert(!Encoder<StyleGAN2<Cpu>>);  // a generator has no image -> code forward
static_assert(CodeRegularizer<DomainRegularizer<StyleGAN2<Cpu>, PspEncoder>>);
static_assert(!CodeRegularizer<PspEncoder>);

// The concept is not vacuous: a type that has the memory operations but none of the layer
// operations, or no BufferOps, is not a backend.
struct MemoryOnlyBackend {
    using Buffer = Tensor<float>;
    static constexpr const char* name = "memory-only";
    Buffer empty(const Shape& s) const { return Buffer(s); }
    Buffer zeros(const Shape& s) const { return Buffer(s, 0.0f); }
    Buffer upload(const Tensor<float>& h) const { return h; }
    Tensor<float> download(const Buffer& b) const { return b; }
    void fill(Buffer& b, float v) const { b.fill(v); }
    void copy(const float*, float*, Index) const {}
    void synchronize() const {}
};
static_assert(BackendMemory<MemoryOnlyBackend>);
static_assert(!BackendLayerOps<MemoryOnlyBackend>);
static_assert(!BackendBufferOps<MemoryOnlyBackend>);
static_assert(!Backend<MemoryOnlyBackend>);
struct CpuWithoutBufferOps : Cpu {};
static_assert(BackendLayerOps<CpuWithoutBufferOps>);
static_assert(!Backend<CpuWithoutBufferOps>);
static_assert(Generator<StyleGAN2<Cpu>>);
static_assert(StyleGenerator<StyleGAN2<Cpu>>);
static_assert(LatentSpace<ZSpace, StyleGAN2<Cpu>>);
static_assert(LatentSpace<WSpace, StyleGAN2<Cpu>>);
static_assert(LatentSpace<WPlusSpace, StyleGAN2<Cpu>>);
static_assert(LatentSpace<SSpace, StyleGAN2<Cpu>>);
static_assert(DifferentiableLoss<Mse<Cpu>>);
static_assert(DifferentiableLoss<L1<Cpu>>);
static_assert(DifferentiableLoss<Charbonnier<Cpu>>);
static_assert(DifferentiableLoss<Sum<Mse<Cpu>, Weighted<L1<Cpu>>>>);
static_assert(DifferentiableLoss<AnyLoss<Cpu>>);
static_assert(DifferentiableLoss<WeightedLossSum<Cpu>>);
static_assert(FirstOrderOptimizer<Adam>);
static_assert(ObjectiveOptimizer<Lbfgs>);
static_assert(AskTellOptimizer<CmaEs>);
static_assert(WholeRunOptimizer<BasinCma>);
static_assert(!FirstOrderOptimizer<CmaEs>);
static_assert(!Loss<Adam>);
}  // namespace ganinv
