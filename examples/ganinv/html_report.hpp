/// @file html_report.hpp
/// @brief The static HTML pages the ganinv tool writes (invert --report, edit --report): one
///        stylesheet, escaping, number formatting and images embedded as data URIs, so every
///        report opens offline and looks the same.
#pragma once

#include <ganinv/io/image.hpp>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <iomanip>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

namespace ganinv::cli::html {

inline std::string escape(const std::string& s) {
    std::string o;
    o.reserve(s.size());
    for (char c : s) {
        if (c == '<') o += "&lt;";
        else if (c == '>') o += "&gt;";
        else if (c == '&') o += "&amp;";
        else if (c == '"') o += "&quot;";
        else o += c;
    }
    return o;
}

/// Fixed-point text; non-finite values print as "inf"/"n/a" (identical images have PSNR inf).
inline std::string fixed(double v, int precision) {
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    if (std::isnan(v)) return "n/a";
    std::ostringstream os;
    os << std::fixed << std::setprecision(precision) << v;
    return os.str();
}

inline std::string base64(const std::vector<unsigned char>& bytes) {
    static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    for (std::size_t i = 0; i < bytes.size(); i += 3) {
        const std::uint32_t b0 = bytes[i];
        const std::uint32_t b1 = i + 1 < bytes.size() ? bytes[i + 1] : 0;
        const std::uint32_t b2 = i + 2 < bytes.size() ? bytes[i + 2] : 0;
        const std::uint32_t v = (b0 << 16) | (b1 << 8) | b2;
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += i + 1 < bytes.size() ? kAlphabet[(v >> 6) & 63] : '=';
        out += i + 2 < bytes.size() ? kAlphabet[v & 63] : '=';
    }
    return out;
}

/// A PNG file as a data URI: the page then needs no sibling files (it can be mailed or moved).
inline std::string png_data_uri(const std::filesystem::path& png) {
    return "data:image/png;base64," + base64(detail::read_file_bytes(png, "report image"));
}

/// Opening of a report page: title, the shared stylesheet (no external CSS, fonts or scripts).
inline void begin_page(std::ostream& h, const std::string& title) {
    h << "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>" << escape(title)
      << "</title>\n<style>\n"
         "body{font-family:sans-serif;margin:2em;background:#fafafa;color:#222;max-width:1150px}\n"
         "h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.6em}h3{font-size:1em;margin:0 0 .4em}\n"
         "table{border-collapse:collapse;margin:.6em 0}\n"
         "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#eee}\n"
         "td.l,th.l{text-align:left}\n"
         ".img{display:inline-block;margin:.6em;vertical-align:top;background:#fff;padding:8px;border:1px solid #ddd}\n"
         ".img img,img.px{image-rendering:pixelated}\n"
         ".note{color:#555;font-size:.9em}\n"
         "</style></head><body>\n<h1>"
      << escape(title) << "</h1>\n";
}

inline void end_page(std::ostream& h) { h << "</body></html>\n"; }

/// A framed picture with a heading; `src` is a relative file name or a data URI, `width` 0
/// keeps the natural size.
inline void figure(std::ostream& h, const std::string& heading, const std::string& src, const std::string& alt,
                   int width = 0) {
    h << "<div class=\"img\">";
    if (!heading.empty()) h << "<h3>" << escape(heading) << "</h3>";
    h << "<img src=\"" << escape(src) << "\" alt=\"" << escape(alt) << "\"";
    if (width > 0) h << " width=\"" << width << "\"";
    h << "></div>\n";
}

/// A table whose first column is text (left-aligned) and the others numbers (right-aligned).
inline void table(std::ostream& h, const std::vector<std::string>& header,
                  const std::vector<std::vector<std::string>>& rows) {
    h << "<table><tr>";
    for (std::size_t i = 0; i < header.size(); ++i) h << (i == 0 ? "<th class=\"l\">" : "<th>") << escape(header[i]) << "</th>";
    h << "</tr>\n";
    for (const auto& r : rows) {
        h << "<tr>";
        for (std::size_t i = 0; i < r.size(); ++i) h << (i == 0 ? "<td class=\"l\">" : "<td>") << escape(r[i]) << "</td>";
        h << "</tr>\n";
    }
    h << "</table>\n";
}

}  // namespace ganinv::cli::html
