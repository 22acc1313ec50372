// Tests of io/file_write.hpp and of every writer built on it: checked writes whose errors name the
// file and the system's reason, and nothing half-written under the final name.
#include "test_support.hpp"

#include <ganinv/io/file_write.hpp>
#include <ganinv/io/gif.hpp>
#include <ganinv/io/image.hpp>

#include <csignal>
#include <fstream>
#include <iterator>
#include <string>

#include <sys/resource.h>

using namespace ganinv;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::size_t entries_in(const fs::path& dir) {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++n;
    return n;
}

/// Caps the size of any file this process writes (RLIMIT_FSIZE, no privileges needed): a write
/// past the cap fails with EFBIG, which stands in for a disk filling up in the middle of a file.
class FileSizeCap {
public:
    explicit FileSizeCap(rlim_t bytes) {
        REQUIRE(getrlimit(RLIMIT_FSIZE, &saved_) == 0);
        old_handler_ = std::signal(SIGXFSZ, SIG_IGN);  // otherwise the signal ends the process
        rlimit r = saved_;
        r.rlim_cur = bytes;
        REQUIRE(setrlimit(RLIMIT_FSIZE, &r) == 0);
    }
    ~FileSizeCap() {
        setrlimit(RLIMIT_FSIZE, &saved_);
        std::signal(SIGXFSZ, old_handler_);
    }

private:
    rlimit saved_{};
    void (*old_handler_)(int) = nullptr;
};

}  // namespace

TEST_CASE("a full disk is an error naming the file and ENOSPC", "[io][write][reliability]") {
    const Image img = make_image(8, 8, 3, 9);
    REQUIRE_THROWS_WITH(save_png("/dev/full", img),
                        Catch::Contains("'/dev/full'") && Catch::Contains("No space left on device"));
    REQUIRE_THROWS_WITH(save_gif("/dev/full", {img, img}), Catch::Contains("No space left on device"));
    REQUIRE_THROWS_WITH(write_file_atomically("/dev/full", std::string_view("{}\n")),
                        Catch::Contains("No space left on device"));
    // A device is written in place: /dev/null takes the bytes and is still /dev/null afterwards.
    save_png("/dev/null", img);
    REQUIRE(fs::is_character_file("/dev/null"));
}

TEST_CASE("writes into a missing folder or onto a directory fail with the reason", "[io][write][reliability]") {
    const auto dir = test::temp_dir("write_missing");
    REQUIRE_THROWS_WITH(save_png(dir / "no" / "x.png", make_image(2, 2, 1)),
                        Catch::Contains("x.png") && Catch::Contains("No such file or directory"));
    REQUIRE_FALSE(fs::exists(dir / "no"));
    REQUIRE_THROWS_WITH(write_file_atomically(dir, std::string_view("x")), Catch::Contains("directory"));
    REQUIRE(entries_in(dir) == 0);
}

TEST_CASE("a write that fails half-way leaves the old file and no temporary", "[io][write][reliability]") {
    const auto dir = test::temp_dir("write_atomic");
    const auto target = dir / "summary.json";
    write_file_atomically(target, std::string_view("old and complete\n"));
    const std::string big(64 * 1024, 'x');
    {
        const FileSizeCap cap(4096);
        REQUIRE_THROWS_WITH(write_file_atomically(target, big),
                            Catch::Contains("summary.json") && Catch::Contains("File too large"));
        Image noise = make_image(256, 256, 3);  // noise: PNG cannot compress it under the cap
        std::uint32_t state = 1;
        for (auto& v : noise.pixels) v = static_cast<std::uint8_t>((state = state * 1664525u + 1013904223u) >> 24);
        REQUIRE_THROWS_WITH(save_png(dir / "new.png", noise), Catch::Contains("new.png"));
    }
    REQUIRE(slurp(target) == "old and complete\n");
    REQUIRE_FALSE(fs::exists(dir / "new.png"));
    REQUIRE(entries_in(dir) == 1);
    // Without the cap the same writes succeed and replace the file.
    write_file_atomically(target, big);
    REQUIRE(slurp(target) == big);
    REQUIRE(entries_in(dir) == 1);
}

TEST_CASE("AtomicFileWriter commits only what was written, once", "[io][write]") {
    const auto dir = test::temp_dir("write_commit");
    {
        AtomicFileWriter w(dir / "a.bin");
        w.write(std::string_view("part"));
        REQUIRE_FALSE(fs::exists(dir / "a.bin"));  // nothing under the final name before commit
    }
    REQUIRE(entries_in(dir) == 0);  // abandoned: the temporary is gone too
    AtomicFileWriter w(dir / "a.bin");
    w.write(std::string_view("whole"));
    w.commit();
    REQUIRE(slurp(dir / "a.bin") == "whole");
    REQUIRE_THROWS_AS(w.commit(), IoError);
    REQUIRE_THROWS_AS(w.write(std::string_view("more")), IoError);
}
