/// @file loss_spec.hpp
/// @brief The --loss option ("mse,lpips:0.5"), parsed once into named, weighted terms that each
///        backend then builds into its own WeightedLossSum.
#pragma once

#include "cli.hpp"

#include <stdexcept>
#include <string>
#include <vector>

namespace ganinv::cli {

struct LossTermSpec {
    std::string name;  ///< mse, l1, charbonnier, lpips, vgg
    double weight = 1.0;
};

/// "mse,lpips:0.5" -> {{"mse", 1}, {"lpips", 0.5}}; unknown names and bad weights are UsageErrors.
inline std::vector<LossTermSpec> parse_loss_terms(const std::string& spec) {
    std::vector<LossTermSpec> terms;
    std::size_t start = 0;
    while (start <= spec.size()) {
        const std::size_t comma = spec.find(',', start);
        const std::string item = spec.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        start = comma == std::string::npos ? spec.size() + 1 : comma + 1;
        if (item.empty()) throw UsageError("--loss: empty term in '" + spec + "'");
        const auto colon = item.find(':');
        LossTermSpec t{item.substr(0, colon), 1.0};
        if (colon != std::string::npos) {
            try {
                std::size_t used = 0;
                t.weight = std::stod(item.substr(colon + 1), &used);
                if (used != item.size() - colon - 1) throw std::invalid_argument("trailing");
            } catch (const std::exception&) {
                throw UsageError("--loss: bad weight in '" + item + "'");
            }
        }
        if (t.name != "mse" && t.name != "l1" && t.name != "charbonnier" && t.name != "lpips" && t.name != "vgg")
            throw UsageError("--loss: unknown term '" + t.name + "' (mse, l1, charbonnier, lpips, vgg)");
        terms.push_back(std::move(t));
    }
    return terms;
}

}  // namespace ganinv::cli
