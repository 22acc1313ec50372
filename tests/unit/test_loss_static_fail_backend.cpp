// Must NOT compile: Sum<L...> of losses on different backends (ctest checks the message).
#include <ganinv/loss/compose.hpp>
#include <ganinv/loss/pixel.hpp>

namespace {

struct OtherBackend {
    using Buffer = ganinv::Tensor<float>;
    static constexpr const char* name = "other";
};

struct OtherLoss {
    using backend_type = OtherBackend;
    using Buffer = ganinv::Tensor<float>;
    static constexpr bool differentiable = true;
    std::string name() const { return "other"; }
    ganinv::LossResult evaluate(const Buffer&, const Buffer&, Buffer*) { return {}; }
};

}  // namespace

int main() {
    ganinv::Sum<ganinv::Mse<>, OtherLoss> mixed(ganinv::Mse<>{}, OtherLoss{});
    return static_cast<int>(mixed.name().size());
}
