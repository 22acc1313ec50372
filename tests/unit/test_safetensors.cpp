// Tests of the safetensors reader/writer, including every malformed-file case named in the design.
#include "test_support.hpp"

#include <ganinv/core/half.hpp>
#include <ganinv/io/safetensors.hpp>

#include <array>
#include <fstream>
#include <vector>

using namespace ganinv;

namespace {

std::string le64(std::uint64_t n) {
    std::string s(8, '\0');
    for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
    return s;
}

/// Writes a hand-made file: header JSON text + raw data bytes.
std::filesystem::path write_raw(const std::string& name, const std::string& header, const std::string& data,
                                std::int64_t header_len_override = -1) {
    const auto path = test::temp_dir("st_" + name) / (name + ".safetensors");
    std::ofstream out(path, std::ios::binary);
    out << le64(header_len_override >= 0 ? static_cast<std::uint64_t>(header_len_override) : header.size())
        << header << data;
    return path;
}

std::string floats(std::initializer_list<float> v) {
    std::string s;
    for (float f : v) s.append(reinterpret_cast<const char*>(&f), 4);
    return s;
}

}  // namespace

TEST_CASE("safetensors round trip with metadata", "[safetensors]") {
    SafetensorsWriter w;
    Tensor<float> a({2, 3}, std::vector<float>{1, 2, 3, 4, 5, 6});
    Tensor<float> s({}, std::vector<float>{0.25f});
    w.add("a", a);
    w.add("scalar", s);
    w.set_metadata("config", R"({"z_dim": 4})");
    const auto path = test::temp_dir("st_rt") / "x.safetensors";
    w.write(path);

    SafetensorsFile f(path);
    REQUIRE(f.names() == std::vector<std::string>{"a", "scalar"});
    REQUIRE(f.load("a").values()[4] == 5.0f);
    REQUIRE(f.load("a", {2, 3}).shape() == Shape{2, 3});
    REQUIRE(f.load("scalar").numel() == 1);
    REQUIRE(f.metadata("config").value() == R"({"z_dim": 4})");
    REQUIRE_FALSE(f.metadata("other").has_value());
    REQUIRE_THROWS_WITH(f.load("a", {3, 2}), Catch::Contains("'a'") && Catch::Contains("[3, 2]"));
    REQUIRE_THROWS_WITH(f.load("nope"), Catch::Contains("no tensor 'nope'") && Catch::Contains("x.safetensors"));
}

TEST_CASE("safetensors reads F16 and BF16 and the official fixtures", "[safetensors]") {
    std::string data;
    for (float v : {1.0f, -2.0f, 0.5f}) {
        const auto h = float_to_half_bits(v);
        data += static_cast<char>(h & 0xFF);
        data += static_cast<char>(h >> 8);
    }
    for (float v : {3.0f, -0.125f}) {
        const auto h = float_to_bfloat16_bits(v);
        data += static_cast<char>(h & 0xFF);
        data += static_cast<char>(h >> 8);
    }
    const auto path = write_raw("half",
                                R"({"h":{"dtype":"F16","shape":[3],"data_offsets":[0,6]},)"
                                R"("b":{"dtype":"BF16","shape":[2],"data_offsets":[6,10]}})",
                                data);
    SafetensorsFile f(path);
    REQUIRE(f.load("h").values()[1] == -2.0f);
    REQUIRE(f.load("b").values()[1] == -0.125f);

    SafetensorsFile fixture(test::data_dir() / "stylegan2_tiny" / "generator.safetensors");
    REQUIRE(fixture.load("synthesis.b4.const").shape() == Shape{64, 4, 4});
}

TEST_CASE("safetensors rejects malformed files with clear messages", "[safetensors]") {
    const std::string ok_entry = R"("t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
    const std::string two = floats({1, 2});

    SECTION("missing file") {
        REQUIRE_THROWS_WITH(SafetensorsFile("/nonexistent/model.safetensors"),
                            Catch::Contains("/nonexistent/model.safetensors"));
    }
    SECTION("truncated before the header length") {
        const auto p = test::temp_dir("st_trunc") / "t.safetensors";
        std::ofstream(p, std::ios::binary) << "abc";
        REQUIRE_THROWS_WITH(SafetensorsFile(p), Catch::Contains("truncated"));
    }
    SECTION("header length past the end") {
        const auto p = write_raw("hlen", "{" + ok_entry + "}", two, 100000);
        REQUIRE_THROWS_WITH(SafetensorsFile(p), Catch::Contains("runs past the end"));
    }
    SECTION("header is not JSON") {
        REQUIRE_THROWS_WITH(SafetensorsFile(write_raw("json", "{not json}", two)), Catch::Contains("not valid JSON"));
    }
    SECTION("offsets out of range") {
        const auto p = write_raw("range", R"({"t":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", two);
        REQUIRE_THROWS_WITH(SafetensorsFile(p), Catch::Contains("'t'") && Catch::Contains("out of range"));
    }
    SECTION("overlapping tensors") {
        const auto p = write_raw("overlap",
                                 R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                 R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                 two);
        REQUIRE_THROWS_WITH(SafetensorsFile(p), Catch::Contains("overlap"));
    }
    SECTION("unknown dtype") {
        const auto p = write_raw("dtype", R"({"t":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}})", two);
        REQUIRE_THROWS_WITH(SafetensorsFile(p), Catch::Contains("unknown dtype 'F33'") && Catch::Contains("'t'"));
    }
    SECTION("shape and byte count disagree") {
        const auto p = write_raw("count", R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", two);
        REQUIRE_THROWS_WITH(SafetensorsFile(p), Catch::Contains("needs 12 bytes"));
    }
    SECTION("integer tensors convert to float, booleans do not") {
        SafetensorsFile f(write_raw("int",
                                    R"({"u":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                                    R"("i":{"dtype":"I16","shape":[1],"data_offsets":[2,4]},)"
                                    R"("b":{"dtype":"BOOL","shape":[2],"data_offsets":[4,6]}})",
                                    std::string("\xff\x07\xfe\xff\x01\x00", 6)));
        REQUIRE(f.load("u").values()[0] == 255.0f);
        REQUIRE(f.load("u").values()[1] == 7.0f);
        REQUIRE(f.load("i").values()[0] == -2.0f);
        REQUIRE_THROWS_WITH(f.load("b"), Catch::Contains("BOOL"));
    }
    SECTION("missing tensor") {
        SafetensorsFile f(write_raw("missing", "{" + ok_entry + "}", two));
        REQUIRE_THROWS_WITH(f.load("mapping.fc0.weight"), Catch::Contains("mapping.fc0.weight"));
    }
}

TEST_CASE("safetensors sizes from the header are computed with checked arithmetic", "[safetensors][reliability]") {
    SECTION("numel * element size wrapping around 2^64 is refused, not allocated") {
        // [2^52, 1024] F32 needs 2^64 bytes: the old unchecked product wrapped to 0 and matched
        // data_offsets [0, 0]; loading then threw std::length_error (not a ganinv::Error).
        const auto p = write_raw("wrap", R"({"t":{"dtype":"F32","shape":[4503599627370496,1024],"data_offsets":[0,0]}})",
                                 "");
        REQUIRE_THROWS_AS(SafetensorsFile(p), FormatError);
        REQUIRE_THROWS_WITH(SafetensorsFile(p), Catch::Contains("'t'") && Catch::Contains("2^64"));
    }
    SECTION("an element count beyond 64 bits is refused") {
        // 274177 * 67280421310721 = 2^64 + 1, which wrapped to one element matching one U8 byte.
        const auto p =
            write_raw("numel", R"({"t":{"dtype":"U8","shape":[274177,67280421310721],"data_offsets":[0,1]}})", "x");
        REQUIRE_THROWS_AS(SafetensorsFile(p), FormatError);
    }
    SECTION("every pair of non-empty ranges is compared, not only neighbours") {
        // An empty tensor between two overlapping ones hid the overlap; so could a long range
        // covering later ones. (header, first and second tensor named in the message)
        const std::vector<std::array<std::string, 3>> cases = {
            {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
             R"("e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},)"
             R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
             "a", "b"},
            {R"({"big":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
             R"("x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},)"
             R"("y":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
             "big", "x"},
        };
        for (const auto& [header, first, second] : cases) {
            const auto p = write_raw("overlap_" + first, header, floats({1, 2, 3, 4}));
            REQUIRE_THROWS_WITH(SafetensorsFile(p), Catch::Contains("'" + first + "' and '" + second + "' overlap"));
        }
    }
    SECTION("empty tensors anywhere and adjacent ranges are fine") {
        SafetensorsFile f(write_raw("adjacent",
                                    R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                    R"("e":{"dtype":"F32","shape":[0,3],"data_offsets":[4,4]},)"
                                    R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                    floats({1, 2})));
        REQUIRE(f.load("b")[0] == 2.0f);
        REQUIRE(f.load("e").numel() == 0);
    }
}

TEST_CASE("safetensors writes are checked and all-or-nothing", "[safetensors][reliability]") {
    SafetensorsWriter w;
    w.add("t", Tensor<float>({4}, 1.0f));
    // ENOSPC: the old writer reported "failed writing X" without the reason.
    REQUIRE_THROWS_WITH(w.write("/dev/full"), Catch::Contains("/dev/full") && Catch::Contains("No space left on device"));
    const auto dir = test::temp_dir("st_write");
    REQUIRE_THROWS_WITH(w.write(dir / "missing" / "x.safetensors"),
                        Catch::Contains("x.safetensors") && Catch::Contains("No such file or directory"));
    w.write(dir / "ok.safetensors");
    REQUIRE(SafetensorsFile(dir / "ok.safetensors").load("t")[3] == 1.0f);
    std::size_t files = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++files;
    REQUIRE(files == 1);  // no temporary file left behind
}
