// GPU benchmark of the Cuda backend: single modulated convs (512->512, 3x3, 64^2 and 256^2,
// batch 1 and 8, forward and forward+backward, both style variants) and full synthesis at 256^2
// (channel_base 16384) and 1024^2 (channel_base 32768), channel_max 512, batch 1 and 8, forward
// and forward+backward w.r.t. ws, replayed as CUDA graphs. Device time from CUDA events (median),
// TFLOP/s from the modulated-conv FLOPs, peak device memory from the backend's pool. Prints a
// table and writes JSON; benchmarks/gpu/report.py joins it with the PyTorch baseline.
//
//   bench_gpu [--out FILE.json] [--precisions fp32,tf32,bf16] [--quick] [--profile] [--both-style-variants]
//             [--engine auto|portable|wgmma] [--cases modconv,synthesis] [--filter NAME_SUBSTRING]
// --profile: per-backend-call device times of one eager synthesis fwd+bwd (1024 and 256, batch 1).
// --both-style-variants: also time the fold_weights style variant of every single modconv.
// --engine: which kernels run the TF32/BF16 convs (CudaOptions::engine; recorded per row).
#include "device_timing.hpp"

#include <ganinv/core/json.hpp>
#include <ganinv/core/rng.hpp>
#include <ganinv/backend/cuda.cuh>
#include <ganinv/cuda/stream.hpp>
#include <ganinv/models/stylegan2.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

using namespace ganinv;
using cuda::Precision;
using bench::Timing;
using bench::time_device;

namespace {

Tensor<float> randn(const Shape& s, std::uint64_t seed, float scale = 1.0f, float offset = 0.0f) {
    Tensor<float> t(s);
    Rng rng(seed);
    rng.fill_normal(t.values(), 0.0, scale);
    for (float& v : t.values()) v += offset;
    return t;
}

cuda::GemmEngine g_engine = cuda::GemmEngine::automatic;

/// The engine a backend actually uses for TF32/BF16 ("-" for FP32, always the FFMA kernels).
std::string engine_used(const Cuda& b) {
    if (b.options().precision == Precision::fp32) return "ffma";
    return b.wgmma_enabled() ? (g_engine == cuda::GemmEngine::wgmma ? "wgmma" : "auto(wgmma)") : "portable";
}

struct Result {
    std::string kind, name, precision, mode, variant, engine;
    Index batch = 0, res = 0;
    double ms = 0, ms_min = 0, ms_eager = 0, flops = 0, peak_mib = 0;
};

std::string fmt(double v, int p = 3) {
    char b[64];
    std::snprintf(b, sizeof b, "%.*f", p, v);
    return b;
}

double mib(std::size_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

/// One modulated conv, forward or forward + backward (grad x and styles).
Result bench_modconv(cudaStream_t stream, Precision prec, cuda::StyleMode sm, Index batch, Index res, bool backward,
                     bool quick) {
    cuda::CudaOptions o;
    o.precision = prec;
    o.style_mode = sm;
    o.engine = g_engine;
    Cuda b(stream, o);
    const Index C = 512, O = 512;
    const nn::ModConvShape sh{batch, C, O, res, res, 3, 1, true, 4};
    auto x = b.upload(randn({batch, C, res, res}, 1)), w = b.upload(randn({O, C, 3, 3}, 2));
    auto s = b.upload(randn({batch, C}, 3, 0.5f, 1.0f)), f = b.upload(nn::make_resample_filter({1, 3, 3, 1}));
    auto gy = b.upload(randn({batch, O, res, res}, 4));
    auto y = b.empty({batch, O, res, res}), d = b.empty({batch, O}), gx = b.empty(x.shape()), gs = b.empty(s.shape());
    auto run = [&] {
        b.modconv_forward(x.data(), w.data(), s.data(), f.data(), sh, y.data(), d.data());
        if (backward)
            b.modconv_backward(x.data(), w.data(), s.data(), f.data(), d.data(), y.data(), gy.data(), sh, gx.data(),
                               gs.data(), nullptr);
    };
    run();
    b.synchronize();
    b.pool().reset_peaks();
    const int reps = quick ? 5 : (batch * res * res >= 8 * 256 * 256 ? 15 : 40);
    const Timing t = time_device(stream, 2, reps, run);
    Result r;
    r.kind = "modconv";
    r.name = concat("modconv512_3x3_", res, "x", res, "_b", batch, backward ? "_fwdbwd" : "_fwd");
    r.precision = cuda::to_string(prec);
    r.mode = backward ? "fwd+bwd" : "fwd";
    r.variant = cuda::to_string(sm);
    r.engine = engine_used(b);
    r.batch = batch;
    r.res = res;
    r.ms = t.median_ms;
    r.ms_min = t.min_ms;
    r.flops = 2.0 * batch * O * C * 9 * res * res * (backward ? 2 : 1);
    r.peak_mib = mib(b.pool().peak_bytes_in_use());
    return r;
}

double synthesis_flops(const StyleGAN2Config& cfg, Index batch) {
    double f = 0;
    for (const auto& l : SynthesisPlan(cfg).layers) {
        const double in_px = static_cast<double>(l.resolution / l.up) * (l.resolution / l.up);
        f += 2.0 * batch * l.out_channels * l.in_channels * l.kernel * l.kernel * in_px;
    }
    return f;
}

/// Full synthesis from ws (const noise), forward or forward + backward w.r.t. ws, as a CUDA graph.
Result bench_synthesis(cudaStream_t stream, Precision prec, Index res, Index channel_base, Index batch, bool backward,
                       bool quick) {
    StyleGAN2Config cfg;
    cfg.img_resolution = res;
    cfg.channel_base = channel_base;
    cfg.channel_max = 512;
    cuda::CudaOptions o;
    o.precision = prec;
    o.engine = g_engine;
    auto g = StyleGAN2<Cuda>::random(cfg, 1, Cuda(stream, o));
    Cuda& b = g.backend();
    const auto ws = b.upload(randn({batch, g.num_ws(), g.w_dim()}, 5));
    const auto gimg = b.upload(randn({batch, 3, res, res}, 6));
    Cuda::Buffer img, gws;
    auto step = [&] {
        StyleGAN2<Cuda>::Cache cache;
        img = g.synthesis(ws, {}, &cache);
        if (backward) gws = g.synthesis_backward_ws(cache, gimg);
    };
    step();  // warm-up: fills the pool
    b.synchronize();
    b.pool().reset_peaks();
    const int reps = quick ? 3 : (res >= 1024 ? (batch >= 8 ? 5 : 10) : 20);
    const Timing eager = time_device(stream, 1, reps, step);
    const double peak = mib(b.pool().peak_bytes_in_use());
    cuda::Graph graph;
    graph.capture(stream, step);
    const Timing t = time_device(stream, 2, reps, [&] { graph.launch(stream); });
    Result r;
    r.kind = "synthesis";
    r.name = concat("synthesis", res, "_b", batch, backward ? "_fwdbwd" : "_fwd");
    r.precision = cuda::to_string(prec);
    r.mode = backward ? "fwd+bwd(ws)" : "fwd";
    r.variant = "graph";
    r.engine = engine_used(b);
    r.batch = batch;
    r.res = res;
    r.ms = t.median_ms;
    r.ms_min = t.min_ms;
    r.ms_eager = eager.median_ms;
    r.flops = synthesis_flops(cfg, batch) * (backward ? 2 : 1);
    r.peak_mib = peak;
    return r;
}

/// The Cuda backend with every heavy member bracketed by CUDA events: where synthesis time goes.
struct Profile {
    struct Rec {
        std::string name;
        cudaEvent_t a, b;
    };
    std::vector<Rec> recs;
    void report(const char* title) {
        std::vector<std::pair<std::string, std::pair<int, double>>> tot;
        double all = 0;
        for (auto& r : recs) {
            GANINV_CUDA_CHECK(cudaEventSynchronize(r.b));
            float ms = 0;
            GANINV_CUDA_CHECK(cudaEventElapsedTime(&ms, r.a, r.b));
            auto it = std::find_if(tot.begin(), tot.end(), [&](auto& t) { return t.first == r.name; });
            if (it == tot.end()) tot.push_back({r.name, {1, ms}});
            else it->second.first++, it->second.second += ms;
            all += ms;
            (void)cudaEventDestroy(r.a);
            (void)cudaEventDestroy(r.b);
        }
        recs.clear();
        std::sort(tot.begin(), tot.end(), [](auto& x, auto& y) { return x.second.second > y.second.second; });
        std::printf("profile %s: %.3f ms in timed backend calls\n", title, all);
        for (auto& [name, v] : tot)
            std::printf("  %-28s %4d calls %9.3f ms %5.1f%%\n", name.c_str(), v.first, v.second, 100.0 * v.second / all);
    }
};

struct ProfiledCuda : Cuda {
    ProfiledCuda(cudaStream_t s, cuda::CudaOptions o, std::shared_ptr<Profile> p) : Cuda(s, o), prof(std::move(p)) {}
    std::shared_ptr<Profile> prof;

    template <class F>
    void timed(std::string name, F&& f) const {
        Profile::Rec r{std::move(name), nullptr, nullptr};
        GANINV_CUDA_CHECK(cudaEventCreate(&r.a));
        GANINV_CUDA_CHECK(cudaEventCreate(&r.b));
        GANINV_CUDA_CHECK(cudaEventRecord(r.a, stream()));
        f();
        GANINV_CUDA_CHECK(cudaEventRecord(r.b, stream()));
        prof->recs.push_back(r);
    }
    static std::string tag(const nn::ModConvShape& sh) {
        return sh.kernel == 1 ? "torgb" : concat("up", sh.up, "_", sh.in_h * sh.up);
    }
    void modconv_forward(const float* x, const float* w, const float* s, const float* f, const nn::ModConvShape& sh,
                         float* y, float* d) const {
        timed("modconv_fwd " + tag(sh), [&] { Cuda::modconv_forward(x, w, s, f, sh, y, d); });
    }
    void modconv_forward_fused(const float* x, const float* w, const float* s, const float* f,
                               const nn::ModConvShape& sh, float* y, float* d, float* out, const float* nz, bool ps,
                               const float* st, const float* b, const nn::BiasActParams& a) const {
        timed("modconv_fwd " + tag(sh), [&] { Cuda::modconv_forward_fused(x, w, s, f, sh, y, d, out, nz, ps, st, b, a); });
    }
    void modconv_backward(const float* x, const float* w, const float* s, const float* f, const float* d,
                          const float* y, const float* gy, const nn::ModConvShape& sh, float* gx, float* gs,
                          float* gw, bool acc = false) const {
        timed("modconv_bwd " + tag(sh), [&] { Cuda::modconv_backward(x, w, s, f, d, y, gy, sh, gx, gs, gw, acc); });
    }
#define GANINV_PROFILED(member)                                               \
    template <class... A>                                                     \
    void member(A&&... a) const {                                             \
        timed(#member, [&] { Cuda::member(std::forward<A>(a)...); });         \
    }
    GANINV_PROFILED(bias_act_forward)
    GANINV_PROFILED(bias_act_backward)
    GANINV_PROFILED(add_noise)
    GANINV_PROFILED(add_noise_backward)
    GANINV_PROFILED(bias_act_noise_backward)
    GANINV_PROFILED(upfirdn2d_forward)
    GANINV_PROFILED(upfirdn2d_backward)
    GANINV_PROFILED(linear_forward)
    GANINV_PROFILED(linear_backward)
    GANINV_PROFILED(gather_columns)
    GANINV_PROFILED(scatter_add_columns)
    GANINV_PROFILED(axpy)
    GANINV_PROFILED(sum_rows_add)
    GANINV_PROFILED(broadcast_rows)
#undef GANINV_PROFILED
};

/// One eager forward + backward of a synthesis network with per-call device times.
void profile_synthesis(cudaStream_t stream, Precision prec, Index res, Index channel_base, Index batch) {
    StyleGAN2Config cfg;
    cfg.img_resolution = res;
    cfg.channel_base = channel_base;
    cfg.channel_max = 512;
    cuda::CudaOptions o;
    o.precision = prec;
    o.engine = g_engine;
    auto prof = std::make_shared<Profile>();
    auto g = StyleGAN2<ProfiledCuda>::random(cfg, 1, ProfiledCuda(stream, o, prof));
    auto& b = g.backend();
    const auto ws = b.upload(randn({batch, g.num_ws(), g.w_dim()}, 5));
    const auto gimg = b.upload(randn({batch, 3, res, res}, 6));
    for (int rep = 0; rep < 2; ++rep) {  // the first pass warms the pool
        prof->recs.clear();
        StyleGAN2<ProfiledCuda>::Cache cache;
        cuda::EventTimer t;
        t.start(stream);
        auto img = g.synthesis(ws, {}, &cache);
        auto gws = g.synthesis_backward_ws(cache, gimg);
        t.stop(stream);
        if (rep == 1) {
            std::printf("synthesis%lld_b%lld fwd+bwd %s eager, profiled: %.3f ms\n", static_cast<long long>(res),
                        static_cast<long long>(batch), cuda::to_string(prec), t.ms());
            prof->report(concat("synthesis", res, "_b", batch, "_", cuda::to_string(prec)).c_str());
        } else {
            b.synchronize();
            for (auto& r : prof->recs) {
                (void)cudaEventDestroy(r.a);
                (void)cudaEventDestroy(r.b);
            }
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    std::string out = "bench_gpu.json", precs = "fp32,tf32,bf16";
    std::string cases = "modconv,synthesis", filter;
    bool quick = false, profile = false, variants = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--profile") profile = true;
        else if (a == "--both-style-variants") variants = true;
        else if (a == "--out" && i + 1 < argc) out = argv[++i];
        else if (a == "--precisions" && i + 1 < argc) precs = argv[++i];
        else if (a == "--quick") quick = true;
        else if (a == "--engine" && i + 1 < argc) g_engine = cuda::parse_gemm_engine(argv[++i]);
        else if (a == "--cases" && i + 1 < argc) cases = argv[++i];
        else if (a == "--filter" && i + 1 < argc) filter = argv[++i];
        else {
            std::fprintf(stderr, "usage: bench_gpu [--out FILE.json] [--precisions fp32,tf32,bf16] [--quick] [--profile] "
                                 "[--both-style-variants] [--engine auto|portable|wgmma] [--cases modconv,synthesis] [--filter NAME_SUBSTRING]\n");
            return 2;
        }
    }
    if (!cuda_device_available()) {
        std::puts("SKIPPED: no CUDA device");
        return 77;
    }
    try {
        std::vector<Precision> plist;
        for (const char* p : {"fp32", "tf32", "bf16"})
            if (precs.find(p) != std::string::npos) plist.push_back(cuda::parse_precision(p));
        cudaDeviceProp prop{};
        GANINV_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
        cuda::Stream stream;
        if (profile) {
            for (Precision p : plist) {
                profile_synthesis(stream, p, 1024, 32768, 1);
                profile_synthesis(stream, p, 256, 16384, 1);
            }
            return 0;
        }
        std::vector<Result> rows;
        for (Precision p : plist) {
            for (Index res : {64, 256})
                for (Index batch : {1, 8})
                    if (cases.find("modconv") != std::string::npos)
                    for (bool bwd : {false, true})
                        for (auto sm : {cuda::StyleMode::scale_input, cuda::StyleMode::fold_weights}) {
                            if (sm == cuda::StyleMode::fold_weights && !variants) continue;
                            if (!filter.empty() && concat("modconv512_3x3_", res, "x", res, "_b", batch, bwd ? "_fwdbwd" : "_fwd")
                                                           .find(filter) == std::string::npos)
                                continue;
                            rows.push_back(bench_modconv(stream, p, sm, batch, res, bwd, quick));
                            const Result& r = rows.back();
                            std::printf("%-34s %-5s %-12s %-11s %9s ms %8s TFLOP/s\n", r.name.c_str(),
                                        r.precision.c_str(), r.variant.c_str(), r.engine.c_str(), fmt(r.ms).c_str(),
                                        fmt(r.flops / r.ms * 1e-9, 1).c_str());
                            std::fflush(stdout);
                        }
            for (auto [res, base] : {std::pair<Index, Index>{256, 16384}, {1024, 32768}})
                for (Index batch : {1, 8})
                    if (cases.find("synthesis") != std::string::npos)
                    for (bool bwd : {false, true}) {
                        if (!filter.empty() &&
                            concat("synthesis", res, "_b", batch, bwd ? "_fwdbwd" : "_fwd").find(filter) == std::string::npos)
                            continue;
                        rows.push_back(bench_synthesis(stream, p, res, base, batch, bwd, quick));
                        const Result& r = rows.back();
                        std::printf("%-34s %-5s %-11s graph %9s ms (eager %s) %8s TFLOP/s peak %s MiB\n",
                                    r.name.c_str(), r.precision.c_str(), r.engine.c_str(), fmt(r.ms).c_str(), fmt(r.ms_eager).c_str(),
                                    fmt(r.flops / r.ms * 1e-9, 1).c_str(), fmt(r.peak_mib, 0).c_str());
                        std::fflush(stdout);
                    }
        }
        Json root{Json::Object{}};
        const std::time_t now = std::time(nullptr);
        char date[32];
        std::strftime(date, sizeof date, "%Y-%m-%d", std::gmtime(&now));
        root.set("benchmark", "ganinv_cuda");
        root.set("date", std::string(date));
        root.set("device", std::string(prop.name));
        root.set("sms", static_cast<std::int64_t>(prop.multiProcessorCount));
        Json::Array arr;
        for (const Result& r : rows) {
            Json j{Json::Object{}};
            j.set("kind", r.kind);
            j.set("name", r.name);
            j.set("precision", r.precision);
            j.set("mode", r.mode);
            j.set("variant", r.variant);
            j.set("engine", r.engine);
            j.set("batch", static_cast<std::int64_t>(r.batch));
            j.set("res", static_cast<std::int64_t>(r.res));
            j.set("ms", r.ms);
            j.set("ms_min", r.ms_min);
            j.set("ms_eager", r.ms_eager);
            j.set("gflop", r.flops * 1e-9);
            j.set("tflops", r.flops / r.ms * 1e-9);
            j.set("peak_mib", r.peak_mib);
            arr.push_back(j);
        }
        root.set("rows", arr);
        std::ofstream(out) << root.dump() << "\n";
        std::printf("wrote %s\n", out.c_str());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_gpu: %s\n", e.what());
        return 1;
    }
    return 0;
}
