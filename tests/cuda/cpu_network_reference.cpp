// The Cpu side of the CUDA network-loss tests (host compiler, OpenMP): see cpu_network_reference.hpp.
#include "cpu_network_reference.hpp"

#include <ganinv/loss/identity.hpp>
#include <ganinv/loss/lpips.hpp>
#include <ganinv/loss/vgg_perceptual.hpp>

#include <filesystem>

namespace ganinv::test::cpu {

namespace {

std::filesystem::path data_dir() { return GANINV_TEST_DATA_DIR; }

template <class L>
LossRun run(L& loss, const Tensor<float>& pred, const Tensor<float>& target) {
    LossRun r;
    r.values = loss.evaluate(pred, target, &r.grad).per_image;
    return r;
}

}  // namespace

LossRun lpips(const Tensor<float>& pred, const Tensor<float>& target, Index max_size, bool precise) {
    Lpips<> l(Vgg16::hash_rule(), Lpips<>::load_lin(data_dir() / "lpips" / "lpips_vgg_weights.safetensors"),
              LpipsOptions{max_size, true});
    l.trunk().set_reference_precision(precise);
    return run(l, pred, target);
}

LossRun vgg_perceptual(const Tensor<float>& pred, const Tensor<float>& target, const std::vector<std::string>& layers,
                       bool after_relu, const std::vector<double>& weights, Index max_size, bool precise) {
    VggPerceptualOptions o;
    o.layers = layers;
    o.after_relu = after_relu;
    o.weights = weights;
    o.max_size = max_size;
    VggPerceptual<> l(Vgg16::hash_rule(), o);
    l.trunk().set_reference_precision(precise);
    return run(l, pred, target);
}

LossRun identity(const Tensor<float>& pred, const Tensor<float>& target, const std::optional<std::vector<Index>>& box,
                 bool precise) {
    IdentityOptions o;
    if (box) o.box = FaceBox{(*box)[0], (*box)[1], (*box)[2], (*box)[3]};
    Identity<> l(FaceResNet::load(data_dir() / "face_api" / "face_recognition.safetensors"), o);
    l.network().set_reference_precision(precise);
    return run(l, pred, target);
}

}  // namespace ganinv::test::cpu
