// GPU benchmark of the CUDA network losses: LPIPS-VGG and VggPerceptual at 256x256 (hash-rule
// trunk, real LPIPS lin weights) and Identity at 150x150 (face-api weights), batch 1 and 8,
// forward (per-image values) and forward + backward (plus the gradient w.r.t. pred), target
// features cached (the steady state of an inversion). The same computations as
// benchmarks/gpu/bench_losses_torch.py. Device time from CUDA events, median; the whole call
// is timed, including the read-back of the per-image values. Prints a table and writes JSON;
// with --torch FILE (bench_losses_torch.py's JSON from the same GPU) it adds PyTorch's times
// and the speed-up.
//
//   bench_losses_gpu [--data tests/data] [--json OUT.json] [--torch TORCH.json] [--quick] [--reps N]
//                    [--heuristic]   (cuDNN heuristic algorithm choice instead of cudnnFind)
#include "device_timing.hpp"

#include <ganinv/core/json.hpp>
#include <ganinv/core/rng.hpp>
#include <ganinv/loss/network_losses_cuda.cuh>
#include <ganinv/cuda/stream.hpp>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

using namespace ganinv;

namespace {

Tensor<float> images(Index n, Index size, std::uint64_t seed) {
    Tensor<float> t({n, 3, size, size});
    Rng rng(seed);
    for (float& v : t.values()) v = static_cast<float>(rng.uniform() * 1.8 - 0.9);
    return t;
}

struct Row {
    std::string loss;
    Index size = 0, batch = 0;
    double fwd_ms = 0, fwdbwd_ms = 0, peak_mib = 0;
    double torch_fwd = -1, torch_fwdbwd = -1;  ///< per image; -1 = not given
};

template <class L>
Row run(L& loss, const Cuda& b, const std::string& name, Index size, Index batch, int reps) {
    const cuda::DeviceTensor pred = b.upload(images(batch, size, 1)), target = b.upload(images(batch, size, 2));
    cuda::DeviceTensor grad = b.empty(pred.shape());
    Row r{name, size, batch};
    b.pool().reset_peaks();
    r.fwd_ms = bench::time_device(b.stream(), 2, reps, [&] { (void)loss.evaluate(pred, target, nullptr); }).median_ms /
               static_cast<double>(batch);
    r.fwdbwd_ms = bench::time_device(b.stream(), 2, reps, [&] { (void)loss.evaluate(pred, target, &grad); }).median_ms /
                  static_cast<double>(batch);
    r.peak_mib = static_cast<double>(b.pool().peak_bytes_in_use()) / (1024.0 * 1024.0);
    std::printf(".");
    std::fflush(stdout);
    return r;
}

/// PyTorch's per-image times from bench_losses_torch.py's JSON, matched by loss kind and batch.
void join_torch(std::vector<Row>& rows, const std::string& file) {
    std::ifstream in(file);
    GANINV_CHECK(in.good(), IoError, "bench_losses_gpu: cannot read '", file, "'");
    std::stringstream ss;
    ss << in.rdbuf();
    const Json j = Json::parse(ss.str());
    for (const Json& t : j.at("rows").as_array()) {
        const std::string loss = t.at("loss").as_string();
        for (Row& r : rows)
            if (loss.rfind(r.loss, 0) == 0 && t.at("batch").as_int() == r.batch && t.at("size").as_int() == r.size) {
                r.torch_fwd = t.at("forward_ms_per_image").as_number();
                r.torch_fwdbwd = t.at("forward_backward_ms_per_image").as_number();
            }
    }
}

std::string f2(double v) {
    char b[32];
    std::snprintf(b, sizeof b, v < 0 ? "-" : "%.3f", v);
    return b;
}

}  // namespace

int main(int argc, char** argv) {
    std::string data = "tests/data", json_out = "bench_losses_gpu.json", torch_json;
    bool quick = false;
    int reps = 0;
    cuda::AlgoSearch search = cuda::AlgoSearch::exhaustive;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--data" && i + 1 < argc) data = argv[++i];
        else if (a == "--json" && i + 1 < argc) json_out = argv[++i];
        else if (a == "--torch" && i + 1 < argc) torch_json = argv[++i];
        else if (a == "--reps" && i + 1 < argc) reps = std::atoi(argv[++i]);
        else if (a == "--quick") quick = true;
        else if (a == "--heuristic") search = cuda::AlgoSearch::heuristic;
        else {
            std::fprintf(stderr, "usage: bench_losses_gpu [--data DIR] [--json OUT] [--torch TORCH.json] [--quick] "
                                 "[--reps N] [--heuristic]\n");
            return 2;
        }
    }
    if (!cuda_device_available()) {
        std::puts("SKIPPED: no CUDA device");
        return 77;
    }
    if (reps <= 0) reps = quick ? 5 : 20;
    const Index size = quick ? 64 : 256;
    try {
        cuda::Stream stream;
        Cuda b(stream.get());
        const Vgg16 trunk = Vgg16::hash_rule();
        Lpips<Cuda> lpips(b, trunk, Lpips<>::load_lin(std::string(data) + "/lpips/lpips_vgg_weights.safetensors"), {},
                          search);
        VggPerceptual<Cuda> vgg(b, trunk, {}, search);
        Identity<Cuda> id(b, FaceResNet::load(std::string(data) + "/face_api/face_recognition.safetensors"), {}, search);
        std::vector<Row> rows;
        for (Index n : {Index{1}, Index{8}}) {
            rows.push_back(run(lpips, b, "lpips-vgg", size, n, reps));
            rows.push_back(run(vgg, b, "vgg-perceptual", size, n, reps));
            rows.push_back(run(id, b, "identity", 150, n, reps));
        }
        if (!torch_json.empty()) join_torch(rows, torch_json);
        cudaDeviceProp prop{};
        GANINV_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
        std::printf("\nganinv CUDA losses on %s, float32 (cuDNN %d, FMA math, %s algorithms), target features cached\n",
                    prop.name, cuda::CudnnContext::version(),
                    search == cuda::AlgoSearch::exhaustive ? "cudnnFind" : "heuristic");
        std::printf("| loss | size | batch | fwd ms/img | fwd+bwd ms/img | fwd+bwd img/s | peak MiB | torch fwd | "
                    "torch fwd+bwd | speed-up fwd | speed-up fwd+bwd |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
        Json::Array jrows;
        for (const Row& r : rows) {
            const double su_f = r.torch_fwd > 0 ? r.torch_fwd / r.fwd_ms : -1;
            const double su_fb = r.torch_fwdbwd > 0 ? r.torch_fwdbwd / r.fwdbwd_ms : -1;
            std::printf("| %s | %lldx%lld | %lld | %s | %s | %.1f | %.0f | %s | %s | %s | %s |\n", r.loss.c_str(),
                        static_cast<long long>(r.size), static_cast<long long>(r.size), static_cast<long long>(r.batch),
                        f2(r.fwd_ms).c_str(), f2(r.fwdbwd_ms).c_str(), 1000.0 / r.fwdbwd_ms, r.peak_mib,
                        f2(r.torch_fwd).c_str(), f2(r.torch_fwdbwd).c_str(), su_f > 0 ? (f2(su_f) + "x").c_str() : "-",
                        su_fb > 0 ? (f2(su_fb) + "x").c_str() : "-");
            Json::Object o{{"loss", Json(r.loss)},
                           {"size", Json(static_cast<std::int64_t>(r.size))},
                           {"batch", Json(static_cast<std::int64_t>(r.batch))},
                           {"forward_ms_per_image", Json(r.fwd_ms)},
                           {"forward_backward_ms_per_image", Json(r.fwdbwd_ms)},
                           {"peak_mib", Json(r.peak_mib)}};
            if (r.torch_fwd > 0) {
                o.push_back({"torch_forward_ms_per_image", Json(r.torch_fwd)});
                o.push_back({"torch_forward_backward_ms_per_image", Json(r.torch_fwdbwd)});
            }
            jrows.push_back(Json(std::move(o)));
        }
        char date[32];
        const std::time_t now = std::time(nullptr);
        std::strftime(date, sizeof date, "%Y-%m-%d", std::gmtime(&now));
        const Json doc(Json::Object{{"benchmark", Json("losses_gpu")},
                                    {"date", Json(date)},
                                    {"device", Json(prop.name)},
                                    {"cudnn", Json(cuda::CudnnContext::version())},
                                    {"rows", Json(std::move(jrows))}});
        std::ofstream(json_out) << doc.dump() << "\n";
        std::printf("wrote %s\n", json_out.c_str());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_losses_gpu: %s\n", e.what());
        return 1;
    }
    return 0;
}
