// Tests of the core: tensors and views, JSON, RNG, half-precision conversions.
#include "test_support.hpp"

#include <ganinv/core/eigen.hpp>
#include <ganinv/core/eigen_view.hpp>
#include <ganinv/core/half.hpp>
#include <ganinv/core/json.hpp>
#include <ganinv/core/rng.hpp>
#include <ganinv/core/tensor.hpp>
#include <ganinv/core/view.hpp>

#include <cmath>
#include <limits>

using namespace ganinv;

TEST_CASE("Tensor owns a contiguous buffer and checks shapes", "[core]") {
    Tensor<float> t({2, 3, 4, 5}, 1.5f);
    REQUIRE(t.numel() == 120);
    REQUIRE(t.rank() == 4);
    auto v = t.view<4>();
    v(1, 2, 3, 4) = 7.0f;
    REQUIRE(t[119] == 7.0f);
    REQUIRE(v.is_contiguous());
    REQUIRE_THROWS_AS(t.view<3>(), ShapeError);
    REQUIRE_THROWS_AS(t.reshape({7, 7}), ShapeError);
    REQUIRE_THROWS_AS(Tensor<float>({2, 2}, std::vector<float>{1, 2, 3}), ShapeError);
    t.reshape({6, 20});
    REQUIRE(t.dim(1) == 20);
    REQUIRE_THROWS_WITH(expect_shape(t, {6, 21}, "weights"), Catch::Contains("weights") && Catch::Contains("[6, 21]"));
}

TEST_CASE("TensorView borrows strided user memory", "[core]") {
    std::vector<float> buf(24);
    for (std::size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<float>(i);
    TensorView<float, 2> rows(buf.data(), {4, 6});
    REQUIRE(rows(2, 3) == 15.0f);
    // A transposed view: same memory, swapped strides.
    TensorView<const float, 2> cols(buf.data(), {6, 4}, {1, 6});
    REQUIRE_FALSE(cols.is_contiguous());
    REQUIRE(cols(3, 2) == 15.0f);
    TensorView<const float, 2> as_const = rows;
    REQUIRE(as_const.data() == buf.data());
}

TEST_CASE("relative_l2_error and expect_finite", "[core]") {
    std::vector<float> a{1, 2, 3}, b{1, 2, 3.3f};
    REQUIRE(relative_l2_error(a, a) == 0.0);
    REQUIRE(relative_l2_error(a, b) == Approx(0.3 / std::sqrt(1 + 4 + 3.3 * 3.3)).epsilon(1e-6));
    std::vector<float> bad{1, std::numeric_limits<float>::quiet_NaN()};
    REQUIRE_THROWS_WITH(expect_finite(bad, "ws"), Catch::Contains("ws") && Catch::Contains("index 1"));
}

TEST_CASE("Json parses, queries and writes", "[core]") {
    const Json j = Json::parse(R"({"a": [1, 2.5, -3e2], "b": {"c": "x\ny\u00e9"}, "d": null, "e": true})");
    REQUIRE(j.at("a").as_array().size() == 3);
    REQUIRE(j.at("a").as_array()[2].as_number() == -300.0);
    REQUIRE(j.at("b").at("c").as_string() == "x\ny\xc3\xa9");
    REQUIRE(j.at("d").is_null());
    REQUIRE(j.at("e").as_bool());
    REQUIRE(Json::parse(j.dump()).dump() == j.dump());
    REQUIRE_THROWS_AS(Json::parse("{\"a\": 1,}"), FormatError);
    REQUIRE_THROWS_AS(Json::parse("[1, 2"), FormatError);
    REQUIRE_THROWS_AS(Json::parse("{} x"), FormatError);
    REQUIRE_THROWS_WITH(j.at("missing"), Catch::Contains("missing"));
    REQUIRE_THROWS_AS(j.at("a").as_string(), FormatError);
    REQUIRE_THROWS_AS(Json::parse("1.5").as_int(), FormatError);
}

TEST_CASE("Rng is deterministic and roughly standard normal", "[core]") {
    Rng a(42), b(42), c(43);
    REQUIRE(a.next_u64() == b.next_u64());
    REQUIRE(a.next_u64() != c.next_u64());
    Rng r(7);
    double sum = 0, sum2 = 0;
    const int n = 200000;
    for (int i = 0; i < n; ++i) {
        const double x = r.normal();
        sum += x;
        sum2 += x * x;
    }
    REQUIRE(std::fabs(sum / n) < 0.01);
    REQUIRE(std::fabs(sum2 / n - 1.0) < 0.02);
    // splitmix64 reference value (first output for state 0, as in the reference implementation).
    REQUIRE(splitmix64(0) == 0xE220A8397B1DCDAFULL);
}

TEST_CASE("half and bfloat16 conversions are exact where representable", "[core]") {
    for (float f : {0.0f, 1.0f, -2.5f, 65504.0f, 0.000061035156f, 5.9604645e-08f, 0.333251953125f}) {
        REQUIRE(half_bits_to_float(float_to_half_bits(f)) == f);
        REQUIRE(bfloat16_bits_to_float(float_to_bfloat16_bits(f)) == Approx(f).epsilon(1.0 / 128));
    }
    REQUIRE(half_bits_to_float(0x3C00) == 1.0f);
    REQUIRE(half_bits_to_float(0xC000) == -2.0f);
    REQUIRE(std::isinf(half_bits_to_float(0x7C00)));
    REQUIRE(std::isnan(half_bits_to_float(0x7E00)));
    REQUIRE(half_bits_to_float(0x0001) == Approx(5.9604645e-08f));
    REQUIRE(bfloat16_bits_to_float(0x3F80) == 1.0f);
    REQUIRE(std::isinf(half_bits_to_float(float_to_half_bits(1e6f))));
}

// ---------------------------------------------------------------- views of user memory
TEST_CASE("as_view borrows Eigen memory: the view's pointer is the caller's, strides follow storage order",
          "[core][view]") {
    std::vector<float> user(2 * 12);
    for (std::size_t i = 0; i < user.size(); ++i) user[i] = static_cast<float>(i);
    Eigen::Map<Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> rows(user.data(), 2, 12);
    const TensorView<float, 2> v = as_view(rows);
    REQUIRE(v.data() == user.data());
    REQUIRE(v.stride(0) == 12);
    REQUIRE(v.stride(1) == 1);
    // Rows of flattened images as [N, C, H, W], still the caller's memory.
    const TensorView<float, 4> img = reshape_view<4>(v, {2, 3, 2, 2});
    REQUIRE(img.data() == user.data());
    REQUIRE(img(1, 2, 1, 0) == user[12 + 2 * 4 + 2]);
    user[12 + 2 * 4 + 2] = -5.0f;  // a write through the caller's buffer is seen by the view
    REQUIRE(img(1, 2, 1, 0) == -5.0f);

    Eigen::MatrixXf col_major(3, 4);  // column-major: element (r, c) at r + 3 c
    for (int c = 0; c < 4; ++c)
        for (int r = 0; r < 3; ++r) col_major(r, c) = static_cast<float>(10 * r + c);
    const TensorView<float, 2> cv = as_view(col_major);
    REQUIRE(cv.data() == col_major.data());
    REQUIRE(cv(2, 1) == 21.0f);
    const Tensor<float> copy = to_tensor(cv);  // the gather of a strided view is row-major
    REQUIRE(copy.shape() == Shape{3, 4});
    REQUIRE(copy[2 * 4 + 1] == 21.0f);
    // Column-major rows are not contiguous: reshaping them into images is refused.
    REQUIRE_THROWS_AS(reshape_view<4>(cv, {3, 1, 2, 2}), ShapeError);
}

TEST_CASE("Json refuses numbers beyond double instead of returning inf", "[core][json][reliability]") {
    // Before the fix strtod's inf came through: 1e999 parsed as an infinite number.
    REQUIRE_THROWS_WITH(Json::parse("1e999"), Catch::Contains("out of range") && Catch::Contains("1e999"));
    REQUIRE_THROWS_WITH(Json::parse(R"({"lr_multiplier": -1e999})"), Catch::Contains("out of range"));
    REQUIRE_THROWS_AS(Json::parse("[1, 2e400]"), FormatError);
    // Underflow is a representable value (0 or a subnormal), not an error.
    REQUIRE(Json::parse("1e-999").as_number() == 0.0);
    REQUIRE(Json::parse("1.7976931348623157e308").as_number() == std::numeric_limits<double>::max());
}

TEST_CASE("shape_numel refuses element counts beyond 64 bits", "[core][reliability]") {
    // 274177 * 67280421310721 = 2^64 + 1: the old signed product overflowed (UB) and came out as 1.
    REQUIRE_THROWS_AS(shape_numel(Shape{274177, 67280421310721}), ShapeError);
    REQUIRE_THROWS_WITH(shape_numel(Shape{Index{1} << 32, Index{1} << 31}), Catch::Contains("64-bit"));
    REQUIRE(shape_numel(Shape{Index{1} << 31, Index{1} << 31}) == Index{1} << 62);
    REQUIRE(shape_numel(Shape{0, 7}) == 0);
    Index out = 0;
    REQUIRE_FALSE(checked_mul(Index{1} << 62, Index{2}, out));
    REQUIRE(checked_mul(Index{1} << 61, Index{2}, out));
    REQUIRE(out == Index{1} << 62);
}

TEST_CASE("eigen_abi_mismatch: every TU of this binary agrees, and a disagreement names both TUs", "[core][eigen]") {
    // This TU recorded itself before main(); so did every other one that includes ganinv's Eigen.
    REQUIRE_FALSE(ganinv::detail::eigen_abi_records().empty());
    CHECK(ganinv::eigen_abi_mismatch().empty());
    const std::vector<ganinv::EigenAbi> agree = {{32, 0, "a.cpp"}, {32, 0, "b.cpp"}};
    CHECK(ganinv::eigen_abi_mismatch(agree).empty());
    // What an nvcc TU without -Xcompiler=-march=native records next to -march=native C++ TUs.
    const std::vector<ganinv::EigenAbi> mixed = {{32, 0, "main.cpp"}, {32, 0, "cmd.cpp"}, {16, 1, "invert_cuda.cu"}};
    const std::string message = ganinv::eigen_abi_mismatch(mixed);
    CHECK(message.find("main.cpp (EIGEN_MAX_ALIGN_BYTES 32, EIGEN_MALLOC_ALREADY_ALIGNED 0)") != std::string::npos);
    CHECK(message.find("invert_cuda.cu (EIGEN_MAX_ALIGN_BYTES 16, EIGEN_MALLOC_ALREADY_ALIGNED 1)") != std::string::npos);
    CHECK(message.find("-Xcompiler") != std::string::npos);
}
