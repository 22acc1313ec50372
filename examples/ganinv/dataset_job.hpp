/// @file dataset_job.hpp
/// @brief The bookkeeping of a dataset inversion (`ganinv invert --dir/--list`, docs/datasets.md):
///        the lock that keeps a second job out of an output folder, the manifest (one JSON line
///        per image), the read-back check that `--resume` trusts, and the job's progress line.
#pragma once

#include "common.hpp"

#include <ganinv/core/json.hpp>
#include <ganinv/io/file_write.hpp>
#include <ganinv/io/image.hpp>
#include <ganinv/io/safetensors.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ganinv::cli {

/// --list FILE: one image path a line; blank lines and lines starting with '#' are skipped.
/// Relative paths are taken from the list's folder, so a list travels with its dataset.
inline std::vector<std::filesystem::path> read_path_list(const std::filesystem::path& list) {
    std::ifstream in(list);
    GANINV_CHECK(in.good(), IoError, "--list '", list.string(), "': cannot open it");
    std::vector<std::filesystem::path> paths;
    for (std::string line; std::getline(in, line);) {
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
        if (line.empty() || line[0] == '#') continue;
        const std::filesystem::path p(line);
        paths.push_back(p.is_absolute() ? p : list.parent_path() / p);
    }
    GANINV_CHECK(!paths.empty(), IoError, "--list '", list.string(), "' names no image");
    return paths;
}

/// Output stem per input: its file stem, numbered (_2, _3, ...) when inputs share one. Decided
/// over the whole list, so every rank and every resumed run gives an image the same name.
inline std::vector<std::string> unique_output_names(const std::vector<std::filesystem::path>& paths) {
    std::set<std::string> used;
    std::vector<std::string> names;
    for (const auto& p : paths) {
        std::string name = p.stem().string();
        for (int k = 2; used.count(name) != 0; ++k) name = p.stem().string() + "_" + std::to_string(k);
        used.insert(name);
        names.push_back(name);
    }
    return names;
}

/// OUT/ganinv.lock, held for the whole job. The exclusion is a flock() on the file (the kernel
/// drops it when the holder dies, however it dies); the file holds "pid host" for the messages.
/// A lock file left by a process that is gone is taken over with a warning; one whose pid is
/// still alive on this host is refused even when flock() let us in (file systems without flock).
class OutputLock {
public:
    static constexpr const char* kFileName = "ganinv.lock";

    explicit OutputLock(const std::filesystem::path& dir) : path_(dir / kFileName) {
        const std::string host = hostname();
        for (int attempt = 0; attempt < 3; ++attempt) {
            fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
            GANINV_CHECK(fd_ >= 0, IoError, "cannot create the lock file '", path_.string(), "': ", std::strerror(errno));
            const std::string holder = contents();
            if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
                const int err = errno;
                close_fd();
                GANINV_CHECK(err == EWOULDBLOCK, IoError, "cannot lock '", path_.string(), "': ", std::strerror(err));
                throw IoError(concat("the output folder '", dir.string(), "' is in use by another ganinv job (lock file '",
                                     path_.string(), "' held by ", describe(holder),
                                     "); wait for that job to end, or give another --out"));
            }
            // The holder may have removed the file between our open() and flock(): then we hold
            // a lock on a name nobody sees; start again on the current file.
            struct stat by_fd {}, by_name {};
            if (::fstat(fd_, &by_fd) != 0 || ::stat(path_.c_str(), &by_name) != 0 || by_fd.st_ino != by_name.st_ino) {
                close_fd();
                continue;
            }
            if (const std::string previous = contents(); !previous.empty()) {
                long pid = 0;
                char other_host[256] = {};
                const bool parsed = std::sscanf(previous.c_str(), "%ld %255s", &pid, other_host) == 2;
                if (parsed && host == other_host && pid != ::getpid() && is_ganinv_process(pid)) {
                    close_fd();
                    throw IoError(concat("the output folder '", dir.string(), "' is in use by another ganinv job (lock file '",
                                         path_.string(), "' names ", describe(previous), ", which is still running)"));
                }
                std::fprintf(stderr, "warning: taking over the stale lock '%s' of %s (no longer running)\n", path_.c_str(),
                             describe(previous).c_str());
            }
            const std::string me = concat(::getpid(), " ", host, "\n");
            if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, me.data(), me.size(), 0) != static_cast<::ssize_t>(me.size()))
                throw IoError(concat("cannot write the lock file '", path_.string(), "': ", std::strerror(errno)));
            return;
        }
        throw IoError(concat("could not take the lock '", path_.string(), "': it kept being replaced"));
    }
    ~OutputLock() {
        if (fd_ < 0) return;
        ::unlink(path_.c_str());  // before unlocking: a waiting job then never locks a dead name for long
        close_fd();
    }
    OutputLock(const OutputLock&) = delete;
    OutputLock& operator=(const OutputLock&) = delete;

    const std::filesystem::path& path() const { return path_; }

private:
    static std::string hostname() {
        char h[256] = {};
        ::gethostname(h, sizeof h - 1);
        return h[0] ? h : "unknown-host";
    }
    /// A live process of the same program: not a pid reused by another program, and not a
    /// zombie (a killed rank whose parent, the launcher, is gone and that nobody has reaped).
    static bool is_ganinv_process(long pid) {
        if (pid <= 0 || ::kill(static_cast<pid_t>(pid), 0) != 0) return false;
        const auto first_line = [](const std::string& p) {
            std::ifstream f(p);
            std::string s;
            std::getline(f, s);
            return s;
        };
        const std::string stat = first_line(concat("/proc/", pid, "/stat"));  // "PID (COMM) STATE ..."
        const auto close = stat.rfind(')');
        if (close == std::string::npos || close + 2 >= stat.size() || stat[close + 2] == 'Z' || stat[close + 2] == 'X')
            return false;
        return first_line(concat("/proc/", pid, "/comm")) == first_line("/proc/self/comm");
    }
    static std::string describe(const std::string& holder) {
        long pid = 0;
        char host[256] = {};
        if (std::sscanf(holder.c_str(), "%ld %255s", &pid, host) == 2) return concat("process ", pid, " on ", host);
        return "a process that did not say which";
    }
    std::string contents() const {
        char buf[512] = {};
        const ::ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
        return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
    }
    void close_fd() {
        ::close(fd_);
        fd_ = -1;
    }

    std::filesystem::path path_;
    int fd_ = -1;
};

/// One line of OUT/manifest.jsonl.
struct ManifestEntry {
    std::string image;  ///< the input path as the job saw it
    std::string name;   ///< the output stem (NAME.safetensors, NAME_recon.png, ...)
    bool ok = false;
    std::string error;  ///< why not, when !ok
    double psnr = 0, ssim = 0, seconds = 0;
    Index steps = 0;
    int rank = 0;
    std::string device;
    Json::Object extra;  ///< a command's own fields after the common ones (tune: its generator file)

    std::string line() const {
        Json j{Json::Object{}};
        j.set("image", image);
        j.set("name", name);
        j.set("status", ok ? "ok" : "error");
        j.set("error", ok ? Json() : Json(error));
        j.set("psnr", ok && std::isfinite(psnr) ? Json(psnr) : Json());
        j.set("ssim", ok ? Json(ssim) : Json());
        j.set("steps", ok ? Json(static_cast<std::int64_t>(steps)) : Json());
        j.set("seconds", seconds);
        j.set("rank", rank);
        j.set("device", device);
        for (const auto& [key, value] : extra) j.set(key, value);
        return j.dump() + "\n";
    }
};

/// Appends whole lines to OUT/manifest.jsonl. Each line is one write() on an O_APPEND file, so
/// lines of concurrent ranks never interleave (on local and cluster file systems with POSIX
/// append; NFS is not one of them: docs/datasets.md).
class ManifestWriter {
public:
    static constexpr const char* kFileName = "manifest.jsonl";

    explicit ManifestWriter(const std::filesystem::path& dir) : path_(dir / kFileName) {
        fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        GANINV_CHECK(fd_ >= 0, IoError, "cannot open the manifest '", path_.string(), "': ", std::strerror(errno));
    }
    ~ManifestWriter() { ::close(fd_); }
    ManifestWriter(const ManifestWriter&) = delete;
    ManifestWriter& operator=(const ManifestWriter&) = delete;

    void append(const ManifestEntry& e) {
        const std::string text = e.line();
        ::ssize_t n;
        do n = ::write(fd_, text.data(), text.size());
        while (n < 0 && errno == EINTR);
        GANINV_CHECK(n == static_cast<::ssize_t>(text.size()), IoError, "cannot append to the manifest '", path_.string(),
                     "': ", n < 0 ? std::strerror(errno) : "short write");
    }

private:
    std::filesystem::path path_;
    int fd_ = -1;
};

/// The images a previous run finished: the last manifest line of each image says "ok". A line
/// that does not parse (a crash mid-line on a file system without atomic appends) is counted in
/// `bad_lines` and otherwise ignored: its image is simply redone.
inline std::set<std::string> images_done_in_manifest(const std::filesystem::path& dir, int& bad_lines) {
    std::map<std::string, bool> last;
    bad_lines = 0;
    std::ifstream in(dir / ManifestWriter::kFileName);
    for (std::string line; std::getline(in, line);) {
        if (line.empty()) continue;
        try {
            const Json j = Json::parse(line);
            last[j.at("image").as_string()] = j.at("status").as_string() == "ok";
        } catch (const Error&) {
            ++bad_lines;
        }
    }
    std::set<std::string> done;
    for (const auto& [image, ok] : last)
        if (ok) done.insert(image);
    return done;
}

/// What a complete output set of one image looks like (write_image_outputs in invert_outputs.cpp).
struct OutputSpec {
    Index resolution = 0, channels = 0, num_ws = 0, w_dim = 0;
    std::string space;
    bool fixed_noise_png = false;  ///< --optimize-noise adds NAME_recon_fixed_noise.png
    std::vector<std::string> pictures{"_recon.png", "_compare.png", "_loss.png"};  ///< NAME + each: a PNG
    std::vector<std::string> models;  ///< NAME + each: a safetensors file whose every tensor must load (tune's generator)
};

/// Empty when every output of `name` is there and reads back whole (the code file parses, holds a
/// [1, num_ws, w_dim] 'ws' of the same space and every tensor's bytes; each PNG decodes, the
/// reconstructions at the generator's size); otherwise the first reason it is not.
inline std::string verify_outputs(const std::filesystem::path& dir, const std::string& name, const OutputSpec& spec) {
    try {
        const SafetensorsFile f(dir / (name + ".safetensors"));
        const Tensor<float> ws = load_nonempty(f, "ws");
        if (ws.shape() != Shape{1, spec.num_ws, spec.w_dim})
            return concat(f.path().string(), ": 'ws' has shape ", shape_to_string(ws.shape()), ", not [1, ", spec.num_ws, ", ",
                          spec.w_dim, "]");
        if (f.metadata("space") != spec.space) return concat(f.path().string(), ": not a code of space ", spec.space);
        for (const auto& e : f.entries()) (void)f.load(e.name);
        std::vector<std::string> pictures = spec.pictures;
        if (spec.fixed_noise_png) pictures.push_back("_recon_fixed_noise.png");
        for (const auto& suffix : pictures) {
            const Image img = load_image(dir / (name + suffix));
            const bool recon = suffix.rfind("_recon", 0) == 0;
            if (recon && (img.width != spec.resolution || img.height != spec.resolution))
                return concat(name, suffix, " is ", img.width, "x", img.height, ", not ", spec.resolution, "x", spec.resolution);
        }
        for (const auto& suffix : spec.models) {
            const SafetensorsFile m(dir / (name + suffix));
            for (const auto& e : m.entries()) (void)m.load(e.name);
        }
        return {};
    } catch (const Error& e) {
        return e.what();
    }
}

/// Removes the temporary files (".NAME.tmp.PID.N", io/file_write.hpp) that a killed job left in
/// `dir`; called only by the holder of the lock, so no live writer owns them.
inline int remove_stale_temporaries(const std::filesystem::path& dir) {
    int removed = 0;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
        const std::string f = e.path().filename().string();
        if (f.size() > 1 && f[0] == '.' && f.find(".tmp.") != std::string::npos && e.is_regular_file(ec) &&
            std::filesystem::remove(e.path(), ec))
            ++removed;
    }
    return removed;
}

/// Seconds from `t0` to now.
inline double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// Where a one-process job's wall time went (summary.json's "timing" and one line on stderr), so
/// that a slow job says which part to look at. startup: process start to the first batch
/// (arguments, model, device, the output folder and its plan); loading: decoding and resizing the
/// inputs; inversion: the command's work on each batch (the optimisation, its final renders and
/// scores); outputs: writing every image's files and manifest line, or, where that overlaps the
/// next batch's inversion (one process), waiting for it; summary: the overview and the table.
/// outputs_background (not part of the total) is the writing done on the background thread of a
/// one-process run; what of it the later batches' inversions did not hide is in `outputs`.
struct JobTimes {
    double startup = 0, loading = 0, inversion = 0, outputs = 0, summary = 0;
    double outputs_background = 0;

    double total() const { return startup + loading + inversion + outputs + summary; }
    Json to_json() const {
        Json j{Json::Object{}};
        j.set("startup_seconds", startup);
        j.set("loading_seconds", loading);
        j.set("inversion_seconds", inversion);
        j.set("outputs_seconds", outputs);
        j.set("summary_seconds", summary);
        j.set("total_seconds", total());
        j.set("outputs_background_seconds", outputs_background);
        return j;
    }
    std::string line() const {
        char buf[320];
        int n = std::snprintf(buf, sizeof buf,
                              "time: %.1f s = startup %.1f + loading images %.1f + inversion %.1f + outputs %.1f + summary %.1f",
                              total(), startup, loading, inversion, outputs, summary);
        if (outputs_background > 0 && n > 0 && n < static_cast<int>(sizeof buf))
            std::snprintf(buf + n, sizeof buf - static_cast<std::size_t>(n),
                          "; files written in the background %.1f s, %.1f s of it hidden behind later batches",
                          outputs_background, std::max(0.0, outputs_background - outputs));
        return buf;
    }
};

/// The job's one progress line on stderr: images done / total, images per second, ETA. On a
/// terminal it is redrawn in place; in a log a line at most every `log_every` seconds and at the end.
class JobProgress {
public:
    explicit JobProgress(long long total, double log_every = 10.0)
        : total_(total), log_every_(log_every), tty_(::isatty(2) != 0), start_(std::chrono::steady_clock::now()) {}

    void update(long long done, long long failed) {
        const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
        const bool last = done >= total_;
        if (!last && (done == 0 || (!tty_ && t - last_print_ < log_every_))) return;  // no rate before the first image
        last_print_ = t;
        const double rate = t > 0 ? static_cast<double>(done) / t : 0.0;
        const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : 0.0;
        std::fprintf(stderr, "%sprogress: %lld/%lld images (%lld failed), %.2f images/s, %s %.0f s%s", tty_ ? "\r" : "", done,
                     total_, failed, rate, last ? "took" : "ETA", last ? t : eta, tty_ && !last ? "" : "\n");
        std::fflush(stderr);
    }

private:
    long long total_;
    double log_every_;
    bool tty_;
    std::chrono::steady_clock::time_point start_;
    double last_print_ = -1e9;
};

}  // namespace ganinv::cli
