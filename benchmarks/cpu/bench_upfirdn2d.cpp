// CPU benchmark of upfirdn2d (StyleGAN2's up/down-sampling FIR): the library's implementation
// next to its direct definition (tests/unit/upfirdn2d_direct.hpp), forward and adjoint, on the
// three calls a synthesis block makes (up-sample x2, down-sample x2, filter with padding 1) with
// the [1, 3, 3, 1] filter. Both run on one thread, so the ratio is the implementation's.
// Usage: bench_upfirdn2d [--quick] [--json OUT.json]
#include "../bench_common.hpp"
#include "../../tests/unit/upfirdn2d_direct.hpp"

#include <ganinv/nn/upfirdn2d.hpp>

#include <cstring>
#include <iostream>

#ifdef _OPENMP
#include <omp.h>
#endif

using namespace ganinv;

int main(int argc, char** argv) {
    std::string json_path = "bench_upfirdn2d_cpu.json";
    bool quick = false;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--quick")) quick = true;
        else if (!std::strcmp(argv[i], "--json") && i + 1 < argc) json_path = argv[++i];
        else {
            std::cerr << "usage: bench_upfirdn2d [--quick] [--json OUT.json]\n";
            return 2;
        }
    }
#ifdef _OPENMP
    omp_set_num_threads(1);  // the library's loop is parallel over planes, the direct one is not
#endif
    try {
        const Tensor<float> filter = nn::make_resample_filter({1, 3, 3, 1});
        struct Case {
            std::string name;
            nn::Upfirdn2dParams p;
            Index planes, in;
        };
        std::vector<Case> cases = {
            {"up x2, 16 -> 32, 8 x 128 planes", nn::Upfirdn2dParams::upsample2d(4), 8 * 128, 16},
            {"down x2, 32 -> 16, 8 x 128 planes", nn::Upfirdn2dParams::downsample2d(4), 8 * 128, 32},
            {"filter pad 1, 32 -> 33, 8 x 128 planes", nn::Upfirdn2dParams::filter2d(4, 1), 8 * 128, 32},
        };
        if (!quick) {
            cases.push_back({"up x2, 128 -> 256, 1 x 128 planes", nn::Upfirdn2dParams::upsample2d(4), 128, 128});
            cases.push_back({"filter pad 1, 256 -> 257, 1 x 128 planes", nn::Upfirdn2dParams::filter2d(4, 1), 128, 256});
        }
        std::vector<bench::Row> rows;
        for (const Case& c : cases) {
            const Index out_size = c.planes * c.p.out_h(c.in, 4) * c.p.out_w(c.in, 4);
            std::vector<float> x(static_cast<std::size_t>(c.planes * c.in * c.in), 0.25f);
            std::vector<float> y(static_cast<std::size_t>(out_size), 0.5f), gx(x.size());
            const int reps = quick ? 3 : 7;
            const double lib_f = bench::median_ms(
                [&] { nn::upfirdn2d_forward(x.data(), c.planes, c.in, c.in, filter.data(), 4, 4, c.p, y.data()); }, reps);
            const double ref_f = bench::median_ms(
                [&] { test::upfirdn2d_direct_forward(x.data(), c.planes, c.in, c.in, filter.data(), 4, 4, c.p, y.data()); },
                reps);
            const double lib_b = bench::median_ms(
                [&] { nn::upfirdn2d_backward(y.data(), c.planes, c.in, c.in, filter.data(), 4, 4, c.p, gx.data()); }, reps);
            const double ref_b = bench::median_ms(
                [&] { test::upfirdn2d_direct_backward(y.data(), c.planes, c.in, c.in, filter.data(), 4, 4, c.p, gx.data()); },
                reps);
            bench::Row r;
            r.cells = {c.name,           bench::fmt(ref_f),           bench::fmt(lib_f), bench::fmt(ref_f / lib_f, 1),
                       bench::fmt(ref_b), bench::fmt(lib_b), bench::fmt(ref_b / lib_b, 1)};
            Json j{Json::Object{}};
            j.set("case", c.name);
            j.set("direct_forward_ms", ref_f);
            j.set("library_forward_ms", lib_f);
            j.set("direct_backward_ms", ref_b);
            j.set("library_backward_ms", lib_b);
            r.json = j;
            rows.push_back(r);
            std::cout << "." << std::flush;
        }
        std::cout << "\nupfirdn2d on the CPU, one thread\n";
        bench::print_table({"call", "direct fwd ms", "library fwd ms", "x", "direct bwd ms", "library bwd ms", "x"}, rows);
        bench::write_json(json_path, "upfirdn2d_cpu", rows);
    } catch (const std::exception& e) {
        std::cerr << "bench_upfirdn2d: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
