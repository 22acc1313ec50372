// The README's minimal example: load the bundled demo generator, draw an image from a seed,
// save it. Built by the tests, and built again against the installed package.
#include <ganinv/ganinv.hpp>

#include <iostream>

int main(int argc, char** argv) {
    const std::string model = argc > 1 ? argv[1] : "models/fmnist32.safetensors";
    const std::string out = argc > 2 ? argv[2] : "minimal.png";
    try {
        auto g = ganinv::StyleGAN2<ganinv::Cpu>::load(model);

        ganinv::Tensor<float> z({1, g.z_dim()});
        ganinv::NumpyRandomState(42).randn(z.values());            // same z as the official seed 42
        const auto ws = g.mapping(z, {.psi = 0.7f, .cutoff = {}});  // [1, num_ws, w_dim]
        const auto img = g.synthesis(ws);                           // [1, C, R, R] in [-1, 1]

        ganinv::save_png(out, ganinv::tensor_to_image(img));
        std::cout << "wrote " << out << " (" << g.resolution() << "x" << g.resolution() << ")\n";
    } catch (const ganinv::Error& e) {
        std::cerr << "error: " << e.what() << "\n";
        return 1;
    }
}
