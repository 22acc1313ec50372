// Must NOT compile: asking a non-differentiable loss for a gradient (ctest checks the message).
#include <ganinv/loss/compose.hpp>
#include <ganinv/loss/pixel.hpp>

namespace {

struct MetricOnly {
    using backend_type = ganinv::Cpu;
    using Buffer = ganinv::Tensor<float>;
    static constexpr bool differentiable = false;
    std::string name() const { return "metric"; }
    ganinv::LossResult evaluate(const Buffer&, const Buffer&, Buffer*) { return {}; }
};

}  // namespace

int main() {
    ganinv::Sum<ganinv::Mse<>, MetricOnly> loss(ganinv::Mse<>{}, MetricOnly{});
    ganinv::Tensor<float> p({1, 1, 2, 2}, 0.0f), t({1, 1, 2, 2}, 0.0f), g;
    return static_cast<int>(ganinv::evaluate_with_gradient(loss, p, t, g).per_image.size());
}
