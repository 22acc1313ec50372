// GPU: time per step of whole Adam inversions (benchmarks/device_step_impl.hpp) with the loop on
// the device (invert/device_loop.hpp: one CUDA graph per step) at the official 256x256 and
// 1024x1024 random-weight configurations, batch 1 and 8, for the official projector's objective
// (W + noise maps + VGG16 feature distance at <= 256x256 + the noise regulariser) and W+ with MSE,
// in fp32 / tf32 / bf16 (the VGG's cuDNN convolutions in the same precision). Prints the table, writes JSON
// with FLOPs per step (generator fwd+bwd = 2x forward, VGG fwd + data-bwd = 2x forward, as
// bench_gpu counts) for the floor; official_projector_timing.py times the official code the same way.
// Each row is the median of three (short, long) pairs; "spread" is (max - min) / median of them;
// "in-run" times the long runs' steps from their own progress reports (no setup at all).
// --profile official|wplus_mse: instead of the table, one inversion of that objective (the first
// --res / --precisions / --batches entry) with a progress report after every step, and steps 7..8
// (two graph replays, after the eager step and the capture) bracketed by cudaProfilerStart/Stop:
// `ncu --profile-from-start off --metrics gpu__time_duration.sum --csv bench_device_step_gpu
// --profile official ...` times each kernel of two steady-state steps (scripts/kernel_time_summary.py).
// --prologues fused,unfused: rows with the synthesis backward's one-pass prologue
// (CudaOptions::fuse_backward_prologue, cuda/modconv_grad_prologue.cuh) on and off, side by side.
// --engines auto,wgmma,portable: rows per CudaOptions::engine (wgmma: every supported modconv on
// the wgmma kernels, whatever the size heuristic would choose), side by side.
// --split-k on,off: rows with CudaOptions::wgmma_split_k on and off (off: the small planes' convs
// on the portable kernels, as before split-K), side by side.
// --row-tiles strips,rows,off: rows with CudaOptions::wgmma_row_tiles and wgmma_row_strips on
// (strips), the row tiles without strips (rows), and neither (off, the library's default: the wide
// stride-1 convs gather every tap from L2; cuda/hopper_conv_rows.cuh / hopper_conv_strip.cuh), side by side.
// --vgg-search heuristic,exhaustive: official rows with the VGG's cuDNN algorithms from cuDNN's
// heuristic (the loss's default) and from cudnnFind (timed once per geometry at setup), side by side.
// Usage: bench_device_step_gpu [--quick] [--json OUT.json] [--res 256,1024] [--precisions fp32,tf32,bf16]
//        [--batches 1,8] [--host-loop] [--profile official|wplus_mse] [--prologues fused,unfused]
//        [--vgg-search heuristic,exhaustive] [--engines auto,wgmma,portable] [--split-k on,off]
//        [--row-tiles strips,rows,off]
#include "../device_step_impl.hpp"

#include <ganinv/backend/cuda.cuh>
#include <ganinv/loss/network_losses_cuda.cuh>
#include <ganinv/cuda/stream.hpp>
#include <ganinv/loss/pixel.hpp>
#include <ganinv/loss/vgg_perceptual.hpp>
#include <ganinv/models/stylegan2_config.hpp>
#include <ganinv/models/vgg16.hpp>

#include <cuda_profiler_api.h>

#include <cstring>
#include <sstream>

using namespace ganinv;

namespace {

double synthesis_forward_flops(const StyleGAN2Config& cfg, Index batch) {
    double f = 0;
    for (const auto& l : SynthesisPlan(cfg).layers) {
        const double in_px = static_cast<double>(l.resolution / l.up) * static_cast<double>(l.resolution / l.up);
        f += 2.0 * static_cast<double>(batch * l.out_channels * l.in_channels * l.kernel * l.kernel) * in_px;
    }
    return f;
}

double vgg_forward_flops(Index size, Index batch) {
    double f = 0;
    Index s = size;
    for (const auto& c : kVgg16Convs) {
        if (c.pool_before) s /= 2;
        f += 2.0 * static_cast<double>(batch * c.in * c.out * 9) * static_cast<double>(s * s);
    }
    return f;
}

/// One inversion of `steps` steps reporting after every step; the profiler's range covers the
/// replays of steps first..last (1-based, the step a report follows).
template <class Space, class G, class MakeLoss>
void profile_steps(G& g, MakeLoss&& make_loss, InverterOptions o, const Tensor<float>& targets, Index first,
                   Index last) {
    using LossT = decltype(make_loss());
    o.steps = last + 2;
    o.progress_every = 1;
    o.on_progress = [&](const InversionProgress& p) {
        if (p.step == first - 1) GANINV_CUDA_CHECK(cudaProfilerStart());
        if (p.step == last) GANINV_CUDA_CHECK(cudaProfilerStop());
    };
    Inverter<G, Space, LossT, Adam> inv(g, make_loss(), Adam(ProjectorSchedule{}.adam_options()), o);
    (void)inv.run(targets);
    g.backend().synchronize();
    std::cout << "profiled steps " << first << ".." << last << " of " << o.steps << " (" << inv.launch_mode()
              << ")\n";
}

}  // namespace

int main(int argc, char** argv) {
    std::string json_path = "bench_device_step_gpu.json", res_list = "256,1024", prec_list = "fp32,tf32,bf16",
                batch_list = "1,8", prologue_list = "fused", search_list = "heuristic",
                engine_list = "auto", split_list = "on", rows_list = "off";
    std::string profile;  // objective to profile instead of the table
    bool quick = false, host_loop = false;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--quick")) quick = true;
        else if (!std::strcmp(argv[i], "--host-loop")) host_loop = true;
        else if (!std::strcmp(argv[i], "--json") && i + 1 < argc) json_path = argv[++i];
        else if (!std::strcmp(argv[i], "--res") && i + 1 < argc) res_list = argv[++i];
        else if (!std::strcmp(argv[i], "--precisions") && i + 1 < argc) prec_list = argv[++i];
        else if (!std::strcmp(argv[i], "--batches") && i + 1 < argc) batch_list = argv[++i];
        else if (!std::strcmp(argv[i], "--profile") && i + 1 < argc) profile = argv[++i];
        else if (!std::strcmp(argv[i], "--prologues") && i + 1 < argc) prologue_list = argv[++i];
        else if (!std::strcmp(argv[i], "--vgg-search") && i + 1 < argc) search_list = argv[++i];
        else if (!std::strcmp(argv[i], "--engines") && i + 1 < argc) engine_list = argv[++i];
        else if (!std::strcmp(argv[i], "--split-k") && i + 1 < argc) split_list = argv[++i];
        else if (!std::strcmp(argv[i], "--row-tiles") && i + 1 < argc) rows_list = argv[++i];
        else {
            std::cerr << "usage: bench_device_step_gpu [--quick] [--json OUT.json] [--res 256,1024] "
                         "[--precisions fp32,tf32,bf16] [--batches 1,8] [--host-loop] [--profile official|wplus_mse] "
                         "[--prologues fused,unfused] [--vgg-search heuristic,exhaustive] [--engines auto,wgmma,portable] [--split-k on,off] [--row-tiles strips,rows,off]\n";
            return 2;
        }
    }
    std::vector<cuda::AlgoSearch> searches;
    for (const std::string& a : bench::split_list(search_list)) {
        if (a != "heuristic" && a != "exhaustive") {
            std::cerr << "bench_device_step_gpu: --vgg-search takes heuristic and/or exhaustive, not '" << a << "'\n";
            return 2;
        }
        searches.push_back(a == "heuristic" ? cuda::AlgoSearch::heuristic : cuda::AlgoSearch::exhaustive);
    }
    for (const std::string& p : bench::split_list(split_list))
        if (p != "on" && p != "off") {
            std::cerr << "bench_device_step_gpu: --split-k takes on and/or off, not '" << p << "'\n";
            return 2;
        }
    for (const std::string& p : bench::split_list(rows_list))
        if (p != "strips" && p != "rows" && p != "off") {
            std::cerr << "bench_device_step_gpu: --row-tiles takes strips, rows and/or off, not '" << p << "'\n";
            return 2;
        }
    for (const std::string& p : bench::split_list(prologue_list))
        if (p != "fused" && p != "unfused") {
            std::cerr << "bench_device_step_gpu: --prologues takes fused and/or unfused, not '" << p << "'\n";
            return 2;
        }
    try {
        int count = 0;
        if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
            std::puts("SKIPPED: no CUDA device");
            return 77;
        }
        if (!profile.empty() && profile != "official" && profile != "wplus_mse") {
            std::cerr << "bench_device_step_gpu: --profile takes official or wplus_mse, not '" << profile << "'\n";
            return 2;
        }
        using G = StyleGAN2<Cuda>;
        cuda::Stream stream;
        if (!profile.empty()) {
            const Index res = std::stoll(bench::split_list(res_list).at(0));
            const Index batch = std::stoll(bench::split_list(batch_list).at(0));
            cuda::CudaOptions co;
            co.precision = cuda::parse_precision(bench::split_list(prec_list).at(0));
            co.fuse_backward_prologue = bench::split_list(prologue_list).at(0) == "fused";
            co.engine = cuda::parse_gemm_engine(bench::split_list(engine_list).at(0));
            co.wgmma_split_k = bench::split_list(split_list).at(0) == "on";
            co.wgmma_row_tiles = bench::split_list(rows_list).at(0) != "off";
            co.wgmma_row_strips = bench::split_list(rows_list).at(0) == "strips";
            const Cuda backend(stream, co);
            G g = G::random(bench::official_config(res), 1, backend);
            const Tensor<float> t = bench::random_targets(g, batch, 7);
            InverterOptions o;
            o.optimize_noise = profile == "official";
            o.eval_batch = batch;
            o.device_loop = !host_loop;
            o.w_statistics_cache = std::make_shared<LatentStatistics>();
            if (profile == "official") {
                const Vgg16 trunk = Vgg16::hash_rule();
                auto vgg = [&] {
                    return VggPerceptual<Cuda>(backend, trunk, bench::official_vgg_options(), searches.at(0));
                };
                profile_steps<WSpace>(g, vgg, o, t, 7, 8);
            } else {
                profile_steps<WPlusSpace>(g, [] { return Mse<Cuda>{}; }, o, t, 7, 8);
            }
            return 0;
        }
        cudaDeviceProp prop{};
        GANINV_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
        std::vector<bench::Row> rows;
        for (const std::string& rs : bench::split_list(res_list)) {
            const Index res = std::stoll(rs);
            const StyleGAN2Config cfg = bench::official_config(res);
            const Index s1 = quick ? 5 : 10, s2 = quick ? 20 : (res >= 1024 ? 50 : 110);
            for (const std::string& prec : bench::split_list(prec_list))
              for (const std::string& engine : bench::split_list(engine_list))
              for (const std::string& split_k : bench::split_list(split_list))
              for (const std::string& row_tiles : bench::split_list(rows_list))
              for (const std::string& prologue : bench::split_list(prologue_list)) {
                cuda::CudaOptions co;
                co.wgmma_split_k = split_k == "on";
                co.wgmma_row_tiles = row_tiles != "off";
                co.wgmma_row_strips = row_tiles == "strips";
                co.precision = cuda::parse_precision(prec);
                co.engine = cuda::parse_gemm_engine(engine);
                co.fuse_backward_prologue = prologue == "fused";
                const Cuda backend(stream, co);
                G g = G::random(cfg, 1, backend);
                const Vgg16 trunk = Vgg16::hash_rule();  // the VGG runs in the generator's precision
                for (const std::string& bs : bench::split_list(batch_list)) {
                    const Index batch = std::stoll(bs);
                    const Tensor<float> t = bench::random_targets(g, batch, 7);
                    for (const bool official : {true, false})
                      for (std::size_t si = 0; si < (official ? searches.size() : 1); ++si) {
                        const cuda::AlgoSearch search = searches[si];
                        InverterOptions o;
                        o.optimize_noise = official;
                        o.eval_batch = batch;
                        o.device_loop = !host_loop;
                        o.w_statistics_cache = std::make_shared<LatentStatistics>();
                        bench::StepTiming st;
                        double flops = 2.0 * synthesis_forward_flops(cfg, batch);
                        if (official) {
                            auto vgg = [&] {
                                return VggPerceptual<Cuda>(backend, trunk, bench::official_vgg_options(), search);
                            };
                            st = bench::time_inverter_steps<WSpace>(g, vgg, o, t, s1, s2);
                            flops += 2.0 * vgg_forward_flops(std::min<Index>(res, 256), batch);
                        } else {
                            auto mse = [] { return Mse<Cuda>{}; };
                            st = bench::time_inverter_steps<WPlusSpace>(g, mse, o, t, s1, s2);
                        }
                        const std::string config = concat(res, "x", res, " random (cb ", cfg.channel_base, ")");
                        const std::string obj = official ? "W + noise + VGG (official)" : "W+, MSE";
                        bench::Row r;
                        const std::string algos =
                            !official ? "-" : search == cuda::AlgoSearch::heuristic ? "heuristic" : "cudnnFind";
                        r.cells = {config, obj, prec, engine, split_k, row_tiles, prologue, algos, std::to_string(batch), bench::fmt(st.ms_per_step),
                                   bench::fmt(100.0 * st.spread, 1) + "%", bench::fmt(st.inrun_ms_per_step),
                                   bench::fmt(100.0 * st.inrun_spread, 1) + "%",
                                   bench::fmt(st.ms_per_step / static_cast<double>(batch)),
                                   bench::fmt(flops / st.ms_per_step * 1e-9, 1), bench::fmt(st.setup_s, 2), st.mode};
                        r.json = bench::step_json(config, official ? "official" : "wplus_mse", prec, batch, st);
                        r.json.set("resolution", static_cast<std::int64_t>(res));
                        r.json.set("gflop_per_step", flops * 1e-9);
                        r.json.set("device", std::string(prop.name));
                        r.json.set("backward_prologue", prologue);
                        r.json.set("vgg_algorithms", algos);
                        r.json.set("gemm_engine", engine);
                        r.json.set("wgmma_split_k", split_k);
                        r.json.set("wgmma_row_tiles", row_tiles);
                        rows.push_back(r);
                        std::cout << "." << std::flush;
                    }
                }
            }
        }
        std::cout << "\nAdam inversion step on " << prop.name << " (" << (host_loop ? "host loop" : "device loop")
                  << "; ms/step = (t(long) - t(short)) / steps)\n";
        bench::print_table({"config", "objective", "precision", "GEMMs", "split-K", "row tiles", "bwd prologue", "VGG algos", "batch", "ms/step", "spread",
                            "in-run ms/step", "in-run spread", "ms/image-step", "TFLOP/s",
                            "setup s", "launch"},
                           rows);
        bench::write_json(json_path, "device_step_gpu", rows);
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "bench_device_step_gpu: " << e.what() << "\n";
        return 1;
    }
}
