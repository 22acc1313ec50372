// EncoderTrainer on the demo generator (models/fmnist32.safetensors, 32x32 grayscale): a tiny
// encoder learns, deterministically, and a checkpoint resumes bit for bit.
#include "test_support.hpp"

#include <ganinv/invert/encoder_trainer.hpp>
#include <ganinv/loss/loss_spec.hpp>

using namespace ganinv;

namespace {

StyleGAN2<Cpu>& demo_generator() {
    static StyleGAN2<Cpu> g = StyleGAN2<Cpu>::load(test::models_dir() / "fmnist32.safetensors");
    return g;
}

EncoderConfig tiny_encoder(const StyleGAN2<Cpu>& g) {
    EncoderConfig c = EncoderConfig::for_generator(g.resolution(), g.img_channels(), g.num_ws(), g.w_dim());
    c.stem_channels = 8;
    c.stage_channels = {8, 16, 16};
    c.pyramid_channels = 8;
    c.head_grid = 2;
    c.head_hidden = 32;
    return c;
}

/// Code and pixel MSE of the encoder on 8 fixed generated samples (never a training batch).
std::pair<double, double> held_out_error(StyleGAN2<Cpu>& g, const PspEncoder& e) {
    Tensor<float> z({8, g.z_dim()});
    Rng(987654321).fill_normal(z.values());
    const Tensor<float> ws = g.mapping(z);
    const Tensor<float> img = g.synthesis(ws);
    const Tensor<float> codes = e.forward(img);
    const Tensor<float> recon = g.synthesis(codes);
    double c = 0, p = 0;
    for (Index i = 0; i < ws.numel(); ++i) c += (codes[i] - ws[i]) * (codes[i] - ws[i]);
    for (Index i = 0; i < img.numel(); ++i) p += (recon[i] - img[i]) * (recon[i] - img[i]);
    return {c / static_cast<double>(ws.numel()), p / static_cast<double>(img.numel())};
}

EncoderTrainerOptions options() {
    EncoderTrainerOptions o;
    o.batch = 2;
    o.seed = 5;
    o.learning_rate = 3e-3;
    return o;
}

}  // namespace

TEST_CASE("encoder training on the demo generator reduces the error deterministically", "[encoder][train]") {
    StyleGAN2<Cpu>& g = demo_generator();
    PspEncoder a(tiny_encoder(g), 1), b(tiny_encoder(g), 1);
    EncoderTrainer ta(g, a, options()), tb(g, b, options());
    const auto [code0, pixel0] = held_out_error(g, a);
    std::vector<double> losses;
    for (int s = 0; s < 24; ++s) {
        const EncoderStepStats st = ta.step();
        REQUIRE(std::isfinite(st.loss));
        REQUIRE(st.generated == 2);
        losses.push_back(st.loss);
        if (s < 4) REQUIRE(tb.step().loss == st.loss);  // same seed: the same run, bit for bit
        if (s == 3) REQUIRE(std::equal(a.params().values().begin(), a.params().values().end(), b.params().values().begin()));
    }
    const auto [code1, pixel1] = held_out_error(g, a);
    INFO("held-out code MSE " << code0 << " -> " << code1 << ", pixel MSE " << pixel0 << " -> " << pixel1);
    CHECK(code1 < 0.7 * code0);
    CHECK(pixel1 < pixel0);
    const double first = (losses[0] + losses[1] + losses[2]) / 3, last = (losses[21] + losses[22] + losses[23]) / 3;
    CHECK(last < 0.7 * first);
    // Another seed draws other batches.
    PspEncoder c(tiny_encoder(g), 1);
    EncoderTrainerOptions o = options();
    o.seed = 6;
    EncoderTrainer tc(g, c, o);
    CHECK(tc.step().loss != losses[0]);
}

TEST_CASE("an encoder checkpoint resumes to the same next steps", "[encoder][train]") {
    StyleGAN2<Cpu>& g = demo_generator();
    const auto dir = test::temp_dir("encoder_resume");
    PspEncoder straight(tiny_encoder(g), 2);
    EncoderTrainer ts(g, straight, options());
    PspEncoder first(tiny_encoder(g), 2);
    EncoderTrainer tf(g, first, options());
    for (int s = 0; s < 3; ++s) {
        ts.step();
        tf.step();
    }
    tf.save_checkpoint(dir / "ckpt.safetensors");
    PspEncoder resumed(tiny_encoder(g), 99);  // other initial weights: the checkpoint must replace them
    EncoderTrainerOptions other = options();
    other.seed = 1234;  // and the checkpoint's options replace these
    EncoderTrainer tr(g, resumed, other);
    tr.resume(dir / "ckpt.safetensors");
    REQUIRE(tr.steps_done() == 3);
    REQUIRE(tr.options().seed == 5);
    for (int s = 0; s < 2; ++s) REQUIRE(tr.step().loss == ts.step().loss);
    REQUIRE(std::equal(resumed.params().values().begin(), resumed.params().values().end(), straight.params().values().begin()));

    // The checkpoint is also an encoder file: load_encoder reads the weights it held at step 3.
    const PspEncoder loaded = load_encoder(dir / "ckpt.safetensors");
    CHECK(std::equal(loaded.params().values().begin(), loaded.params().values().end(), first.params().values().begin()));
    CHECK(loaded.w_avg()[0] == g.param("mapping.w_avg")[0]);
}

TEST_CASE("the learning-rate decay: a cosine to zero, each step at its rate, resumed on the same curve",
          "[encoder][train][lr_decay]") {
    EncoderTrainerOptions o = options();
    CHECK(o.learning_rate_at(0) == o.learning_rate);  // no decay: the constant rate
    CHECK(o.learning_rate_at(1000000) == o.learning_rate);
    o.lr_decay_steps = 8;
    CHECK(o.learning_rate_at(0) == o.learning_rate);
    CHECK(o.learning_rate_at(4) == Approx(0.5 * o.learning_rate).epsilon(1e-12));
    CHECK(o.learning_rate_at(2) == Approx(o.learning_rate * (0.5 + 0.5 * std::sqrt(0.5))).epsilon(1e-12));
    CHECK(o.learning_rate_at(8) == 0.0);
    CHECK(o.learning_rate_at(9) == 0.0);
    for (Index t = 1; t < 8; ++t) CHECK(o.learning_rate_at(t) < o.learning_rate_at(t - 1));
    // Recorded with the options (a checkpoint resumes on the curve); absent means constant.
    CHECK(EncoderTrainerOptions::from_json(o.to_json()).lr_decay_steps == 8);
    CHECK(options().to_json().find("lr_decay_steps") == nullptr);
    CHECK(EncoderTrainerOptions::from_json(options().to_json()).lr_decay_steps == 0);
    EncoderTrainerOptions late = o;  // constant until step 4, then the cosine to zero at 8
    late.lr_decay_start = 4;
    for (Index t = 0; t <= 4; ++t) CHECK(late.learning_rate_at(t) == late.learning_rate);
    CHECK(late.learning_rate_at(6) == Approx(0.5 * late.learning_rate).epsilon(1e-12));
    CHECK(late.learning_rate_at(8) == 0.0);
    CHECK(EncoderTrainerOptions::from_json(late.to_json()).lr_decay_start == 4);
    EncoderTrainerOptions bad = options();
    bad.lr_decay_steps = -1;
    CHECK_THROWS_WITH(bad.validate(), Catch::Contains("decay") && Catch::Contains("-1"));
    bad = late;
    bad.lr_decay_start = 8;  // must begin before it ends
    CHECK_THROWS_WITH(bad.validate(), Catch::Contains("start 8") && Catch::Contains("end 8"));

    // Each step moves the weights at its rate: from equal weights and Adam moments, the decayed
    // run's step-2 update is the constant run's times the rate ratio (the same batch, the same
    // gradient, Adam's direction does not depend on the rate).
    StyleGAN2<Cpu>& g = demo_generator();
    PspEncoder constant_e(tiny_encoder(g), 3), decayed_e(tiny_encoder(g), 3);
    EncoderTrainer constant_t(g, constant_e, options()), decayed_t(g, decayed_e, o);
    constant_t.step();
    decayed_t.step();  // step 1 at the full rate in both
    REQUIRE(std::equal(constant_e.params().values().begin(), constant_e.params().values().end(),
                       decayed_e.params().values().begin()));
    const Tensor<float> before = decayed_e.params();
    constant_t.step();
    decayed_t.step();
    const double ratio = o.learning_rate_at(1) / o.learning_rate;
    double num = 0, den = 0;
    for (Index i = 0; i < before.numel(); ++i) {
        const double dc = static_cast<double>(constant_e.params()[i]) - before[i];
        const double dd = static_cast<double>(decayed_e.params()[i]) - before[i];
        num += (dd - ratio * dc) * (dd - ratio * dc);
        den += ratio * dc * ratio * dc;
    }
    INFO("rate ratio " << ratio << ", relative L2 of decayed update - ratio x constant update " << std::sqrt(num / den));
    CHECK(std::sqrt(num / den) < 1e-4);

    // A checkpoint mid-curve resumes on it: the same next steps as a straight run.
    const auto dir = test::temp_dir("encoder_lr_decay");
    decayed_t.save_checkpoint(dir / "ckpt.safetensors");
    PspEncoder resumed_e(tiny_encoder(g), 99);
    EncoderTrainer resumed_t(g, resumed_e, options());  // constant options: the checkpoint's replace them
    resumed_t.resume(dir / "ckpt.safetensors");
    REQUIRE(resumed_t.options().lr_decay_steps == 8);
    for (int s = 0; s < 3; ++s) REQUIRE(resumed_t.step().loss == decayed_t.step().loss);
    REQUIRE(std::equal(resumed_e.params().values().begin(), resumed_e.params().values().end(),
                       decayed_e.params().values().begin()));
    // Past the curve's end the rate is zero: steps 6-8 of 8 move little, a 9th nothing.
    decayed_t.step();
    decayed_t.step();
    decayed_t.step();
    REQUIRE(decayed_t.steps_done() == 8);
    const Tensor<float> at_end = decayed_e.params();
    decayed_t.step();
    CHECK(std::equal(at_end.values().begin(), at_end.values().end(), decayed_e.params().values().begin()));
}

TEST_CASE("an encoder for another generator is refused with the mismatch named", "[encoder][errors]") {
    StyleGAN2<Cpu>& g = demo_generator();
    EncoderConfig c = tiny_encoder(g);
    c.num_ws = 10;
    c.in_channels = 3;
    PspEncoder e(c);
    REQUIRE_THROWS_WITH(EncoderTrainer(g, e, options()),
                        Catch::Matchers::Contains("num_ws 10 (the generator has 8), channels 3 (the generator has 1)"));
    const auto dir = test::temp_dir("encoder_files");
    save_encoder(dir / "e.safetensors", PspEncoder(tiny_encoder(g)));
    SafetensorsWriter w;
    w.add("x", {1}, std::vector<float>{1.0f});
    w.write(dir / "not_encoder.safetensors");
    REQUIRE_THROWS_WITH(load_encoder(dir / "not_encoder.safetensors"),
                        Catch::Matchers::Contains("is not a ganinv encoder file"));
    PspEncoder plain(tiny_encoder(g));
    EncoderTrainer t(g, plain, options());
    REQUIRE_THROWS_WITH(t.resume(dir / "e.safetensors"), Catch::Matchers::Contains("not a training checkpoint"));
}

namespace {

EncoderConfig tiny_iterative(const StyleGAN2<Cpu>& g, Index iterations) {
    EncoderConfig c = tiny_encoder(g);
    c.iterative = true;
    c.iterations = iterations;
    return c;
}

/// Held-out pixel MSE after each refinement iteration (8 fixed generated samples).
std::vector<double> held_out_iterates(StyleGAN2<Cpu>& g, const PspEncoder& e, Index iterations) {
    Tensor<float> z({8, g.z_dim()});
    Rng(987654321).fill_normal(z.values());
    const Tensor<float> img = g.synthesis(g.mapping(z));
    std::vector<double> mse;
    encode_images(g, e, img, iterations, [&](Index, const RefineState& s) {
        double p = 0;
        for (Index i = 0; i < img.numel(); ++i) p += (s.reconstruction[i] - img[i]) * (s.reconstruction[i] - img[i]);
        mse.push_back(p / static_cast<double>(img.numel()));
    });
    return mse;
}

}  // namespace

TEST_CASE("an iterative (ReStyle) encoder learns to refine its codes, deterministically", "[encoder][train][restyle]") {
    StyleGAN2<Cpu>& g = demo_generator();
    PspEncoder a(tiny_iterative(g, 2), 1), b(tiny_iterative(g, 2), 1);
    REQUIRE(a.in_channels() == 2);  // the grayscale image and its current reconstruction
    EncoderTrainer ta(g, a, options()), tb(g, b, options());
    const std::vector<double> before = held_out_iterates(g, a, 2);
    for (int s = 0; s < 24; ++s) {
        const EncoderStepStats st = ta.step();
        REQUIRE(std::isfinite(st.loss));
        REQUIRE(st.iteration_pixel_loss.size() == 2);  // a loss (and an Adam step) per iteration
        if (s < 2) REQUIRE(tb.step().loss == st.loss);
        if (s == 1) REQUIRE(std::equal(a.params().values().begin(), a.params().values().end(), b.params().values().begin()));
    }
    const std::vector<double> after = held_out_iterates(g, a, 3);
    INFO("held-out pixel MSE per iteration before " << before[0] << ", " << before[1] << "; after " << after[0] << ", "
                                                    << after[1] << ", " << after[2]);
    CHECK(after[0] < before[0]);
    CHECK(after[1] < after[0]);  // the second pass improves on the first
}

TEST_CASE("an iterative encoder's checkpoint resumes to the same next steps", "[encoder][train][restyle]") {
    StyleGAN2<Cpu>& g = demo_generator();
    const auto dir = test::temp_dir("encoder_resume_iterative");
    PspEncoder straight(tiny_iterative(g, 2), 2), first(tiny_iterative(g, 2), 2);
    EncoderTrainer ts(g, straight, options()), tf(g, first, options());
    for (int s = 0; s < 2; ++s) {
        ts.step();
        tf.step();
    }
    tf.save_checkpoint(dir / "ckpt.safetensors");
    const PspEncoder loaded = load_encoder(dir / "ckpt.safetensors");  // the file keeps the refinement setting
    CHECK(loaded.iterative());
    CHECK(loaded.config().iterations == 2);
    PspEncoder resumed(tiny_iterative(g, 2), 99);
    EncoderTrainer tr(g, resumed, options());
    tr.resume(dir / "ckpt.safetensors");
    const EncoderStepStats a = tr.step(), b = ts.step();
    REQUIRE(a.iteration_pixel_loss == b.iteration_pixel_loss);
    REQUIRE(tr.history() == ts.history());  // the loss curve continues across the checkpoint
    REQUIRE(tr.history().size() == 3);
    REQUIRE(tr.history()[2] == std::vector<double>{b.loss, b.iteration_pixel_loss[0], b.iteration_pixel_loss[1]});
    REQUIRE(std::equal(resumed.params().values().begin(), resumed.params().values().end(), straight.params().values().begin()));
    // A checkpoint of another refinement setting is not this run's.
    PspEncoder three(tiny_iterative(g, 3), 2);
    EncoderTrainer t3(g, three, options());
    REQUIRE_THROWS_WITH(t3.resume(dir / "ckpt.safetensors"), Catch::Matchers::Contains("encoder config differs"));
}

TEST_CASE("a single-pass encoder refuses refinement iterations", "[encoder][errors][restyle]") {
    StyleGAN2<Cpu>& g = demo_generator();
    const PspEncoder e(tiny_encoder(g), 1);
    Tensor<float> img({1, 1, 32, 32}, 0.0f);
    REQUIRE_THROWS_WITH(encode_images(g, e, img, 2), Catch::Matchers::Contains("the encoder is not iterative"));
    REQUIRE_THROWS_WITH(encode_images(g, PspEncoder(tiny_iterative(g, 2)), img, 0),
                        Catch::Matchers::Contains("iterations must be >= 1, got 0"));
    // One pass of a single-pass encoder is its forward: what encode wrote before refinement existed.
    const RefineState s = encode_images(g, e, img, 1);
    const Tensor<float> codes = e.forward(img);
    CHECK(std::equal(codes.values().begin(), codes.values().end(), s.codes.values().begin()));
}

TEST_CASE("ReStyle encoder bootstrapping: the refinement starts from a single-pass encoder's codes",
          "[encoder][restyle][bootstrap]") {
    StyleGAN2<Cpu>& g = demo_generator();
    const PspEncoder refiner(tiny_iterative(g, 2), 3), first(tiny_encoder(g), 4);
    Tensor<float> z({2, g.z_dim()});
    Rng(31).fill_normal(z.values());
    const Tensor<float> img = g.synthesis(g.mapping(z));
    std::vector<Tensor<float>> iterates;
    const RefineState s = encode_images(g, refiner, img, 2, [&](Index, const RefineState& it) { iterates.push_back(it.codes); },
                                        &first);
    REQUIRE(iterates.size() == 2);
    // By hand: w_0 = first(x), y_0 = G(w_0), w_1 = w_0 + refiner([x, y_0]), w_2 = w_1 + refiner([x, G(w_1)]).
    const Tensor<float> w0 = first.forward(img);
    const Tensor<float> w1 = refiner.forward(refinement_input(img, g.synthesis(w0, NoiseInput<Cpu>{})), nullptr, &w0);
    const Tensor<float> w2 = refiner.forward(refinement_input(img, g.synthesis(w1, NoiseInput<Cpu>{})), nullptr, &w1);
    CHECK(std::equal(w1.values().begin(), w1.values().end(), iterates[0].values().begin()));
    CHECK(std::equal(w2.values().begin(), w2.values().end(), s.codes.values().begin()));
    // Not the w_avg start.
    const RefineState plain = encode_images(g, refiner, img, 2);
    CHECK_FALSE(std::equal(plain.codes.values().begin(), plain.codes.values().end(), s.codes.values().begin()));
    // Refused: a single-pass refiner, an iterative bootstrap, another generator's encoder.
    REQUIRE_THROWS_WITH(encode_images(g, first, img, 1, {}, &first), Catch::Matchers::Contains("this encoder is single-pass"));
    REQUIRE_THROWS_WITH(encode_images(g, refiner, img, 2, {}, &refiner),
                        Catch::Matchers::Contains("the bootstrapping encoder must be single-pass"));
    EncoderConfig other = tiny_encoder(g);
    other.num_ws = g.num_ws() - 1;
    const PspEncoder wrong(other, 1);
    REQUIRE_THROWS_WITH(encode_images(g, refiner, img, 2, {}, &wrong), Catch::Matchers::Contains("for different generators"));
}

TEST_CASE("ReStyle training with a bootstrapping encoder: each batch starts at E_0's codes, E_0 recorded and required",
          "[encoder][train][restyle][bootstrap]") {
    StyleGAN2<Cpu>& g = demo_generator();
    const auto dir = test::temp_dir("encoder_bootstrap_training");
    const PspEncoder first(tiny_encoder(g), 4), other_first(tiny_encoder(g), 5);
    // The real set is one image twice, so every batch is known: [x, x].
    Tensor<float> z({1, g.z_dim()});
    Rng(17).fill_normal(z.values());
    const Tensor<float> one = g.synthesis(g.mapping(z));
    Tensor<float> real({2, 1, 32, 32});
    std::copy(one.data(), one.data() + one.numel(), real.data());
    std::copy(one.data(), one.data() + one.numel(), real.data() + one.numel());
    EncoderTrainerOptions o = options();
    o.real_ratio = 1.0;
    PspEncoder straight(tiny_iterative(g, 2), 3), a(tiny_iterative(g, 2), 3);
    EncoderTrainer ts(g, straight, o, real), ta(g, a, o, real);
    ts.set_bootstrap(first);
    ta.set_bootstrap(first);
    REQUIRE(a.config().bootstrap == encoder_fingerprint(first));
    REQUIRE(encoder_fingerprint(first) != encoder_fingerprint(other_first));
    // The first pass's loss is that of w_1 = E_0(x) + E([x, G(E_0(x))]) with the weights before the step.
    const PspEncoder before = a;
    const Tensor<float> w0 = first.forward(real);
    const Tensor<float> w1 = before.forward(refinement_input(real, g.synthesis(w0, NoiseInput<Cpu>{})), nullptr, &w0);
    const Tensor<float> y1 = g.synthesis(w1, NoiseInput<Cpu>{});
    double mse = 0;
    for (Index i = 0; i < real.numel(); ++i) mse += (static_cast<double>(y1[i]) - real[i]) * (static_cast<double>(y1[i]) - real[i]);
    mse /= static_cast<double>(real.numel());
    const EncoderStepStats st = ta.step();
    REQUIRE(st.real == 2);
    CHECK(st.iteration_pixel_loss[0] == Approx(mse).epsilon(1e-9));
    ts.step();
    // The mean-code start gives another first pass.
    PspEncoder plain(tiny_iterative(g, 2), 3);
    EncoderTrainer tp(g, plain, o, real);
    CHECK(tp.step().iteration_pixel_loss[0] != Approx(st.iteration_pixel_loss[0]).epsilon(1e-6));
    // The checkpoint records E_0: resumed only with the same one, to the same next step.
    ta.save_checkpoint(dir / "ckpt.safetensors");
    CHECK(load_encoder(dir / "ckpt.safetensors").config().bootstrap == encoder_fingerprint(first));
    PspEncoder resumed(load_encoder(dir / "ckpt.safetensors").config(), 99);
    {
        PspEncoder lost(resumed.config(), 99);
        EncoderTrainer t(g, lost, o, real);
        t.resume(dir / "ckpt.safetensors");
        REQUIRE_THROWS_WITH(t.step(), Catch::Matchers::Contains("trained to refine the codes of a single-pass encoder"));
        PspEncoder wrong(resumed.config(), 99);
        EncoderTrainer tw(g, wrong, o, real);
        REQUIRE_THROWS_WITH(tw.set_bootstrap(other_first), Catch::Matchers::Contains("another bootstrapping encoder"));
    }
    EncoderTrainer tr(g, resumed, o, real);
    tr.set_bootstrap(first);
    tr.resume(dir / "ckpt.safetensors");
    REQUIRE(tr.step().iteration_pixel_loss == ts.step().iteration_pixel_loss);
    REQUIRE(std::equal(resumed.params().values().begin(), resumed.params().values().end(), straight.params().values().begin()));
    // Encoding with it needs E_0 as well.
    REQUIRE_THROWS_WITH(encode_images(g, straight, one, 2), Catch::Matchers::Contains("give that encoder as the bootstrap"));
    CHECK(encode_images(g, straight, one, 2, {}, &first).codes.numel() == g.num_ws() * g.w_dim());
    // A single-pass encoder cannot be trained bootstrapped.
    PspEncoder single(tiny_encoder(g), 1);
    EncoderTrainer t1(g, single, o, real);
    REQUIRE_THROWS_WITH(t1.set_bootstrap(first), Catch::Matchers::Contains("this encoder is single-pass"));
}

namespace {

EncoderConfig tiny_e4e(const StyleGAN2<Cpu>& g) {
    EncoderConfig c = tiny_encoder(g);
    c.e4e = true;
    c.active_offsets = c.num_ws - 1;
    return c;
}

/// Batch mean of the e4e offsets' summed norms on 8 fixed generated samples.
double held_out_offsets(StyleGAN2<Cpu>& g, const PspEncoder& e) {
    Tensor<float> z({8, g.z_dim()});
    Rng(24680).fill_normal(z.values());
    PspEncoder::Cache k;
    e.forward(g.synthesis(g.mapping(z)), &k);
    return e.offset_penalty(k);
}

}  // namespace

TEST_CASE("an e4e encoder trains progressively: one offset more every N steps", "[encoder][train][e4e]") {
    StyleGAN2<Cpu>& g = demo_generator();
    PspEncoder e(tiny_e4e(g), 1);
    EncoderTrainerOptions o = options();
    o.progressive_every = 2;
    EncoderTrainer t(g, e, o);
    for (Index s = 0; s < 10; ++s) {
        const EncoderStepStats st = t.step();
        REQUIRE(std::isfinite(st.loss));
        CHECK(st.active_offsets == std::min<Index>(7, s / 2));  // offsets 1, 2, ... join at steps 2, 4, ...
        if (s < 2) CHECK(st.offset_loss == 0.0);                // W only: nothing to penalise
        else CHECK(st.offset_loss > 0.0);
        CHECK(st.loss == Approx(st.code_loss + st.pixel_loss + o.offset_weight * st.offset_loss).epsilon(1e-12));
    }
    CHECK(e.config().active_offsets == 4);  // the encoder carries its progress (and its file will)
    // Without a schedule every offset is in use from the first step.
    PspEncoder all(tiny_e4e(g), 1);
    EncoderTrainer ta(g, all, options());
    CHECK(ta.step().active_offsets == 7);
}

TEST_CASE("the e4e offset penalty keeps the codes closer to one w", "[encoder][train][e4e]") {
    StyleGAN2<Cpu>& g = demo_generator();
    PspEncoder loose(tiny_e4e(g), 1), held(tiny_e4e(g), 1);
    EncoderTrainerOptions o = options();
    o.offset_weight = 0;
    EncoderTrainer tf(g, loose, o);
    o.offset_weight = 0.05;  // strong, so that 16 steps show it
    EncoderTrainer th(g, held, o);
    for (int s = 0; s < 16; ++s) {
        tf.step();
        th.step();
    }
    const double nf = held_out_offsets(g, loose), nh = held_out_offsets(g, held);
    INFO("held-out offset norms: weight 0 " << nf << ", weight 0.05 " << nh);
    CHECK(nh < 0.8 * nf);
}

TEST_CASE("an e4e checkpoint resumes mid-schedule to the same next steps", "[encoder][train][e4e]") {
    StyleGAN2<Cpu>& g = demo_generator();
    const auto dir = test::temp_dir("encoder_resume_e4e");
    EncoderTrainerOptions o = options();
    o.progressive_every = 2;
    o.offset_weight = 0.01;
    PspEncoder straight(tiny_e4e(g), 2), first(tiny_e4e(g), 2);
    EncoderTrainer ts(g, straight, o), tf(g, first, o);
    for (int s = 0; s < 3; ++s) {
        ts.step();
        tf.step();
    }
    tf.save_checkpoint(dir / "ckpt.safetensors");
    const PspEncoder loaded = load_encoder(dir / "ckpt.safetensors");
    CHECK(loaded.config().e4e);
    CHECK(loaded.config().active_offsets == 1);  // step 3 used offsets 1..1
    PspEncoder resumed(tiny_e4e(g), 99);         // all offsets: the checkpoint's progress replaces it
    EncoderTrainer tr(g, resumed, options());
    tr.resume(dir / "ckpt.safetensors");
    CHECK(tr.options().progressive_every == 2);
    CHECK(tr.options().offset_weight == 0.01);
    for (int s = 0; s < 2; ++s) {
        const EncoderStepStats a = tr.step(), b = ts.step();
        REQUIRE(a.loss == b.loss);
        REQUIRE(a.active_offsets == b.active_offsets);
    }
    REQUIRE(std::equal(resumed.params().values().begin(), resumed.params().values().end(), straight.params().values().begin()));
    // A pSp run cannot continue an e4e checkpoint.
    PspEncoder psp(tiny_encoder(g), 2);
    EncoderTrainer tp(g, psp, options());
    REQUIRE_THROWS_WITH(tp.resume(dir / "ckpt.safetensors"), Catch::Matchers::Contains("encoder config differs"));
}

TEST_CASE("encoder training with a library loss as the reconstruction term", "[encoder][train][loss]") {
    StyleGAN2<Cpu>& g = demo_generator();
    const auto dir = test::temp_dir("encoder_image_loss");
    // "mse" through the loss library is the built-in pixel MSE (up to float rounding).
    PspEncoder builtin(tiny_encoder(g), 3), library(tiny_encoder(g), 3);
    EncoderTrainer tb(g, builtin, options()), tl(g, library, options());
    tl.set_image_loss("mse-through-the-library", build_loss<Cpu>("mse", {}));
    for (int s = 0; s < 3; ++s) {
        const EncoderStepStats a = tb.step(), b = tl.step();
        REQUIRE(b.pixel_loss == Approx(a.pixel_loss).epsilon(1e-6));
        REQUIRE(b.loss == Approx(a.loss).epsilon(1e-6));
    }
    for (Index i = 0; i < builtin.num_params(); ++i) REQUIRE(library.params()[i] == Approx(builtin.params()[i]).margin(1e-5));

    // L1 alone (no code regression) trains the encoder: held-out reconstructions improve.
    EncoderTrainerOptions o = options();
    o.code_weight = 0;
    PspEncoder l1a(tiny_encoder(g), 4), l1b(tiny_encoder(g), 4), straight(tiny_encoder(g), 4);
    EncoderTrainer ta(g, l1a, o), ts(g, straight, o);
    ta.set_image_loss("l1", build_loss<Cpu>("l1", {}));
    ts.set_image_loss("l1", build_loss<Cpu>("l1", {}));
    const double pixel0 = held_out_error(g, l1a).second;
    for (int s = 0; s < 24; ++s) REQUIRE(ta.step().loss == ts.step().loss);  // deterministic
    const double pixel1 = held_out_error(g, l1a).second;
    INFO("held-out pixel MSE " << pixel0 << " -> " << pixel1 << " after 24 L1 steps");
    CHECK(pixel1 < 0.9 * pixel0);
    REQUIRE_THROWS_WITH(ta.set_image_loss("mse", build_loss<Cpu>("mse", {})), Catch::Matchers::Contains("before the first step"));
    ta.save_checkpoint(dir / "l1.safetensors");
    EncoderTrainer plain(g, l1b, o);
    REQUIRE_THROWS_WITH(plain.resume(dir / "l1.safetensors"),
                        Catch::Matchers::Contains("was trained with the image loss 'l1' but this run has the pixel MSE"));
    PspEncoder l1c(tiny_encoder(g), 4);
    EncoderTrainer tr(g, l1c, o);
    tr.set_image_loss("l1", build_loss<Cpu>("l1", {}));
    tr.resume(dir / "l1.safetensors");
    CHECK(tr.options().image_loss == "l1");
    REQUIRE(tr.step().loss == ts.step().loss);
}

namespace {

/// Mean logit of the trainer's latent discriminator on fresh W samples and on the encoder's codes
/// of fresh generated images.
std::pair<double, double> discriminator_logits(StyleGAN2<Cpu>& g, const PspEncoder& e, const LatentDiscriminator& d) {
    Tensor<float> z({8, g.z_dim()});
    Rng(13579).fill_normal(z.values());
    const Tensor<float> ws = g.mapping(z);
    Tensor<float> real({8, g.w_dim()});
    for (Index b = 0; b < 8; ++b)
        std::copy(ws.data() + b * g.num_ws() * g.w_dim(), ws.data() + b * g.num_ws() * g.w_dim() + g.w_dim(), real.data() + b * g.w_dim());
    Rng(97531).fill_normal(z.values());
    const Tensor<float> codes = e.forward(g.synthesis(g.mapping(z)));
    const Tensor<float> fake({8 * g.num_ws(), g.w_dim()}, std::vector<float>(codes.values().begin(), codes.values().end()));
    const Tensor<float> lr = d.forward(real), lf = d.forward(fake);  // kept: values() is a view
    double r = 0, f = 0;
    for (float v : lr.values()) r += v / 8.0;
    for (float v : lf.values()) f += v / static_cast<double>(fake.dim(0));
    return {r, f};
}

}  // namespace

TEST_CASE("R1 on the discriminators: reported, deterministic, recorded in the checkpoint", "[encoder][train][adversarial][r1]") {
    StyleGAN2<Cpu>& g = demo_generator();
    const auto dir = test::temp_dir("encoder_r1");
    for (const bool image : {false, true}) {
        INFO((image ? "image discriminator" : "latent discriminator"));
        EncoderTrainerOptions o = options();
        (image ? o.image_adversarial : o.latent_adversarial) = 0.1;
        o.r1_gamma = 10.0;
        PspEncoder a(tiny_encoder(g), 6), b(tiny_encoder(g), 6);
        EncoderTrainer ta(g, a, o), tb(g, b, o);
        for (int s = 0; s < 2; ++s) {
            const EncoderStepStats st = ta.step();
            CHECK(st.r1 > 0);
            CHECK(std::isfinite(st.r1));
            CHECK(tb.step().r1 == st.r1);  // deterministic
        }
        ta.save_checkpoint(dir / "ckpt.safetensors");
        PspEncoder c(tiny_encoder(g), 6);
        EncoderTrainer tc(g, c, options());
        tc.resume(dir / "ckpt.safetensors");
        CHECK(tc.options().r1_gamma == 10.0);  // the checkpoint's options apply
        CHECK(tc.step().r1 == ta.step().r1);
        // Without R1 the same run reports none, and the discriminator's step differs.
        EncoderTrainerOptions off = o;
        off.r1_gamma = 0;
        PspEncoder p0(tiny_encoder(g), 6);
        EncoderTrainer t0(g, p0, off);
        CHECK(t0.step().r1 == 0);
    }
    EncoderTrainerOptions bad = options();
    bad.r1_gamma = 1.0;  // no discriminator to regularise
    REQUIRE_THROWS_WITH(bad.validate(), Catch::Matchers::Contains("needs a discriminator"));
    bad.latent_adversarial = 0.1;
    bad.r1_gamma = -1.0;
    REQUIRE_THROWS_WITH(bad.validate(), Catch::Matchers::Contains("R1 weight must be >= 0"));
}

TEST_CASE("a latent discriminator trains alongside the encoder and resumes with it", "[encoder][train][adversarial]") {
    StyleGAN2<Cpu>& g = demo_generator();
    const auto dir = test::temp_dir("encoder_latent_d");
    EncoderTrainerOptions o = options();
    o.latent_adversarial = 0.1;
    o.discriminator_lr = 1e-2;  // fast, so that a few steps show it learning
    PspEncoder a(tiny_encoder(g), 6), b(tiny_encoder(g), 6), c(tiny_encoder(g), 6);
    EncoderTrainer ta(g, a, o), tb(g, b, o);
    REQUIRE(ta.latent_discriminator() != nullptr);
    for (int s = 0; s < 16; ++s) {
        const EncoderStepStats st = ta.step();
        REQUIRE(st.discriminator_loss > 0);
        REQUIRE(st.adversarial_loss > 0);
        REQUIRE(st.loss == Approx(st.code_loss + st.pixel_loss + 0.1 * st.adversarial_loss).epsilon(1e-12));
        if (s < 3) REQUIRE(tb.step().loss == st.loss);  // deterministic, discriminator included
        if (s == 2) tb.save_checkpoint(dir / "ckpt.safetensors");
    }
    // With the encoder held still (a vanishing learning rate), the discriminator learns to tell
    // the mapping network's w from the encoder's codes. (While both learn, the encoder moves its
    // codes, and 16 steps show no clear trend.)
    EncoderTrainerOptions still = o;
    still.learning_rate = 1e-12;
    PspEncoder frozen(tiny_encoder(g), 6);
    EncoderTrainer tfz(g, frozen, still);
    const auto [real0, fake0] = discriminator_logits(g, frozen, *tfz.latent_discriminator());
    for (int s = 0; s < 16; ++s) tfz.step();
    const auto [real1, fake1] = discriminator_logits(g, frozen, *tfz.latent_discriminator());
    INFO("mean logit real - fake: " << real0 - fake0 << " -> " << real1 - fake1);
    CHECK(real1 - fake1 > real0 - fake0 + 0.5);

    // A resumed run continues the discriminator and its optimizer: the same next steps.
    EncoderTrainer tr(g, c, options());  // no adversarial term asked: the checkpoint's options apply
    tr.resume(dir / "ckpt.safetensors");
    REQUIRE(tr.latent_discriminator() != nullptr);
    for (int s = 0; s < 2; ++s) REQUIRE(tr.step().loss == tb.step().loss);
    REQUIRE(std::equal(tr.latent_discriminator()->params().values().begin(), tr.latent_discriminator()->params().values().end(),
                       tb.latent_discriminator()->params().values().begin()));
    // Weight 0 has no discriminator: plain training.
    PspEncoder p0(tiny_encoder(g), 6);
    EncoderTrainer t0(g, p0, options());
    CHECK(t0.latent_discriminator() == nullptr);
    EncoderTrainerOptions bad = options();
    bad.discriminator_lr = 0;
    bad.latent_adversarial = 0.1;
    PspEncoder p1(tiny_encoder(g), 6);
    REQUIRE_THROWS_WITH(EncoderTrainer(g, p1, bad), Catch::Matchers::Contains("the discriminator's learning rate positive"));
}

TEST_CASE("an image discriminator trains alongside the encoder (domain-guided encoder) and resumes with it",
          "[encoder][train][adversarial]") {
    StyleGAN2<Cpu>& g = demo_generator();
    const auto dir = test::temp_dir("encoder_image_d");
    EncoderTrainerOptions o = options();
    o.image_adversarial = 0.05;
    o.discriminator_lr = 1e-2;
    // Held still, the encoder's reconstructions stay blurry averages: the discriminator learns
    // to tell them from the images they reconstruct.
    EncoderTrainerOptions still = o;
    still.learning_rate = 1e-12;
    PspEncoder frozen(tiny_encoder(g), 8);
    EncoderTrainer tf(g, frozen, still);
    REQUIRE(tf.image_discriminator() != nullptr);
    REQUIRE(tf.image_discriminator()->num_ws() == 1);
    Tensor<float> z({8, g.z_dim()});
    Rng(4242).fill_normal(z.values());
    const Tensor<float> images = g.synthesis(g.mapping(z));
    const Tensor<float> recon = g.synthesis(frozen.forward(images));
    const auto gap = [&] {
        const Tensor<float> lr = tf.image_discriminator()->forward(images), lf = tf.image_discriminator()->forward(recon);
        double d = 0;
        for (Index i = 0; i < 8; ++i) d += (lr[i] - lf[i]) / 8.0;
        return d;
    };
    const double gap0 = gap();
    for (int s = 0; s < 12; ++s) {
        const EncoderStepStats st = tf.step();
        REQUIRE(st.image_discriminator_loss > 0);
        REQUIRE(st.image_adversarial_loss > 0);
        REQUIRE(st.loss == Approx(st.code_loss + st.pixel_loss + 0.05 * st.image_adversarial_loss).epsilon(1e-12));
    }
    const double gap1 = gap();
    INFO("mean logit images - reconstructions: " << gap0 << " -> " << gap1);
    CHECK(gap1 > gap0 + 0.5);

    // Deterministic, and a checkpoint continues the discriminator and its optimizer.
    PspEncoder a(tiny_encoder(g), 9), b(tiny_encoder(g), 9), c(tiny_encoder(g), 9);
    EncoderTrainer ta(g, a, o), tb(g, b, o);
    for (int s = 0; s < 2; ++s) REQUIRE(ta.step().loss == tb.step().loss);
    tb.save_checkpoint(dir / "ckpt.safetensors");
    EncoderTrainer tr(g, c, options());
    tr.resume(dir / "ckpt.safetensors");
    REQUIRE(tr.image_discriminator() != nullptr);
    REQUIRE(tr.latent_discriminator() == nullptr);
    for (int s = 0; s < 2; ++s) REQUIRE(tr.step().loss == ta.step().loss);
    REQUIRE(std::equal(tr.image_discriminator()->params().values().begin(), tr.image_discriminator()->params().values().end(),
                       ta.image_discriminator()->params().values().begin()));
    EncoderTrainerOptions bad = o;
    bad.pixel_weight = 0;
    PspEncoder p(tiny_encoder(g), 9);
    REQUIRE_THROWS_WITH(EncoderTrainer(g, p, bad), Catch::Matchers::Contains("needs the reconstruction term"));
}
