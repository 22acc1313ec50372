// GPU: a whole Pivotal Tuning Inversion of one image (issue 15's speed target: 450 pivot steps in
// W + 350 tuning steps of every synthesis weight, batch 1, <= 12 s on an H200 at 1024x1024; PTI's
// published time is ~124 s) with the random-weight official configurations, as `ganinv tune
// --device cuda` runs it: the pivot by the Inverter's device-resident Adam loop, the tuning by the
// Tuner's device step. Objectives: MSE, and the VGG16 feature distance (the official projector's
// taps, hash-rule weights: the cost of PTI's LPIPS term without shipping weights). Times are wall
// clock around each phase after one warm-up job (cuDNN plans, the memory pool), the setup included.
// --breakdown adds where a tuning step's time goes (device-synchronised averages of 10 calls):
// the forward + loss alone, forward + loss + the backward to the codes only (what an inversion
// step pays), and forward + loss + the backward with every synthesis weight's gradient (the
// tuner's evaluate); the rest of a step (Adam over the weights, zeroing the gradients, the loss
// read-back) is the step time minus the last.
// Usage: bench_tune_gpu [--quick] [--breakdown] [--json OUT.json] [--res 256,1024]
//        [--precisions fp32,tf32] [--objectives mse,vgg]
#include "../device_step_impl.hpp"

#include <ganinv/backend/cuda.cuh>
#include <ganinv/cuda/stream.hpp>
#include <ganinv/invert/tuner.hpp>
#include <ganinv/loss/network_losses_cuda.cuh>
#include <ganinv/loss/pixel.hpp>
#include <ganinv/loss/vgg_perceptual.hpp>
#include <ganinv/models/vgg16.hpp>

#include <chrono>
#include <cstring>
#include <sstream>

using namespace ganinv;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct PtiTiming {
    double pivot_s = 0, tune_s = 0, psnr_before = 0, psnr_after = 0;
    std::string pivot_mode;
};

/// One PTI job: the pivot (Adam in W, projector schedule), then the tuning from the original weights.
template <class G, class MakeLoss>
PtiTiming run_pti(G& g, MakeLoss&& make_loss, const Tensor<float>& target, Index pivot_steps, Index tune_steps,
                  const std::shared_ptr<LatentStatistics>& stats) {
    using LossT = decltype(make_loss());
    PtiTiming r;
    InverterOptions o;
    o.steps = pivot_steps;
    o.progress_every = std::max<Index>(1, pivot_steps / 100);
    o.w_statistics_cache = stats;
    g.backend().synchronize();
    auto t0 = std::chrono::steady_clock::now();
    Tensor<float> pivot;
    {
        Inverter<G, WSpace, LossT, Adam> inv(g, make_loss(), Adam(ProjectorSchedule{}.adam_options()), o);
        pivot = inv.run(target).ws;
        r.pivot_mode = inv.launch_mode();
    }
    g.backend().synchronize();
    r.pivot_s = seconds_since(t0);
    TunerOptions to;
    to.steps = tune_steps;
    to.progress_every = std::max<Index>(1, tune_steps / 100);
    t0 = std::chrono::steady_clock::now();
    Tuner<G, LossT> tuner(g, make_loss(), to);
    const TuneResult tr = tuner.run(target, pivot);
    g.backend().synchronize();
    r.tune_s = seconds_since(t0);
    r.psnr_before = tr.metrics_before.at(0).psnr;
    r.psnr_after = tr.metrics_after.at(0).psnr;
    tuner.restore_original();
    return r;
}

struct StepBreakdown {
    double forward_ms = 0, backward_codes_ms = 0, backward_weights_ms = 0;
};

/// Averages of 10 device-synchronised calls of each part of a tuning step (after one warm-up call).
template <class G, class MakeLoss>
StepBreakdown break_down(G& g, MakeLoss&& make_loss, const Tensor<float>& target) {
    using LossT = decltype(make_loss());
    using Buffer = typename G::Buffer;
    Tensor<float> z({1, g.z_dim()});
    Rng(11).fill_normal(z.values());
    const Tensor<float> pivot = g.backend().download(g.mapping(g.backend().upload(z)));
    Tuner<G, LossT> tuner(g, make_loss(), TunerOptions{});
    tuner.set_problem(target, pivot);
    LossT loss = make_loss();
    const Buffer ws = g.backend().upload(pivot), tgt = g.backend().upload(target);
    auto avg_ms = [&](auto&& fn) {
        fn();
        g.backend().synchronize();
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < 10; ++i) fn();
        g.backend().synchronize();
        return seconds_since(t0) * 100.0;  // 1e3 ms / 10 calls
    };
    StepBreakdown b;
    b.forward_ms = avg_ms([&] { (void)tuner.evaluate(false); });
    b.backward_codes_ms = avg_ms([&] {
        typename G::Cache cache;
        const Buffer img = g.synthesis(ws, NoiseInput<typename G::backend_type>{}, &cache);
        Buffer grad;
        (void)loss.evaluate(img, tgt, &grad);
        (void)g.synthesis_backward_ws(cache, grad);
    });
    b.backward_weights_ms = avg_ms([&] { (void)tuner.evaluate(true); });
    return b;
}

}  // namespace

int main(int argc, char** argv) {
    std::string json_path = "bench_tune_gpu.json", res_list = "256,1024", prec_list = "fp32,tf32", obj_list = "mse,vgg";
    bool quick = false, breakdown = false;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--quick")) quick = true;
        else if (!std::strcmp(argv[i], "--breakdown")) breakdown = true;
        else if (!std::strcmp(argv[i], "--json") && i + 1 < argc) json_path = argv[++i];
        else if (!std::strcmp(argv[i], "--res") && i + 1 < argc) res_list = argv[++i];
        else if (!std::strcmp(argv[i], "--precisions") && i + 1 < argc) prec_list = argv[++i];
        else if (!std::strcmp(argv[i], "--objectives") && i + 1 < argc) obj_list = argv[++i];
        else {
            std::cerr << "usage: bench_tune_gpu [--quick] [--breakdown] [--json OUT.json] [--res 256,1024] [--precisions fp32,tf32] "
                         "[--objectives mse,vgg]\n";
            return 2;
        }
    }
    try {
        int count = 0;
        if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
            std::puts("SKIPPED: no CUDA device");
            return 77;
        }
        using G = StyleGAN2<Cuda>;
        cuda::Stream stream;
        cudaDeviceProp prop{};
        GANINV_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
        const Index pivot_steps = quick ? 90 : 450, tune_steps = quick ? 70 : 350;
        std::vector<bench::Row> rows;
        for (const std::string& rs : bench::split_list(res_list)) {
            const Index res = std::stoll(rs);
            const StyleGAN2Config cfg = bench::official_config(res);
            for (const std::string& prec : bench::split_list(prec_list)) {
                cuda::CudaOptions co;
                co.precision = cuda::parse_precision(prec);
                const Cuda backend(stream, co);
                G g = G::random(cfg, 1, backend);
                const Tensor<float> target = bench::random_targets(g, 1, 7);
                const auto stats = std::make_shared<LatentStatistics>();
                const Vgg16 trunk = Vgg16::hash_rule();
                for (const std::string& obj : bench::split_list(obj_list)) {
                    PtiTiming t;
                    StepBreakdown parts;
                    auto timed = [&](auto&& make_loss) {
                        (void)run_pti(g, make_loss, target, 10, 10, stats);  // warm-up: statistics, plans, pool
                        t = run_pti(g, make_loss, target, pivot_steps, tune_steps, stats);
                        if (breakdown) parts = break_down(g, make_loss, target);
                    };
                    if (obj == "mse") {
                        timed([] { return Mse<Cuda>{}; });
                    } else if (obj == "vgg") {
                        timed([&] { return VggPerceptual<Cuda>(backend, trunk, bench::official_vgg_options()); });
                    } else {
                        throw ValueError("unknown objective '" + obj + "' (mse or vgg)");
                    }
                    const std::string config = concat(res, "x", res, " random (cb ", cfg.channel_base, ")");
                    bench::Row r;
                    r.cells = {config, obj, prec, std::to_string(pivot_steps) + " + " + std::to_string(tune_steps),
                               bench::fmt(t.pivot_s, 2), bench::fmt(t.tune_s, 2), bench::fmt(t.pivot_s + t.tune_s, 2),
                               bench::fmt(t.tune_s / static_cast<double>(tune_steps) * 1e3, 2),
                               bench::fmt(t.psnr_before, 2) + " -> " + bench::fmt(t.psnr_after, 2), t.pivot_mode};
                    Json j{Json::Object{}};
                    j.set("config", config);
                    j.set("resolution", static_cast<std::int64_t>(res));
                    j.set("objective", obj);
                    j.set("precision", prec);
                    j.set("pivot_steps", static_cast<std::int64_t>(pivot_steps));
                    j.set("tune_steps", static_cast<std::int64_t>(tune_steps));
                    j.set("pivot_s", t.pivot_s);
                    j.set("tune_s", t.tune_s);
                    j.set("total_s", t.pivot_s + t.tune_s);
                    j.set("tune_ms_per_step", t.tune_s / static_cast<double>(tune_steps) * 1e3);
                    j.set("psnr_before", t.psnr_before);
                    j.set("psnr_after", t.psnr_after);
                    j.set("pivot_launch_mode", t.pivot_mode);
                    j.set("device", std::string(prop.name));
                    if (breakdown) {
                        j.set("forward_loss_ms", parts.forward_ms);
                        j.set("forward_loss_backward_codes_ms", parts.backward_codes_ms);
                        j.set("forward_loss_backward_weights_ms", parts.backward_weights_ms);
                        std::cout << "\n" << config << " " << obj << " " << prec << ": forward + loss "
                                  << bench::fmt(parts.forward_ms, 2) << " ms; + backward to the codes "
                                  << bench::fmt(parts.backward_codes_ms, 2) << " ms; + backward with all weight gradients "
                                  << bench::fmt(parts.backward_weights_ms, 2) << " ms; tuning step "
                                  << bench::fmt(t.tune_s / static_cast<double>(tune_steps) * 1e3, 2) << " ms\n";
                    }
                    r.json = j;
                    rows.push_back(r);
                    std::cout << "." << std::flush;
                }
            }
        }
        std::cout << "\nPivotal Tuning Inversion of one image on " << prop.name << " (wall clock per phase)\n";
        bench::print_table({"config", "objective", "precision", "steps", "pivot s", "tune s", "total s",
                            "tune ms/step", "PSNR pivot -> tuned", "pivot launch"},
                           rows);
        bench::write_json(json_path, "tune_gpu", rows);
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "bench_tune_gpu: " << e.what() << "\n";
        return 1;
    }
}
