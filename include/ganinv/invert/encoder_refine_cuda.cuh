/// @file encoder_refine_cuda.cuh
/// @brief encoder_refine.hpp on the GPU: encoding images with a PspEncoderCuda and StyleGAN2<Cuda>,
///        including ReStyle's iterative refinement (w_0 = w_avg, y_0 = G(w_0); per iteration
///        w_{t+1} = w_t + E([x, y_t]), y_{t+1} = G(w_{t+1})) and encoder bootstrapping (w_0 =
///        E_0(x)). The same steps as the CPU's, on device buffers: EncoderTrainerCuda and
///        `ganinv encode --device cuda` share them, so what is trained is exactly what runs.
#pragma once

#include "ganinv/backend/cuda.cuh"
#include "ganinv/invert/encoder_refine.hpp"
#include "ganinv/models/psp_encoder_cuda.cuh"
#include "ganinv/models/stylegan2.hpp"

#include <functional>

namespace ganinv {

/// Where a refinement on the GPU stands: codes [N, num_ws, w_dim] and their image G(codes).
struct RefineStateCuda {
    cuda::DeviceTensor codes, reconstruction;
};

/// w_0 = w_avg on every layer for `n` images and its image (synthesised once, broadcast n times).
inline RefineStateCuda refinement_start(StyleGAN2<Cuda>& g, const PspEncoderCuda& e, Index n) {
    const Cuda& b = g.backend();
    const Index L = e.num_ws(), D = e.w_dim();
    cuda::DeviceTensor one = b.empty({1, L, D});
    b.broadcast_rows(e.w_avg().data(), D, L, one.data());
    const cuda::DeviceTensor img = g.synthesis(one, NoiseInput<Cuda>{});
    RefineStateCuda s{b.empty({n, L, D}), b.empty({n, img.dim(1), img.dim(2), img.dim(3)})};
    b.broadcast_rows(one.data(), L * D, n, s.codes.data());
    b.broadcast_rows(img.data(), img.numel(), n, s.reconstruction.data());
    return s;
}

/// ReStyle's encoder bootstrapping: w_0 = bootstrap(x) from a single-pass encoder, and its image.
inline RefineStateCuda bootstrap_start(StyleGAN2<Cuda>& g, const PspEncoderCuda& bootstrap, const cuda::DeviceTensor& images) {
    RefineStateCuda s;
    s.codes = bootstrap.forward(images);
    s.reconstruction = g.synthesis(s.codes, NoiseInput<Cuda>{});
    return s;
}

/// The iterative encoder's input [N, 2C, R, R]: per image the target's channels, then the
/// reconstruction's (two strided copies on the backend's stream).
inline cuda::DeviceTensor refinement_input(const Cuda& b, const cuda::DeviceTensor& images,
                                           const cuda::DeviceTensor& reconstruction) {
    GANINV_CHECK(images.rank() == 4 && reconstruction.shape() == images.shape(), ShapeError,
                 "refinement input: reconstruction ", shape_to_string(reconstruction.shape()), " for images ",
                 shape_to_string(images.shape()));
    const Index N = images.dim(0), per = images.numel() / N;
    cuda::DeviceTensor in = b.empty({N, 2 * images.dim(1), images.dim(2), images.dim(3)});
    const std::size_t row = sizeof(float) * static_cast<std::size_t>(per);
    GANINV_CUDA_CHECK(cudaMemcpy2DAsync(in.data(), 2 * row, images.data(), row, row, static_cast<std::size_t>(N),
                                        cudaMemcpyDeviceToDevice, b.stream()));
    GANINV_CUDA_CHECK(cudaMemcpy2DAsync(in.data() + per, 2 * row, reconstruction.data(), row, row,
                                        static_cast<std::size_t>(N), cudaMemcpyDeviceToDevice, b.stream()));
    return in;
}

/// Encodes device images [N, C, R, R] in `iterations` passes, as encode_images (encoder_refine.hpp):
/// `on_iteration` (may be empty) sees each iterate (t = 1..K); with `bootstrap` (single-pass,
/// same generator; `e` iterative) the refinement starts at bootstrap(x) instead of w_avg.
inline RefineStateCuda encode_images(StyleGAN2<Cuda>& g, const PspEncoderCuda& e, const cuda::DeviceTensor& images,
                                     Index iterations,
                                     const std::function<void(Index, const RefineStateCuda&)>& on_iteration = {},
                                     const PspEncoderCuda* bootstrap = nullptr) {
    check_refinement_iterations(e, iterations);
    check_refinement_start(e, bootstrap != nullptr);
    if (bootstrap) check_bootstrap(e, *bootstrap);
    RefineStateCuda s;
    if (!e.iterative()) {
        s.codes = e.forward(images);
        s.reconstruction = g.synthesis(s.codes, NoiseInput<Cuda>{});
        if (on_iteration) on_iteration(1, s);
        return s;
    }
    s = bootstrap ? bootstrap_start(g, *bootstrap, images) : refinement_start(g, e, images.dim(0));
    for (Index t = 1; t <= iterations; ++t) {
        s.codes = e.forward(refinement_input(g.backend(), images, s.reconstruction), nullptr, &s.codes);
        s.reconstruction = g.synthesis(s.codes, NoiseInput<Cuda>{});
        if (on_iteration) on_iteration(t, s);
    }
    return s;
}

}  // namespace ganinv
