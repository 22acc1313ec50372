/// @file cli.hpp
/// @brief The `ganinv` tool's command framework: each subcommand lives in its own cmd_*.cpp and
///        registers itself; options are declared once and drive parsing, validation and --help.
#pragma once

#include <ganinv/core/error.hpp>
#include <ganinv/io/image.hpp>

#include <chrono>
#include <cstdint>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ganinv::cli {

/// When the process started, for the dataset jobs' time breakdown (main() calls this first, so
/// the first call is the start; the time before main, the dynamic loader's, is not counted).
inline std::chrono::steady_clock::time_point process_start() {
    static const std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
    return start;
}

/// Wrong or missing command-line arguments: main prints the message and the usage, exits 2.
class UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct OptionSpec {
    std::string name;        ///< without the leading "--"
    std::string value_name;  ///< empty: a flag without value
    std::string help;
    bool multi = false;      ///< takes every following non-option argument (--image a.png b.png)
};

class Args {
public:
    bool has(const std::string& name) const { return values_.count(name) != 0; }
    const std::vector<std::string>& all(const std::string& name) const {
        static const std::vector<std::string> none;
        const auto it = values_.find(name);
        return it == values_.end() ? none : it->second;
    }
    std::optional<std::string> get(const std::string& name) const {
        const auto& v = all(name);
        if (v.empty()) return std::nullopt;
        return v.back();
    }
    std::string require(const std::string& name) const {
        auto v = get(name);
        if (!v) throw UsageError("missing required option --" + name);
        return *v;
    }
    double number(const std::string& name, double fallback) const;
    long long integer(const std::string& name, long long fallback) const;
    /// --max-pixels of the commands that load images (max_pixels_option()), or the library default.
    std::uint64_t max_pixels() const;
    const std::vector<std::string>& positionals() const { return positionals_; }

    std::map<std::string, std::vector<std::string>> values_;
    std::vector<std::string> positionals_;
};

struct Command {
    std::string name;
    std::string summary;
    std::string usage;  ///< synopsis line(s) after "ganinv NAME"
    std::vector<OptionSpec> options;
    std::function<int(const Args&)> run;
};

/// The option every command that decodes user images declares: the pixel limit is checked from
/// the file's header before decoding (io/image.hpp).
inline OptionSpec max_pixels_option() {
    return {"max-pixels", "N", concat("refuse input images above N pixels, checked before decoding (default ",
                                      kDefaultMaxImagePixels, " = 8192x8192)")};
}

/// Registers a subcommand (called from a static initialiser in its cmd_*.cpp).
bool register_command(Command c);
const std::map<std::string, Command>& commands();

Args parse_args(const Command& cmd, int argc, char** argv, int first);
std::string help_text(const Command& cmd);

inline double Args::number(const std::string& name, double fallback) const {
    const auto v = get(name);
    if (!v) return fallback;
    try {
        std::size_t used = 0;
        const double d = std::stod(*v, &used);
        if (used != v->size()) throw std::invalid_argument("trailing");
        return d;
    } catch (const std::exception&) {
        throw UsageError("--" + name + " expects a number, got '" + *v + "'");
    }
}

inline long long Args::integer(const std::string& name, long long fallback) const {
    const auto v = get(name);
    if (!v) return fallback;
    try {
        std::size_t used = 0;
        const long long i = std::stoll(*v, &used);
        if (used != v->size()) throw std::invalid_argument("trailing");
        return i;
    } catch (const std::exception&) {
        throw UsageError("--" + name + " expects an integer, got '" + *v + "'");
    }
}

inline std::uint64_t Args::max_pixels() const {
    const long long v = integer("max-pixels", static_cast<long long>(kDefaultMaxImagePixels));
    if (v < 1) throw UsageError("--max-pixels must be >= 1, got " + std::to_string(v));
    return static_cast<std::uint64_t>(v);
}

}  // namespace ganinv::cli
