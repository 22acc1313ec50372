/// @file json.hpp
/// @brief A small JSON value with a strict parser and a writer: enough for safetensors headers
///        and model configs without another dependency. Object keys keep their file order.
#pragma once

#include "ganinv/core/error.hpp"

#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace ganinv {

class Json {
public:
    using Array = std::vector<Json>;
    using Object = std::vector<std::pair<std::string, Json>>;

    Json() = default;  // null
    Json(std::nullptr_t) {}
    Json(bool b) : value_(b) {}
    Json(double d) : value_(d) {}
    Json(int i) : value_(static_cast<double>(i)) {}
    Json(std::int64_t i) : value_(static_cast<double>(i)) {}
    Json(std::string s) : value_(std::move(s)) {}
    Json(const char* s) : value_(std::string(s)) {}
    Json(Array a) : value_(std::move(a)) {}
    Json(Object o) : value_(std::move(o)) {}

    bool is_null() const { return std::holds_alternative<std::monostate>(value_); }
    bool is_bool() const { return std::holds_alternative<bool>(value_); }
    bool is_number() const { return std::holds_alternative<double>(value_); }
    bool is_string() const { return std::holds_alternative<std::string>(value_); }
    bool is_array() const { return std::holds_alternative<Array>(value_); }
    bool is_object() const { return std::holds_alternative<Object>(value_); }

    bool as_bool() const { return get<bool>("a boolean"); }
    double as_number() const { return get<double>("a number"); }
    const std::string& as_string() const { return get<std::string>("a string"); }
    const Array& as_array() const { return get<Array>("an array"); }
    const Object& as_object() const { return get<Object>("an object"); }
    Object& as_object() { return const_cast<Object&>(std::as_const(*this).as_object()); }

    /// An integer-valued number; throws if the value has a fraction or is out of range.
    std::int64_t as_int() const {
        const double d = as_number();
        GANINV_CHECK(std::floor(d) == d && std::fabs(d) < 9.0e15, FormatError, "JSON: expected an integer, got ", d);
        return static_cast<std::int64_t>(d);
    }

    const Json* find(std::string_view key) const {
        if (!is_object()) return nullptr;
        for (const auto& [k, v] : as_object())
            if (k == key) return &v;
        return nullptr;
    }
    bool contains(std::string_view key) const { return find(key) != nullptr; }
    const Json& at(std::string_view key) const {
        const Json* v = find(key);
        GANINV_CHECK(v != nullptr, FormatError, "JSON: missing key '", std::string(key), "'");
        return *v;
    }
    void set(std::string key, Json v) {
        if (is_null()) value_ = Object{};
        for (auto& [k, old] : as_object())
            if (k == key) {
                old = std::move(v);
                return;
            }
        as_object().emplace_back(std::move(key), std::move(v));
    }

    static Json parse(std::string_view text);
    std::string dump() const {
        std::string out;
        write(out);
        return out;
    }

private:
    template <class T>
    const T& get(const char* what) const {
        const T* p = std::get_if<T>(&value_);
        GANINV_CHECK(p != nullptr, FormatError, "JSON: expected ", what);
        return *p;
    }

    void write(std::string& out) const {
        if (is_null()) {
            out += "null";
        } else if (is_bool()) {
            out += as_bool() ? "true" : "false";
        } else if (is_number()) {
            const double d = as_number();
            GANINV_CHECK(std::isfinite(d), ValueError, "JSON cannot hold a non-finite number");
            char buf[40];
            if (std::floor(d) == d && std::fabs(d) < 9.0e15)
                std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(d));
            else
                std::snprintf(buf, sizeof buf, "%.17g", d);
            out += buf;
        } else if (is_string()) {
            write_string(out, as_string());
        } else if (is_array()) {
            out += '[';
            bool first = true;
            for (const Json& v : as_array()) {
                if (!first) out += ", ";
                first = false;
                v.write(out);
            }
            out += ']';
        } else {
            out += '{';
            bool first = true;
            for (const auto& [k, v] : as_object()) {
                if (!first) out += ", ";
                first = false;
                write_string(out, k);
                out += ": ";
                v.write(out);
            }
            out += '}';
        }
    }

    static void write_string(std::string& out, const std::string& s) {
        out += '"';
        for (unsigned char c : s) {
            switch (c) {
                case '"': out += "\\\""; break;
                case '\\': out += "\\\\"; break;
                case '\n': out += "\\n"; break;
                case '\r': out += "\\r"; break;
                case '\t': out += "\\t"; break;
                default:
                    if (c < 0x20) {
                        char buf[8];
                        std::snprintf(buf, sizeof buf, "\\u%04x", c);
                        out += buf;
                    } else {
                        out += static_cast<char>(c);
                    }
            }
        }
        out += '"';
    }

    std::variant<std::monostate, bool, double, std::string, Array, Object> value_;
};

namespace detail {

class JsonParser {
public:
    explicit JsonParser(std::string_view text) : s_(text) {}

    Json parse_document() {
        Json v = parse_value(0);
        skip_ws();
        if (pos_ != s_.size()) fail("trailing characters after the JSON value");
        return v;
    }

private:
    [[noreturn]] void fail(const std::string& why) const {
        throw FormatError(concat("JSON parse error at offset ", pos_, ": ", why));
    }
    void skip_ws() {
        while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\r' || s_[pos_] == '\t'))
            ++pos_;
    }
    char peek() {
        skip_ws();
        if (pos_ >= s_.size()) fail("unexpected end of input");
        return s_[pos_];
    }
    void expect(char c) {
        if (peek() != c) fail(concat("expected '", c, "'"));
        ++pos_;
    }
    bool consume_word(std::string_view w) {
        if (s_.substr(pos_, w.size()) == w) {
            pos_ += w.size();
            return true;
        }
        return false;
    }

    Json parse_value(int depth) {
        if (depth > 64) fail("nesting too deep");
        const char c = peek();
        if (c == '{') return parse_object(depth);
        if (c == '[') return parse_array(depth);
        if (c == '"') return Json(parse_string());
        if (consume_word("null")) return Json();
        if (consume_word("true")) return Json(true);
        if (consume_word("false")) return Json(false);
        if (consume_word("NaN") || consume_word("Infinity") || consume_word("-Infinity"))
            fail("non-finite numbers are not JSON");
        return Json(parse_number());
    }

    Json parse_object(int depth) {
        expect('{');
        Json::Object obj;
        if (peek() == '}') {
            ++pos_;
            return Json(std::move(obj));
        }
        for (;;) {
            if (peek() != '"') fail("expected a string key");
            std::string key = parse_string();
            expect(':');
            obj.emplace_back(std::move(key), parse_value(depth + 1));
            const char c = peek();
            ++pos_;
            if (c == '}') break;
            if (c != ',') fail("expected ',' or '}' in object");
        }
        return Json(std::move(obj));
    }

    Json parse_array(int depth) {
        expect('[');
        Json::Array arr;
        if (peek() == ']') {
            ++pos_;
            return Json(std::move(arr));
        }
        for (;;) {
            arr.push_back(parse_value(depth + 1));
            const char c = peek();
            ++pos_;
            if (c == ']') break;
            if (c != ',') fail("expected ',' or ']' in array");
        }
        return Json(std::move(arr));
    }

    double parse_number() {
        const std::size_t start = pos_;
        if (pos_ < s_.size() && (s_[pos_] == '-' || s_[pos_] == '+')) ++pos_;
        while (pos_ < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '.' ||
                                    s_[pos_] == 'e' || s_[pos_] == 'E' || s_[pos_] == '-' || s_[pos_] == '+'))
            ++pos_;
        if (start == pos_) fail("unexpected character");
        const std::string tok(s_.substr(start, pos_ - start));
        char* end = nullptr;
        const double d = std::strtod(tok.c_str(), &end);
        if (end != tok.c_str() + tok.size()) fail(concat("malformed number '", tok, "'"));
        // strtod turns 1e999 into inf; JSON has no infinities, so a number beyond double is an
        // error, like "Infinity" above. (Underflow towards 0, e.g. 1e-999, is a fine value.)
        if (!std::isfinite(d)) fail(concat("number '", tok, "' is out of range"));
        return d;
    }

    static void append_utf8(std::string& out, std::uint32_t cp) {
        if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (cp >> 18));
            out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }

    std::uint32_t parse_hex4() {
        if (pos_ + 4 > s_.size()) fail("truncated \\u escape");
        std::uint32_t v = 0;
        for (int i = 0; i < 4; ++i) {
            const char h = s_[pos_++];
            v <<= 4;
            if (h >= '0' && h <= '9') v |= static_cast<std::uint32_t>(h - '0');
            else if (h >= 'a' && h <= 'f') v |= static_cast<std::uint32_t>(h - 'a' + 10);
            else if (h >= 'A' && h <= 'F') v |= static_cast<std::uint32_t>(h - 'A' + 10);
            else fail("bad hex digit in \\u escape");
        }
        return v;
    }

    std::string parse_string() {
        expect('"');
        std::string out;
        for (;;) {
            if (pos_ >= s_.size()) fail("unterminated string");
            const char c = s_[pos_++];
            if (c == '"') break;
            if (static_cast<unsigned char>(c) < 0x20) fail("control character in string");
            if (c != '\\') {
                out += c;
                continue;
            }
            if (pos_ >= s_.size()) fail("unterminated escape");
            const char e = s_[pos_++];
            switch (e) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    std::uint32_t cp = parse_hex4();
                    if (cp >= 0xD800 && cp < 0xDC00 && s_.substr(pos_, 2) == "\\u") {
                        pos_ += 2;
                        const std::uint32_t lo = parse_hex4();
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    }
                    append_utf8(out, cp);
                    break;
                }
                default: fail("unknown escape");
            }
        }
        return out;
    }

    std::string_view s_;
    std::size_t pos_ = 0;
};

}  // namespace detail

inline Json Json::parse(std::string_view text) { return detail::JsonParser(text).parse_document(); }

}  // namespace ganinv
