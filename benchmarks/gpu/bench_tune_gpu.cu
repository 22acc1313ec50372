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
// --wgrad per_tap,all_taps runs every row with each weight-gradient kernel (CudaOptions::wgrad,
// cuda/wgrad_gemm.cuh vs cuda/wgrad_taps.cuh), side by side in one run. --wgrad-layers adds a
// table of every 3x3 conv of the configuration at batch 1: the device time (median of 20, CUDA
// events) of its backward without the weight gradient and with it, per kernel: where the
// weight-gradient time of a tuning step goes, layer by layer. --breakdown also brackets one more
// evaluate with every weight gradient by cudaProfilerStart/Stop: `ncu --profile-from-start off
// --metrics gpu__time_duration.sum --csv bench_tune_gpu --breakdown ...` times each of its kernels
// (scripts/kernel_time_summary.py adds them up by kernel name).
// Usage: bench_tune_gpu [--quick] [--breakdown] [--wgrad-layers] [--json OUT.json] [--res 256,1024]
//        [--precisions fp32,tf32] [--objectives mse,vgg] [--wgrad per_tap,all_taps]
#include "../device_step_impl.hpp"
#include "device_timing.hpp"

#include <ganinv/backend/cuda.cuh>
#include <ganinv/cuda/stream.hpp>
#include <ganinv/invert/tuner.hpp>
#include <ganinv/loss/network_losses_cuda.cuh>
#include <ganinv/loss/pixel.hpp>
#include <ganinv/loss/vgg_perceptual.hpp>
#include <ganinv/models/vgg16.hpp>

#include <cuda_profiler_api.h>

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
    // One more, the range a profiler started with --profile-from-start off records (no-ops otherwise).
    g.backend().synchronize();
    GANINV_CUDA_CHECK(cudaProfilerStart());
    (void)tuner.evaluate(true);
    g.backend().synchronize();
    GANINV_CUDA_CHECK(cudaProfilerStop());
    return b;
}

/// One 3x3 conv of the configuration: its backward (grad x, styles) alone and with the weight
/// gradient by each kernel, device milliseconds (median of 20 after 3 warm-up runs).
struct LayerWgrad {
    std::string layer;
    nn::ModConvShape shape;
    double backward_ms = 0;
    std::vector<double> with_wgrad_ms;  ///< per kernel of the --wgrad list
};

std::vector<LayerWgrad> wgrad_layers(cudaStream_t stream, const StyleGAN2Config& cfg, cuda::Precision prec,
                                     const std::vector<cuda::WgradKernel>& kernels) {
    std::vector<nn::ModConvShape> shapes;
    std::vector<std::string> names;
    shapes.push_back({1, cfg.channels_at(4), cfg.channels_at(4), 4, 4, 3, 1, true, 4});
    names.push_back("b4.conv1");
    for (Index res = 8; res <= cfg.img_resolution; res *= 2) {
        const Index in_c = cfg.channels_at(res / 2), out_c = cfg.channels_at(res);
        shapes.push_back({1, in_c, out_c, res / 2, res / 2, 3, 2, true, 4});
        names.push_back(concat("b", res, ".conv0 (up)"));
        shapes.push_back({1, out_c, out_c, res, res, 3, 1, true, 4});
        names.push_back(concat("b", res, ".conv1"));
    }
    std::vector<LayerWgrad> out;
    for (std::size_t i = 0; i < shapes.size(); ++i) {
        const nn::ModConvShape& sh = shapes[i];
        LayerWgrad l;
        l.layer = names[i];
        l.shape = sh;
        auto time_with = [&](cuda::WgradKernel k, bool weights) {
            cuda::CudaOptions o;
            o.precision = prec;
            o.wgrad = k;
            Cuda b(stream, o);
            Tensor<float> host_x({sh.batch, sh.in_channels, sh.in_h, sh.in_w}), host_w({sh.out_channels, sh.in_channels, 3, 3});
            Tensor<float> host_s({sh.batch, sh.in_channels}), host_gy({sh.batch, sh.out_channels, sh.out_h(), sh.out_w()});
            Rng rng(5);
            rng.fill_normal(host_x.values());
            rng.fill_normal(host_w.values());
            rng.fill_normal(host_s.values(), 1.0, 0.2);
            rng.fill_normal(host_gy.values());
            auto x = b.upload(host_x), w = b.upload(host_w), s = b.upload(host_s), gy = b.upload(host_gy);
            auto f = b.upload(nn::make_resample_filter({1, 3, 3, 1}));
            auto y = b.empty(gy.shape()), d = b.empty({sh.batch, sh.out_channels}), gx = b.empty(x.shape());
            auto gs = b.empty(s.shape()), gw = b.empty(w.shape());
            b.modconv_forward(x.data(), w.data(), s.data(), f.data(), sh, y.data(), d.data());
            return bench::time_device(stream, 3, 20, [&] {
                       b.modconv_backward(x.data(), w.data(), s.data(), f.data(), d.data(), y.data(), gy.data(), sh,
                                          gx.data(), gs.data(), weights ? gw.data() : nullptr);
                   }).median_ms;
        };
        l.backward_ms = time_with(cuda::WgradKernel::per_tap, false);
        for (cuda::WgradKernel k : kernels) l.with_wgrad_ms.push_back(time_with(k, true));
        out.push_back(std::move(l));
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    std::string json_path = "bench_tune_gpu.json", res_list = "256,1024", prec_list = "fp32,tf32", obj_list = "mse,vgg";
    std::string wgrad_list = "auto";
    bool quick = false, breakdown = false, layers = false;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--quick")) quick = true;
        else if (!std::strcmp(argv[i], "--breakdown")) breakdown = true;
        else if (!std::strcmp(argv[i], "--wgrad-layers")) layers = true;
        else if (!std::strcmp(argv[i], "--wgrad") && i + 1 < argc) wgrad_list = argv[++i];
        else if (!std::strcmp(argv[i], "--json") && i + 1 < argc) json_path = argv[++i];
        else if (!std::strcmp(argv[i], "--res") && i + 1 < argc) res_list = argv[++i];
        else if (!std::strcmp(argv[i], "--precisions") && i + 1 < argc) prec_list = argv[++i];
        else if (!std::strcmp(argv[i], "--objectives") && i + 1 < argc) obj_list = argv[++i];
        else {
            std::cerr << "usage: bench_tune_gpu [--quick] [--breakdown] [--wgrad-layers] [--json OUT.json] [--res 256,1024] "
                         "[--precisions fp32,tf32] [--objectives mse,vgg] [--wgrad auto,per_tap,all_taps]\n";
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
        std::vector<cuda::WgradKernel> kernels;
        for (const std::string& k : bench::split_list(wgrad_list)) kernels.push_back(cuda::parse_wgrad_kernel(k));
        std::vector<bench::Row> rows, layer_rows;
        for (const std::string& rs : bench::split_list(res_list)) {
            const Index res = std::stoll(rs);
            const StyleGAN2Config cfg = bench::official_config(res);
            for (const std::string& prec : bench::split_list(prec_list)) {
                if (layers) {
                    double totals[2] = {0, 0};
                    std::vector<double> kernel_totals(kernels.size(), 0.0);
                    for (const LayerWgrad& l : wgrad_layers(stream, cfg, cuda::parse_precision(prec), kernels)) {
                        bench::Row r;
                        r.cells = {concat(res), prec, l.layer,
                                   concat(l.shape.in_channels, "->", l.shape.out_channels, " ", l.shape.in_h, "x", l.shape.in_w),
                                   bench::fmt(l.backward_ms, 3)};
                        Json j{Json::Object{}};
                        j.set("resolution", static_cast<std::int64_t>(res));
                        j.set("precision", prec);
                        j.set("layer", l.layer);
                        j.set("backward_ms", l.backward_ms);
                        totals[0] += l.backward_ms;
                        for (std::size_t k = 0; k < kernels.size(); ++k) {
                            const double wg = l.with_wgrad_ms[k] - l.backward_ms;
                            r.cells.push_back(bench::fmt(wg, 3));
                            j.set(concat("wgrad_ms_", cuda::to_string(kernels[k])), wg);
                            kernel_totals[k] += wg;
                        }
                        r.json = j;
                        layer_rows.push_back(r);
                    }
                    bench::Row sum;
                    sum.cells = {concat(res), prec, "all 3x3 convs", "", bench::fmt(totals[0], 3)};
                    for (double t : kernel_totals) sum.cells.push_back(bench::fmt(t, 3));
                    layer_rows.push_back(sum);
                }
                for (cuda::WgradKernel wk : kernels) {
                    cuda::CudaOptions co;
                    co.precision = cuda::parse_precision(prec);
                    co.wgrad = wk;
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
                        r.cells = {config, obj, prec, cuda::to_string(wk), std::to_string(pivot_steps) + " + " + std::to_string(tune_steps),
                                   bench::fmt(t.pivot_s, 2), bench::fmt(t.tune_s, 2), bench::fmt(t.pivot_s + t.tune_s, 2),
                                   bench::fmt(t.tune_s / static_cast<double>(tune_steps) * 1e3, 2),
                                   bench::fmt(t.psnr_before, 2) + " -> " + bench::fmt(t.psnr_after, 2), t.pivot_mode};
                        Json j{Json::Object{}};
                        j.set("config", config);
                        j.set("resolution", static_cast<std::int64_t>(res));
                        j.set("objective", obj);
                        j.set("precision", prec);
                        j.set("wgrad_kernel", std::string(cuda::to_string(wk)));
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
        }
        std::cout << "\nPivotal Tuning Inversion of one image on " << prop.name << " (wall clock per phase)\n";
        bench::print_table({"config", "objective", "precision", "wgrad", "steps", "pivot s", "tune s", "total s",
                            "tune ms/step", "PSNR pivot -> tuned", "pivot launch"},
                           rows);
        if (layers) {
            std::vector<std::string> head{"res", "precision", "layer", "channels, input plane", "backward ms (no wgrad)"};
            for (cuda::WgradKernel k : kernels) head.push_back(concat("+ wgrad ms (", cuda::to_string(k), ")"));
            std::cout << "\nWeight gradient per 3x3 conv, batch 1 (device time, median of 20)\n";
            bench::print_table(head, layer_rows);
            for (bench::Row& r : layer_rows)
                if (r.json.is_object()) rows.push_back(std::move(r));
        }
        bench::write_json(json_path, "tune_gpu", rows);
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "bench_tune_gpu: " << e.what() << "\n";
        return 1;
    }
}
