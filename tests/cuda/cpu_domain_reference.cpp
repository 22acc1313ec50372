#include "cpu_domain_reference.hpp"

#include <ganinv/invert/domain_regularizer.hpp>
#include <ganinv/models/stylegan2.hpp>

namespace ganinv::test {

StyleGAN2Config domain_case_config() {
    StyleGAN2Config cfg;
    cfg.z_dim = 16;
    cfg.w_dim = 16;
    cfg.img_resolution = 16;
    cfg.img_channels = 1;
    cfg.mapping_layers = 2;
    cfg.channel_base = 128;
    cfg.channel_max = 16;
    return cfg;
}

std::vector<double> cpu_domain_regularizer(std::uint64_t generator_seed, const PspEncoder& e, const Tensor<float>& ws,
                                           double weight, Index batch, Tensor<float>* grad) {
    StyleGAN2<Cpu> g = StyleGAN2<Cpu>::random(domain_case_config(), generator_seed);
    DomainRegularizer<StyleGAN2<Cpu>, PspEncoder> r(g, e, weight, NoiseMode::constant, 0, batch);
    return r.evaluate(ws, grad);
}

}  // namespace ganinv::test
