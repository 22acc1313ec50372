// Must NOT compile: L-BFGS needs gradients, and this loss has none. The test expects the
// Inverter's readable static_assert message in the compiler output.
#include <ganinv/backend/cpu.hpp>
#include <ganinv/invert/inverter.hpp>
#include <ganinv/loss/pixel.hpp>
#include <ganinv/models/stylegan2.hpp>
#include <ganinv/optim/optim.hpp>

namespace {
struct CountingLoss {  // a gradient-free loss (e.g. a black-box classifier score)
    using backend_type = ganinv::Cpu;
    using Buffer = ganinv::Cpu::Buffer;
    static constexpr bool differentiable = false;
    std::string name() const { return "black_box"; }
    ganinv::LossResult evaluate(const Buffer& pred, const Buffer&, Buffer*) { return {std::vector<double>(static_cast<std::size_t>(pred.dim(0)), 0.0), {}}; }
};
}  // namespace

void instantiate(ganinv::StyleGAN2<ganinv::Cpu>& g) {
    ganinv::Inverter<ganinv::StyleGAN2<ganinv::Cpu>, ganinv::WPlusSpace, CountingLoss, ganinv::Lbfgs> inv(g, CountingLoss{});
    (void)inv;
}
