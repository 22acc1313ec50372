/// @file bench_common.hpp
/// @brief Timing, table printing and JSON output shared by the benchmarks.
#pragma once

#include <ganinv/core/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace ganinv::bench {

/// Median wall time in milliseconds of `reps` runs after `warmup` runs.
inline double median_ms(const std::function<void()>& fn, int reps, int warmup = 1) {
    for (int i = 0; i < warmup; ++i) fn();
    std::vector<double> t;
    for (int i = 0; i < reps; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        fn();
        t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

/// "256,1024" -> {"256", "1024"} (the benchmarks' list options; empty items dropped).
inline std::vector<std::string> split_list(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    for (std::string x; std::getline(ss, x, ',');)
        if (!x.empty()) out.push_back(x);
    return out;
}

struct Row {
    std::vector<std::string> cells;
    Json json;
};

inline void print_table(const std::vector<std::string>& header, const std::vector<Row>& rows) {
    std::vector<std::size_t> w(header.size());
    for (std::size_t c = 0; c < header.size(); ++c) {
        w[c] = header[c].size();
        for (const auto& r : rows) w[c] = std::max(w[c], r.cells[c].size());
    }
    auto line = [&](const std::vector<std::string>& cells) {
        std::string s = "|";
        for (std::size_t c = 0; c < cells.size(); ++c) s += " " + cells[c] + std::string(w[c] - cells[c].size(), ' ') + " |";
        std::puts(s.c_str());
    };
    line(header);
    std::string sep = "|";
    for (std::size_t c = 0; c < header.size(); ++c) sep += std::string(w[c] + 2, '-') + "|";
    std::puts(sep.c_str());
    for (const auto& r : rows) line(r.cells);
}

inline std::string fmt(double v, int prec = 2) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", prec, v);
    return buf;
}

inline std::string today() {
    const std::time_t t = std::time(nullptr);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d", std::gmtime(&t));
    return buf;
}

inline void write_json(const std::string& path, const std::string& benchmark, const std::vector<Row>& rows) {
    Json root{Json::Object{}};
    root.set("benchmark", benchmark);
    root.set("date", today());
    root.set("hardware_threads", static_cast<std::int64_t>(std::thread::hardware_concurrency()));
    Json::Array arr;
    for (const auto& r : rows) arr.push_back(r.json);
    root.set("rows", arr);
    std::ofstream(path) << root.dump() << "\n";
    std::printf("wrote %s\n", path.c_str());
}

}  // namespace ganinv::bench
