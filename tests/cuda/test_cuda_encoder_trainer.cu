// EncoderTrainerCuda (invert/encoder_trainer_cuda.cuh, issue 16) against EncoderTrainer on the
// CPU, from the same generator weights, encoder weights and seed: single-pass pSp (with real
// images in the batches), iterative ReStyle (2 iterations, from the mean code and from a
// bootstrapping encoder's codes) and e4e (progressive offsets, offset penalty) over 20 steps; checkpoints crossing between the two trainers; the options the GPU
// trainer refuses; and what crosses to the host per step (the pool's traffic counters).
//
// Bounds. Both trainers draw the same batches (encoder_training.hpp), so step 1 sees the same
// weights and data: its losses differ only by the GPU's float sums in another order (generator
// and encoder forward, ~1e-6 relative; test_cuda_encoder.cu). Adam then normalises each
// gradient element by its own running scale, so an element whose gradient is within rounding
// of 0 may step by +lr on one device and -lr on the other: the weights drift apart by a few
// such elements per step, and the losses with them. A small learning rate (1e-4: 20 steps move
// a weight by at most ~2e-3) keeps that drift small against the weights themselves; the
// per-step losses must agree to 5e-3 relative (a wrong gradient or a skipped Adam step is off by
// far more after a few steps), and the 20 steps' updates (final - initial weights) to 10%
// relative L2 — measured against the update, not the weights, so that it still sees a wrong
// gradient when the weights barely move.
#include "cuda_catch.hpp"

#include <ganinv/backend/cpu.hpp>
#include <ganinv/backend/cuda.cuh>
#include <ganinv/cuda/stream.hpp>
#include <ganinv/invert/encoder_trainer.hpp>
#include <ganinv/invert/encoder_trainer_cuda.cuh>
#include <ganinv/models/psp_encoder_cuda.cuh>
#include <ganinv/models/stylegan2.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

using namespace ganinv;

namespace {

constexpr double kLossTolerance = 5e-3;
constexpr double kUpdateTolerance = 0.1;

StyleGAN2Config tiny_generator_config() {
    StyleGAN2Config c;
    c.img_resolution = 32;
    c.img_channels = 3;
    c.channel_base = 1024;
    c.channel_max = 32;
    c.z_dim = c.w_dim = 32;
    c.mapping_layers = 2;
    return c;
}

EncoderConfig tiny_encoder(const StyleGAN2Config& g, int variant) {
    EncoderConfig c = EncoderConfig::for_generator(g.img_resolution, g.img_channels, g.num_ws(), g.w_dim);
    c.stem_channels = 8;
    c.stage_channels = {8, 16, 16};
    c.pyramid_channels = 8;
    c.head_grid = 2;
    c.head_hidden = 32;
    if (variant == 1) {  // ReStyle
        c.iterative = true;
        c.iterations = 2;
    }
    if (variant == 2) {  // e4e
        c.e4e = true;
        c.active_offsets = c.num_ws - 1;
    }
    return c;
}

EncoderTrainerOptions small_lr_options(int variant) {
    EncoderTrainerOptions o;
    o.batch = 2;
    o.seed = 5;
    o.learning_rate = 1e-4;
    if (variant == 0) o.real_ratio = 0.5;  // one generated sample and one real image per batch
    if (variant == 2) o.progressive_every = 5;
    // ReStyle also anneals its rate: the GPU's table is indexed by Adam step (K per training
    // step), the CPU sets the rate per training step; the two must give the same rates.
    if (variant == 1) o.lr_decay_steps = 24;
    return o;
}

/// Real images for the batches: generated pictures of other codes, so that they are in range.
Tensor<float> real_images(StyleGAN2<Cpu>& g, Index n) {
    Tensor<float> z({n, g.z_dim()});
    Rng(77).fill_normal(z.values());
    return g.synthesis(g.mapping(z));
}

/// Both generators (same weights), the host encoder both trainers start from, and a stream.
struct Setup {
    cuda::Stream stream;
    Cuda backend{stream};
    StyleGAN2<Cpu> cpu_g = StyleGAN2<Cpu>::random(tiny_generator_config(), 7);
    StyleGAN2<Cuda> gpu_g = StyleGAN2<Cuda>::random(tiny_generator_config(), 7, backend);
};

/// ||(a1 - a0) - (b1 - b0)|| / ||b1 - b0||: how far the GPU's update is from the CPU's.
double update_error(const Tensor<float>& start, const Tensor<float>& gpu, const Tensor<float>& cpu) {
    double num = 0, den = 0;
    for (Index i = 0; i < start.numel(); ++i) {
        const double dg = static_cast<double>(gpu[i]) - start[i], dc = static_cast<double>(cpu[i]) - start[i];
        num += (dg - dc) * (dg - dc);
        den += dc * dc;
    }
    return std::sqrt(num / std::max(den, 1e-300));
}

bool close(double a, double b, double tol = kLossTolerance) {
    return std::fabs(a - b) <= tol * std::max(std::fabs(b), 1e-12);
}

std::filesystem::path scratch(const std::string& name) {
    const auto dir = std::filesystem::temp_directory_path() / "ganinv_test_cuda_encoder_trainer";
    std::filesystem::create_directories(dir);
    return dir / name;
}

}  // namespace

TEST_CASE("GPU encoder training follows the CPU trainer step for step", "[cuda][encoder][train]") {
    Setup s;
    const Tensor<float> real = real_images(s.cpu_g, 5);
    // ReStyle's encoder bootstrapping (variant 3): both start every batch at this encoder's codes.
    const PspEncoder bootstrap(tiny_encoder(s.cpu_g.config(), 0), 11);
    const PspEncoderCuda gpu_bootstrap(bootstrap, s.backend);
    for (const int variant : {0, 1, 2, 3}) {
        const char* names[] = {"pSp with real images", "ReStyle, 2 iterations", "e4e, progressive",
                               "ReStyle from a bootstrapping encoder"};
        INFO(names[variant]);
        const int network = variant == 3 ? 1 : variant;
        const PspEncoder start(tiny_encoder(s.cpu_g.config(), network), 1);
        PspEncoder cpu_e = start;
        PspEncoderCuda gpu_e(start, s.backend);
        const EncoderTrainerOptions o = small_lr_options(network);
        EncoderTrainer cpu_t(s.cpu_g, cpu_e, o, variant == 0 ? real : Tensor<float>{});
        EncoderTrainerCuda gpu_t(s.gpu_g, gpu_e, o, variant == 0 ? real : Tensor<float>{});
        if (variant == 3) {
            cpu_t.set_bootstrap(bootstrap);
            gpu_t.set_bootstrap(gpu_bootstrap, encoder_fingerprint(bootstrap));
            REQUIRE(gpu_e.config().bootstrap == cpu_e.config().bootstrap);
            REQUIRE_FALSE(gpu_e.config().bootstrap.empty());
        }
        for (int step = 0; step < 20; ++step) {
            const EncoderStepStats c = cpu_t.step(), g = gpu_t.step();
            INFO("step " << step + 1 << ": loss CPU " << c.loss << " GPU " << g.loss << ", code " << c.code_loss << " / "
                         << g.code_loss << ", pixel " << c.pixel_loss << " / " << g.pixel_loss);
            REQUIRE(g.step == c.step);
            REQUIRE(g.generated == c.generated);
            REQUIRE(g.real == c.real);
            REQUIRE(g.active_offsets == c.active_offsets);
            REQUIRE(g.iteration_pixel_loss.size() == c.iteration_pixel_loss.size());
            CHECK(close(g.loss, c.loss));
            CHECK(close(g.code_loss, c.code_loss));
            CHECK(close(g.pixel_loss, c.pixel_loss));
            for (std::size_t i = 0; i < c.iteration_pixel_loss.size(); ++i)
                CHECK(close(g.iteration_pixel_loss[i], c.iteration_pixel_loss[i]));
            if (variant == 2) CHECK(close(g.offset_loss, c.offset_loss, 1e-2));  // offsets' norms start near 0
        }
        const Tensor<float> gpu_w = s.backend.download(gpu_e.params());
        const double update = update_error(start.params(), gpu_w, cpu_e.params());
        const double weights = relative_l2_error(gpu_w.values(), cpu_e.params().values());
        INFO("relative L2 of the updates " << update << ", of the final weights " << weights);
        CHECK(update < kUpdateTolerance);
        CHECK(weights < 1e-3);
        REQUIRE(gpu_t.history().size() == 20);
        CHECK(gpu_t.history()[0].size() == cpu_t.history()[0].size());
        CHECK(gpu_t.adam_steps() == 20 * start.config().iterations);
    }
}

TEST_CASE("a GPU checkpoint resumes on the CPU, and a CPU one on the GPU", "[cuda][encoder][train][checkpoint]") {
    Setup s;
    for (const int variant : {0, 2}) {
        INFO((variant == 0 ? "pSp" : "e4e"));
        const Tensor<float> real = variant == 0 ? real_images(s.cpu_g, 5) : Tensor<float>{};
        const PspEncoder start(tiny_encoder(s.cpu_g.config(), variant), 1);
        const EncoderTrainerOptions o = small_lr_options(variant);
        PspEncoderCuda gpu_e(start, s.backend);
        EncoderTrainerCuda gpu_t(s.gpu_g, gpu_e, o, real);
        for (int i = 0; i < 6; ++i) gpu_t.step();
        const auto from_gpu = scratch("from_gpu.safetensors");
        gpu_t.save_checkpoint(from_gpu);

        // The CPU trainer, from another start, continues the GPU's checkpoint: its next step is the GPU's.
        PspEncoder cpu_e(tiny_encoder(s.cpu_g.config(), variant), 99);
        EncoderTrainerOptions other = o;
        other.seed = 1234;  // the file's options apply
        EncoderTrainer cpu_t(s.cpu_g, cpu_e, other, real);
        cpu_t.resume(from_gpu);
        REQUIRE(cpu_t.steps_done() == 6);
        REQUIRE(cpu_t.options().seed == o.seed);
        REQUIRE(cpu_t.history() == gpu_t.history());
        CHECK(relative_l2_error(cpu_e.params().values(), s.backend.download(gpu_e.params()).values()) == 0.0);
        const EncoderStepStats c = cpu_t.step(), g = gpu_t.step();
        INFO("step 7: CPU " << c.loss << ", GPU " << g.loss);
        CHECK(c.step == 7);
        CHECK(c.active_offsets == g.active_offsets);
        CHECK(close(g.loss, c.loss));
        // One step from the same weights and (float-rounded) moments: the drift of one Adam step.
        CHECK(relative_l2_error(s.backend.download(gpu_e.params()).values(), cpu_e.params().values()) < 1e-3);

        // And back: the CPU's checkpoint continues on the GPU.
        const auto from_cpu = scratch("from_cpu.safetensors");
        cpu_t.save_checkpoint(from_cpu);
        PspEncoderCuda gpu_e2(PspEncoder(tiny_encoder(s.cpu_g.config(), variant), 42), s.backend);
        EncoderTrainerCuda gpu_t2(s.gpu_g, gpu_e2, other, real);
        gpu_t2.resume(from_cpu);
        REQUIRE(gpu_t2.steps_done() == 7);
        REQUIRE(gpu_t2.adam_steps() == 7);
        const EncoderStepStats c8 = cpu_t.step(), g8 = gpu_t2.step();
        INFO("step 8: CPU " << c8.loss << ", GPU " << g8.loss);
        CHECK(close(g8.loss, c8.loss));
        // The GPU's checkpoint is the CPU's format: tensors, metadata and F64 moments.
        const SafetensorsFile f(from_gpu);
        CHECK(f.contains("trainer.adam_m"));
        CHECK(f.contains("trainer.adam_v"));
        CHECK(f.metadata("trainer_adam_t").value_or("") == "6");
        CHECK(f.metadata("trainer_step").value_or("") == "6");
        CHECK(f.metadata("trainer_options").value_or("") == o.to_json().dump());
    }
}

TEST_CASE("the GPU trainer refuses the options it does not have, naming them", "[cuda][encoder][train][errors]") {
    Setup s;
    const PspEncoder start(tiny_encoder(s.cpu_g.config(), 0), 1);
    PspEncoderCuda gpu_e(start, s.backend);
    const auto refused = [&](EncoderTrainerOptions o, const std::string& option) {
        try {
            EncoderTrainerCuda t(s.gpu_g, gpu_e, o);
            FAIL("accepted " << option);
        } catch (const ValueError& e) {
            const std::string what = e.what();
            INFO(what);
            CHECK(what.find(option) != std::string::npos);
            CHECK(what.find("--device cpu") != std::string::npos);
        }
    };
    EncoderTrainerOptions o = small_lr_options(1);
    o.image_loss = "l1";
    refused(o, "--loss");
    o = small_lr_options(1);
    o.latent_adversarial = 0.1;
    refused(o, "--latent-adversarial");
    o = small_lr_options(1);
    o.image_adversarial = 0.1;
    refused(o, "--image-adversarial");

    // A CPU checkpoint trained with a latent adversary is refused by resume() as well.
    PspEncoder cpu_e = start;
    EncoderTrainerOptions adv = small_lr_options(1);
    adv.latent_adversarial = 0.1;
    adv.r1_gamma = 1.0;
    EncoderTrainer cpu_t(s.cpu_g, cpu_e, adv);
    cpu_t.step();
    const auto path = scratch("adversarial.safetensors");
    cpu_t.save_checkpoint(path);
    EncoderTrainerCuda gpu_t(s.gpu_g, gpu_e, small_lr_options(1));
    try {
        gpu_t.resume(path);
        FAIL("resumed a checkpoint with a latent adversary");
    } catch (const ValueError& e) {
        CHECK(std::string(e.what()).find("--latent-adversarial") != std::string::npos);
    }
    CHECK(gpu_t.steps_done() == 0);
}

TEST_CASE("a GPU training step uploads only z and the real images and reads back its loss values",
          "[cuda][encoder][train][traffic]") {
    Setup s;
    const Tensor<float> real = real_images(s.cpu_g, 5);
    for (const int variant : {0, 1}) {
        INFO((variant == 0 ? "pSp with real images" : "ReStyle, no real images"));
        const PspEncoder start(tiny_encoder(s.cpu_g.config(), variant), 1);
        PspEncoderCuda gpu_e(start, s.backend);
        const EncoderTrainerOptions o = small_lr_options(variant);
        EncoderTrainerCuda t(s.gpu_g, gpu_e, o, variant == 0 ? real : Tensor<float>{});
        t.step();  // warm-up: first-use allocations
        const cuda::MemoryPool::Traffic before = s.backend.pool().traffic();
        const int steps = 3;
        for (int i = 0; i < steps; ++i) t.step();
        const cuda::MemoryPool::Traffic after = s.backend.pool().traffic();
        const Index K = start.config().iterations, R = s.cpu_g.resolution(), C = s.cpu_g.img_channels();
        const Index generated = variant == 0 ? 1 : 2, real_n = variant == 0 ? 1 : 0;
        const std::uint64_t per_step_uploads = 1 + (real_n > 0 ? 1 : 0);
        const std::uint64_t per_step_bytes = sizeof(float) * static_cast<std::uint64_t>(generated * s.cpu_g.z_dim() + real_n * C * R * R);
        INFO("uploads " << after.uploads - before.uploads << " (" << after.upload_bytes - before.upload_bytes
                        << " bytes), downloads " << after.downloads - before.downloads << " ("
                        << after.download_bytes - before.download_bytes << " bytes)");
        CHECK(after.uploads - before.uploads == steps * per_step_uploads);
        CHECK(after.upload_bytes - before.upload_bytes == steps * per_step_bytes);
        CHECK(after.downloads - before.downloads == static_cast<std::uint64_t>(steps));
        CHECK(after.download_bytes - before.download_bytes == steps * sizeof(double) * static_cast<std::uint64_t>(2 * K));
    }
}
