// The ganinv command-line tool: dispatches to the registered subcommands.
#include "cli.hpp"

#include <ganinv/core/eigen.hpp>

#include <cstdio>
#include <iostream>

namespace ganinv::cli {

namespace {
std::map<std::string, Command>& registry() {
    static std::map<std::string, Command> r;
    return r;
}
}  // namespace

bool register_command(Command c) {
    registry()[c.name] = std::move(c);
    return true;
}
const std::map<std::string, Command>& commands() { return registry(); }

std::string help_text(const Command& cmd) {
    std::string s = "usage: ganinv " + cmd.name + " " + cmd.usage + "\n\n" + cmd.summary + "\n\noptions:\n";
    for (const auto& o : cmd.options) {
        std::string left = "  --" + o.name + (o.value_name.empty() ? "" : " " + o.value_name) + (o.multi ? " ..." : "");
        if (left.size() < 34) left.resize(34, ' ');
        else left += "\n" + std::string(34, ' ');
        s += left + o.help + "\n";
    }
    s += "  --help                          show this help\n";
    return s;
}

Args parse_args(const Command& cmd, int argc, char** argv, int first) {
    Args a;
    for (int i = first; i < argc; ++i) {
        std::string tok = argv[i];
        if (tok.rfind("--", 0) != 0 || tok.size() == 2) {
            a.positionals_.push_back(tok);
            continue;
        }
        std::string name = tok.substr(2), value;
        bool inline_value = false;
        if (const auto eq = name.find('='); eq != std::string::npos) {
            value = name.substr(eq + 1);
            name = name.substr(0, eq);
            inline_value = true;
        }
        const OptionSpec* spec = nullptr;
        for (const auto& o : cmd.options)
            if (o.name == name) spec = &o;
        if (!spec) throw UsageError("unknown option --" + name + " for 'ganinv " + cmd.name + "'");
        auto& slot = a.values_[name];
        if (spec->value_name.empty()) {
            if (inline_value) throw UsageError("--" + name + " takes no value");
            slot.push_back("1");
            continue;
        }
        if (inline_value) {
            slot.push_back(value);
            continue;
        }
        if (i + 1 >= argc || (std::string(argv[i + 1]).rfind("--", 0) == 0 && std::string(argv[i + 1]).size() > 2 &&
                              !std::isdigit(static_cast<unsigned char>(argv[i + 1][2]))))
            throw UsageError("--" + name + " needs a value (" + spec->value_name + ")");
        slot.push_back(argv[++i]);
        while (spec->multi && i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) slot.push_back(argv[++i]);
    }
    return a;
}

}  // namespace ganinv::cli

#ifndef GANINV_VERSION
#error "GANINV_VERSION is set by examples/CMakeLists.txt from the CMake project version"
#endif

namespace {

#if GANINV_CLI_HAS_CUDA
constexpr bool kCudaBuilt = true;
#else
constexpr bool kCudaBuilt = false;
#endif

void print_overview(std::FILE* out) {
    std::fprintf(out, "ganinv: GAN inversion with StyleGAN2 generators\n\nusage: ganinv COMMAND [options]\n\ncommands:\n");
    for (const auto& [name, c] : ganinv::cli::commands()) std::fprintf(out, "  %-12s %s\n", name.c_str(), c.summary.c_str());
    std::fprintf(out, "\nRun 'ganinv COMMAND --help' for the options of a command, 'ganinv --version' for the version.\n");
}

}  // namespace

int main(int argc, char** argv) {
    using namespace ganinv::cli;
    process_start();  // the clock of the dataset jobs' "startup" time
    // A tool built with the CUDA sources compiled for another SIMD level than the C++ ones would
    // free Eigen memory wrongly somewhere later (ganinv/core/eigen.hpp): refuse to start instead.
    if (const std::string mismatch = ganinv::eigen_abi_mismatch(); !mismatch.empty()) {
        std::fprintf(stderr, "ganinv: this build is broken: %s\n", mismatch.c_str());
        return 70;
    }
    if (argc < 2) {
        print_overview(stderr);
        return 2;
    }
    const std::string name = argv[1];
    if (name == "--help" || name == "-h" || name == "help") {
        print_overview(stdout);
        return 0;
    }
    if (name == "--version") {
        std::printf("ganinv %s (--device cuda: %s)\n", GANINV_VERSION, kCudaBuilt ? "built in" : "not built");
        return 0;
    }
    const auto it = commands().find(name);
    if (it == commands().end()) {
        std::fprintf(stderr, "ganinv: unknown command '%s'\n\n", name.c_str());
        print_overview(stderr);
        return 2;
    }
    const Command& cmd = it->second;
    for (int i = 2; i < argc; ++i)
        if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
            std::cout << help_text(cmd);
            return 0;
        }
    try {
        return cmd.run(parse_args(cmd, argc, argv, 2));
    } catch (const UsageError& e) {
        std::cerr << "ganinv " << cmd.name << ": " << e.what() << "\n\n" << help_text(cmd);
        return 2;
    } catch (const ganinv::Error& e) {
        std::cerr << "ganinv " << cmd.name << ": error: " << e.what() << "\n";
        return 1;
    } catch (const std::exception& e) {
        std::cerr << "ganinv " << cmd.name << ": unexpected error: " << e.what() << "\n";
        return 1;
    }
}
