/// @file file_write.hpp
/// @brief Checked, all-or-nothing file writes: every output of the library and the tool goes
///        through `AtomicFileWriter` (or `write_file_atomically`), so a full disk, a missing folder
///        or a crash never leaves a truncated file under the final name, and every failure names
///        the file and the system's reason (strerror).
///
/// The bytes go to a temporary file in the target's folder (same file system, so the final
/// rename is atomic), are flushed to disk, and only then renamed over the target. A target that
/// exists and is not a regular file (/dev/null, /dev/stdout, a FIFO) is written in place: renaming
/// over a device node would replace the device, not feed it. POSIX only (open/write/rename).
#pragma once

#include "ganinv/core/error.hpp"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ganinv {

namespace detail {

/// strerror(errno) for messages, read before anything else can change errno.
inline std::string errno_text(int err) { return err == 0 ? std::string("unknown error") : std::strerror(err); }

/// A temporary name next to `target` that no other writer of this process or another one picks.
inline std::filesystem::path temp_sibling(const std::filesystem::path& target) {
    static std::atomic<unsigned> counter{0};
    const std::string name = concat(".", target.filename().string(), ".tmp.", ::getpid(), ".", counter++);
    return target.has_parent_path() ? target.parent_path() / name : std::filesystem::path(name);
}

}  // namespace detail

/// Writes one file all-or-nothing: write() any number of times, then commit(). Without commit()
/// (an exception on the way) the destructor removes the temporary file and the target is left
/// as it was. Every failing system call throws IoError naming the target and strerror(errno).
class AtomicFileWriter {
public:
    explicit AtomicFileWriter(std::filesystem::path target) : target_(std::move(target)) {
        GANINV_CHECK(!target_.empty() && target_.has_filename(), IoError, "cannot write to '", target_.string(),
                     "': not a file name");
        struct stat st {};
        in_place_ = ::stat(target_.c_str(), &st) == 0 && !S_ISREG(st.st_mode);
        GANINV_CHECK(!(in_place_ && S_ISDIR(st.st_mode)), IoError, "cannot write '", target_.string(),
                     "': it is a directory");
        if (in_place_) {
            fd_ = ::open(target_.c_str(), O_WRONLY | O_CLOEXEC);
        } else {
            temp_ = detail::temp_sibling(target_);
            fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        }
        if (fd_ < 0) fail("cannot create");
    }
    AtomicFileWriter(const AtomicFileWriter&) = delete;
    AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;
    ~AtomicFileWriter() {
        if (fd_ >= 0) ::close(fd_);
        if (!temp_.empty()) ::unlink(temp_.c_str());
    }

    const std::filesystem::path& target() const { return target_; }

    void write(const void* data, std::size_t size) {
        GANINV_CHECK(fd_ >= 0, IoError, "'", target_.string(), "': write after commit");
        const auto* p = static_cast<const unsigned char*>(data);
        while (size > 0) {
            const ::ssize_t n = ::write(fd_, p, size);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) fail("error while writing");
            p += n;
            size -= static_cast<std::size_t>(n);
        }
    }
    void write(std::string_view text) { write(text.data(), text.size()); }
    void write(std::span<const unsigned char> bytes) { write(bytes.data(), bytes.size()); }

    /// Flushes the bytes to disk, then moves them under the target name.
    void commit() {
        GANINV_CHECK(fd_ >= 0, IoError, "'", target_.string(), "': committed twice");
        // fsync before the rename: otherwise a crash can leave the new name pointing at a file
        // whose blocks never reached the disk. Devices and pipes may refuse it (EINVAL): harmless.
        if (::fsync(fd_) != 0 && !(in_place_ && (errno == EINVAL || errno == EROFS))) fail("error while flushing");
        const int fd = fd_;
        fd_ = -1;
        if (::close(fd) != 0) fail("error while closing");
        if (in_place_) return;
        if (::rename(temp_.c_str(), target_.c_str()) != 0) fail("cannot rename the finished file onto");
        temp_.clear();
    }

private:
    [[noreturn]] void fail(const char* what) const {
        const int err = errno;
        throw IoError(concat(what, " '", target_.string(), "': ", detail::errno_text(err)));
    }

    std::filesystem::path target_;
    std::filesystem::path temp_;  ///< empty once renamed (or when writing in place)
    int fd_ = -1;
    bool in_place_ = false;
};

/// Writes `bytes` to `path` all-or-nothing (see AtomicFileWriter).
inline void write_file_atomically(const std::filesystem::path& path, std::span<const unsigned char> bytes) {
    AtomicFileWriter w(path);
    w.write(bytes);
    w.commit();
}
inline void write_file_atomically(const std::filesystem::path& path, std::string_view text) {
    AtomicFileWriter w(path);
    w.write(text);
    w.commit();
}

}  // namespace ganinv
