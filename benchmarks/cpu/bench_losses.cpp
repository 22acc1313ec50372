// CPU benchmark of the perceptual losses: LPIPS-VGG (256x256), VggPerceptual (256x256) and the
// identity loss (150x150), forward and forward + backward w.r.t. pred, batch 1 and 8.
// The target's features are cached (the steady state of an inversion, where the target never
// changes); "fwd" is the distance alone, "fwd+bwd" adds the gradient w.r.t. pred.
// Weights: the LPIPS trunk is the fixture's hash-rule VGG16 (no pretrained trunk can be
// downloaded here; the cost is the same), the LPIPS lin weights and the face network are real.
// Usage: bench_losses [--quick] [--json OUT.json] [--threads N]
#include "../bench_common.hpp"

#include <ganinv/loss/identity.hpp>
#include <ganinv/loss/lpips.hpp>
#include <ganinv/loss/vgg_perceptual.hpp>

#include <cstring>
#include <iostream>
#include <thread>

#ifdef _OPENMP
#include <omp.h>
#endif

using namespace ganinv;

namespace {

Tensor<float> random_images(const Shape& s, std::uint64_t seed) {
    Rng rng(seed);
    Tensor<float> t(s);
    for (float& v : t.values()) v = static_cast<float>(1.8 * rng.uniform() - 0.9);
    return t;
}

template <class L>
bench::Row measure(L& loss, const std::string& name, Index batch, Index size, int reps) {
    const Tensor<float> pred = random_images({batch, 3, size, size}, 1), target = random_images({batch, 3, size, size}, 2);
    Tensor<float> grad;
    (void)loss.evaluate(pred, target, nullptr);  // fills the target cache
    const double fwd = bench::median_ms([&] { (void)loss.evaluate(pred, target, nullptr); }, reps);
    const double fwdbwd = bench::median_ms([&] { (void)loss.evaluate(pred, target, &grad); }, reps);
    bench::Row r;
    r.cells = {name, concat(size, "x", size), std::to_string(batch), bench::fmt(fwd / static_cast<double>(batch), 1),
               bench::fmt(fwdbwd / static_cast<double>(batch), 1), bench::fmt(1000.0 * static_cast<double>(batch) / fwdbwd, 2)};
    Json j{Json::Object{}};
    j.set("loss", name);
    j.set("size", static_cast<std::int64_t>(size));
    j.set("batch", static_cast<std::int64_t>(batch));
    j.set("forward_ms_per_image", fwd / static_cast<double>(batch));
    j.set("forward_backward_ms_per_image", fwdbwd / static_cast<double>(batch));
    j.set("forward_backward_images_per_s", 1000.0 * static_cast<double>(batch) / fwdbwd);
    r.json = j;
    std::cout << "." << std::flush;
    return r;
}

}  // namespace

int main(int argc, char** argv) {
    std::string json_path = "bench_losses_cpu.json";
    bool quick = false;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--quick")) quick = true;
        else if (!std::strcmp(argv[i], "--json") && i + 1 < argc) json_path = argv[++i];
#ifdef _OPENMP
        else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) omp_set_num_threads(std::atoi(argv[++i]));
#endif
        else {
            std::cerr << "usage: bench_losses [--quick] [--json OUT.json] [--threads N]\n";
            return 2;
        }
    }
    try {
        const std::filesystem::path data = GANINV_TEST_DATA;
        Lpips<> lpips(Vgg16::hash_rule(), Lpips<>::load_lin(data / "lpips" / "lpips_vgg_weights.safetensors"));
        VggPerceptual<> vgg(Vgg16::hash_rule());
        Identity<> identity = Identity<>::load(data / "face_api" / "face_recognition.safetensors");
        const Index lp_size = quick ? 64 : 256;
        const int reps = quick ? 1 : 3;
        std::vector<bench::Row> rows;
        for (Index batch : {Index{1}, Index{8}}) {
            rows.push_back(measure(lpips, "lpips-vgg (hash-rule trunk)", batch, lp_size, reps));
            rows.push_back(measure(vgg, "vgg-perceptual (hash-rule trunk)", batch, lp_size, reps));
            rows.push_back(measure(identity, "identity (face-api weights)", batch, 150, reps));
        }
        int threads = 1;
#ifdef _OPENMP
        threads = omp_get_max_threads();
#endif
        std::cout << "\nPerceptual losses on the CPU (" << threads << " OpenMP threads, "
                  << std::thread::hardware_concurrency() << " hardware threads), target features cached\n";
        bench::print_table({"loss", "size", "batch", "fwd ms/img", "fwd+bwd ms/img", "fwd+bwd img/s"}, rows);
        bench::write_json(json_path, "losses_cpu", rows);
    } catch (const std::exception& e) {
        std::cerr << "bench_losses: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
