/// @file error.hpp
/// @brief Exception types of ganinv and the GANINV_CHECK macro. The library never exits:
///        every failure becomes an exception whose message names the file, tensor or argument.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace ganinv {

/// Base of every exception thrown by ganinv.
class Error : public std::runtime_error {
public:
    explicit Error(const std::string& what) : std::runtime_error(what) {}
};

/// A file could not be opened, read or written.
class IoError : public Error {
public:
    using Error::Error;
};

/// A file was readable but its content is malformed (corrupt safetensors, bad JSON, bad image).
class FormatError : public Error {
public:
    using Error::Error;
};

/// A tensor has the wrong shape, rank, dtype or size for the operation.
class ShapeError : public Error {
public:
    using Error::Error;
};

/// An argument has an invalid value (NaN, out of range, unsupported configuration).
class ValueError : public Error {
public:
    using Error::Error;
};

namespace detail {

inline void append_all(std::ostringstream&) {}

template <class First, class... Rest>
void append_all(std::ostringstream& os, First&& first, Rest&&... rest) {
    os << std::forward<First>(first);
    append_all(os, std::forward<Rest>(rest)...);
}

}  // namespace detail

/// Concatenates its arguments with operator<< into one string (for error messages).
template <class... Args>
std::string concat(Args&&... args) {
    std::ostringstream os;
    detail::append_all(os, std::forward<Args>(args)...);
    return os.str();
}

}  // namespace ganinv

/// Throws `ErrorType` with the streamed message when `cond` is false.
#define GANINV_CHECK(cond, ErrorType, ...)                              \
    do {                                                                \
        if (!(cond)) throw ErrorType(::ganinv::concat(__VA_ARGS__));   \
    } while (0)
