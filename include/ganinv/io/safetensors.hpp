/// @file safetensors.hpp
/// @brief safetensors reading (F32/F16/BF16/F64 and integer tensors -> float, streamed: only the header is read at
///        open, each tensor on demand) and writing (F32). Every structural problem of a file is
///        reported with the file's path and the tensor's name.
#pragma once

#include "ganinv/core/error.hpp"
#include "ganinv/core/half.hpp"
#include "ganinv/core/json.hpp"
#include "ganinv/core/tensor.hpp"
#include "ganinv/io/file_write.hpp"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace ganinv {

struct SafetensorsEntry {
    std::string name;
    std::string dtype;
    Shape shape;
    std::uint64_t begin = 0;  ///< byte offsets relative to the start of the data section
    std::uint64_t end = 0;
};

namespace detail {

/// Bytes per element of the dtypes the format defines; 0 for a name the format does not know.
inline std::size_t safetensors_dtype_size(const std::string& dtype) {
    static const std::map<std::string, std::size_t> sizes = {
        {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2},
        {"I8", 1},  {"U64", 8}, {"U32", 4}, {"U16", 2},  {"U8", 1},  {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1}};
    const auto it = sizes.find(dtype);
    return it == sizes.end() ? 0 : it->second;
}

inline std::uint64_t read_le_u64(const unsigned char* p) {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}

}  // namespace detail

/// A safetensors file opened for reading. The header is parsed and validated in the constructor.
class SafetensorsFile {
public:
    explicit SafetensorsFile(std::filesystem::path path) : path_(std::move(path)) {
        std::ifstream in(path_, std::ios::binary);
        GANINV_CHECK(in.good(), IoError, "cannot open safetensors file '", path_.string(), "'");
        std::error_code ec;
        const auto file_size = std::filesystem::file_size(path_, ec);
        GANINV_CHECK(!ec, IoError, "cannot stat '", path_.string(), "': ", ec.message());
        GANINV_CHECK(file_size >= 8, FormatError, "'", path_.string(), "' is truncated: ", file_size,
                     " bytes, shorter than the 8-byte header length");
        unsigned char lenbuf[8];
        in.read(reinterpret_cast<char*>(lenbuf), 8);
        const std::uint64_t header_len = detail::read_le_u64(lenbuf);
        GANINV_CHECK(header_len <= file_size - 8, FormatError, "'", path_.string(), "': header length ", header_len,
                     " runs past the end of the file (", file_size, " bytes)");
        GANINV_CHECK(header_len <= (std::uint64_t{100} << 20), FormatError, "'", path_.string(),
                     "': header length ", header_len, " exceeds the 100 MB limit");
        std::string header(static_cast<std::size_t>(header_len), '\0');
        in.read(header.data(), static_cast<std::streamsize>(header_len));
        GANINV_CHECK(in.good(), IoError, "'", path_.string(), "': could not read the header");
        data_start_ = 8 + header_len;
        data_size_ = file_size - data_start_;
        parse_header(header);
    }

    const std::filesystem::path& path() const { return path_; }
    const std::vector<SafetensorsEntry>& entries() const { return entries_; }
    bool contains(const std::string& name) const { return index_.count(name) != 0; }

    std::vector<std::string> names() const {
        std::vector<std::string> out;
        for (const auto& e : entries_) out.push_back(e.name);
        return out;
    }

    const SafetensorsEntry& entry(const std::string& name) const {
        const auto it = index_.find(name);
        if (it == index_.end()) {
            std::string some;
            for (std::size_t i = 0; i < entries_.size() && i < 6; ++i) some += (i ? ", " : "") + entries_[i].name;
            if (entries_.size() > 6) some += ", ...";
            throw FormatError(concat("'", path_.string(), "' has no tensor '", name, "' (it holds ", entries_.size(),
                                     " tensors: ", some, ")"));
        }
        return entries_[it->second];
    }

    const std::map<std::string, std::string>& metadata() const { return metadata_; }
    std::optional<std::string> metadata(const std::string& key) const {
        const auto it = metadata_.find(key);
        if (it == metadata_.end()) return std::nullopt;
        return it->second;
    }

    /// Loads a tensor converted to float32.
    Tensor<float> load(const std::string& name) const {
        const SafetensorsEntry& e = entry(name);
        Tensor<float> t(e.shape);
        read_into(e, t.values());
        return t;
    }

    /// Loads a tensor and checks that it has the expected shape.
    Tensor<float> load(const std::string& name, const Shape& expected) const {
        const SafetensorsEntry& e = entry(name);
        GANINV_CHECK(e.shape == expected, ShapeError, "'", path_.string(), "': tensor '", name, "' has shape ",
                     shape_to_string(e.shape), ", expected ", shape_to_string(expected));
        return load(name);
    }

    /// Reads a tensor into caller memory of exactly its element count.
    void load_into(const std::string& name, std::span<float> out) const { read_into(entry(name), out); }
    /// An F64 tensor without rounding to float (optimiser moments in checkpoints).
    std::vector<double> load_f64(const std::string& name) const {
        const SafetensorsEntry& e = entry(name);
        GANINV_CHECK(e.dtype == "F64", FormatError, "'", path_.string(), "': tensor '", name, "' is ", e.dtype,
                     ", expected F64");
        std::vector<unsigned char> bytes(static_cast<std::size_t>(e.end - e.begin));
        std::ifstream in(path_, std::ios::binary);
        in.seekg(static_cast<std::streamoff>(data_start_ + e.begin));
        in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
        GANINV_CHECK(in.good() || bytes.empty(), IoError, "'", path_.string(), "': short read of tensor '", name, "'");
        std::vector<double> out(bytes.size() / 8);
        for (std::size_t i = 0; i < out.size(); ++i) {
            std::uint64_t u = 0;
            for (int b = 7; b >= 0; --b) u = (u << 8) | bytes[8 * i + static_cast<std::size_t>(b)];
            out[i] = std::bit_cast<double>(u);
        }
        return out;
    }

private:
    void parse_header(const std::string& header) {
        Json root;
        try {
            root = Json::parse(header);
        } catch (const FormatError& e) {
            throw FormatError(concat("'", path_.string(), "': header is not valid JSON (", e.what(), ")"));
        }
        GANINV_CHECK(root.is_object(), FormatError, "'", path_.string(), "': header is not a JSON object");
        for (const auto& [name, value] : root.as_object()) {
            if (name == "__metadata__") {
                GANINV_CHECK(value.is_object(), FormatError, "'", path_.string(), "': __metadata__ is not an object");
                for (const auto& [k, v] : value.as_object()) {
                    GANINV_CHECK(v.is_string(), FormatError, "'", path_.string(), "': metadata '", k,
                                 "' is not a string");
                    metadata_[k] = v.as_string();
                }
                continue;
            }
            entries_.push_back(parse_entry(name, value));
            GANINV_CHECK(index_.emplace(name, entries_.size() - 1).second, FormatError, "'", path_.string(),
                         "': tensor '", name, "' appears twice");
        }
        // Every pair of non-empty ranges must be disjoint: sorted by start, each range must begin
        // at or after the furthest end seen so far (comparing neighbours only would miss
        // [0, 8) [4, 4) [4, 12), or a long range covering several short ones).
        std::vector<const SafetensorsEntry*> by_offset;
        for (const auto& e : entries_)
            if (e.begin != e.end) by_offset.push_back(&e);
        std::sort(by_offset.begin(), by_offset.end(),
                  [](const auto* a, const auto* b) { return a->begin < b->begin; });
        const SafetensorsEntry* furthest = nullptr;
        for (const auto* cur : by_offset) {
            GANINV_CHECK(!furthest || cur->begin >= furthest->end, FormatError, "'", path_.string(), "': tensors '",
                         furthest->name, "' and '", cur->name, "' overlap in the data section");
            if (!furthest || cur->end > furthest->end) furthest = cur;
        }
    }

    SafetensorsEntry parse_entry(const std::string& name, const Json& value) const {
        const std::string where = concat("'", path_.string(), "': tensor '", name, "'");
        GANINV_CHECK(value.is_object(), FormatError, where, " is not described by an object");
        SafetensorsEntry e;
        e.name = name;
        try {
            e.dtype = value.at("dtype").as_string();
            for (const Json& d : value.at("shape").as_array()) {
                GANINV_CHECK(d.as_int() >= 0, FormatError, where, " has a negative dimension");
                e.shape.push_back(d.as_int());
            }
            const auto& off = value.at("data_offsets").as_array();
            GANINV_CHECK(off.size() == 2, FormatError, where, ": data_offsets must hold two numbers");
            GANINV_CHECK(off[0].as_int() >= 0 && off[1].as_int() >= 0, FormatError, where, ": negative data offset");
            e.begin = static_cast<std::uint64_t>(off[0].as_int());
            e.end = static_cast<std::uint64_t>(off[1].as_int());
        } catch (const FormatError& err) {
            throw FormatError(concat(where, ": malformed entry (", err.what(), ")"));
        }
        const std::size_t esize = detail::safetensors_dtype_size(e.dtype);
        GANINV_CHECK(esize != 0, FormatError, where, " has unknown dtype '", e.dtype, "'");
        GANINV_CHECK(e.begin <= e.end && e.end <= data_size_, FormatError, where, ": data offsets [", e.begin, ", ",
                     e.end, ") are out of range (data section holds ", data_size_, " bytes)");
        // Checked products: a shape like [2^52, 1024] must not wrap around to match the offsets.
        std::uint64_t expected_bytes = esize;
        for (const Index d : e.shape)
            GANINV_CHECK(checked_mul(expected_bytes, static_cast<std::uint64_t>(d), expected_bytes), FormatError, where,
                         ": shape ", shape_to_string(e.shape), " of ", e.dtype, " needs more than 2^64 bytes");
        GANINV_CHECK(e.end - e.begin == expected_bytes, FormatError, where, ": shape ", shape_to_string(e.shape),
                     " of ", e.dtype, " needs ", expected_bytes, " bytes but the offsets span ", e.end - e.begin);
        return e;
    }

    void read_into(const SafetensorsEntry& e, std::span<float> out) const {
        const std::size_t n = static_cast<std::size_t>(shape_numel(e.shape));
        GANINV_CHECK(out.size() == n, ShapeError, "'", path_.string(), "': tensor '", e.name, "' has ", n,
                     " elements, destination holds ", out.size());
        GANINV_CHECK(e.dtype != "BOOL" && !e.dtype.starts_with("F8") && e.dtype != "U64", FormatError, "'",
                     path_.string(), "': tensor '", e.name, "' has dtype ", e.dtype,
                     ", which cannot be read as float (F32, F16, BF16, F64 and the integer types up to 32 bits, plus I64, can)");
        std::vector<unsigned char> bytes(static_cast<std::size_t>(e.end - e.begin));
        std::ifstream in(path_, std::ios::binary);
        GANINV_CHECK(in.good(), IoError, "cannot reopen '", path_.string(), "'");
        in.seekg(static_cast<std::streamoff>(data_start_ + e.begin));
        in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
        GANINV_CHECK(in.good() || bytes.empty(), IoError, "'", path_.string(), "': short read of tensor '", e.name,
                     "'");
        const unsigned char* p = bytes.data();
        // Explicit little-endian decoding keeps the reader correct on any host byte order.
        const std::size_t esize = detail::safetensors_dtype_size(e.dtype);
        for (std::size_t i = 0; i < n; ++i) {
            const unsigned char* q = p + esize * i;
            std::uint64_t u = 0;
            for (std::size_t b = esize; b-- > 0;) u = (u << 8) | q[b];
            const auto sign_extend = [&](int bits) {
                const std::uint64_t m = std::uint64_t{1} << (bits - 1);
                return static_cast<std::int64_t>((u ^ m) - m);
            };
            if (e.dtype == "F32") out[i] = std::bit_cast<float>(static_cast<std::uint32_t>(u));
            else if (e.dtype == "F64") out[i] = static_cast<float>(std::bit_cast<double>(u));
            else if (e.dtype == "F16") out[i] = half_bits_to_float(static_cast<std::uint16_t>(u));
            else if (e.dtype == "BF16") out[i] = bfloat16_bits_to_float(static_cast<std::uint16_t>(u));
            else if (e.dtype[0] == 'U') out[i] = static_cast<float>(u);  // U8/U16/U32 (quantised weights)
            else out[i] = static_cast<float>(sign_extend(static_cast<int>(esize * 8)));  // I8..I64
        }
    }

    std::filesystem::path path_;
    std::uint64_t data_start_ = 0;
    std::uint64_t data_size_ = 0;
    std::vector<SafetensorsEntry> entries_;
    std::map<std::string, std::size_t> index_;
    std::map<std::string, std::string> metadata_;
};

/// Collects float32 tensors and metadata, then writes one safetensors file.
class SafetensorsWriter {
public:
    void add(const std::string& name, const Shape& shape, std::span<const float> values) {
        GANINV_CHECK(!name.empty() && name != "__metadata__", ValueError, "invalid tensor name '", name, "'");
        GANINV_CHECK(static_cast<Index>(values.size()) == shape_numel(shape), ShapeError, "tensor '", name,
                     "': shape ", shape_to_string(shape), " does not match ", values.size(), " values");
        for (const auto& t : tensors_)
            GANINV_CHECK(t.name != name, ValueError, "tensor '", name, "' added twice");
        tensors_.push_back({name, shape, std::vector<float>(values.begin(), values.end()), {}});
    }
    /// An F64 tensor (kept exactly; read back with SafetensorsFile::load_f64).
    void add_f64(const std::string& name, const Shape& shape, std::span<const double> values) {
        add(name, shape, std::vector<float>(values.size()));  // the name and shape checks
        tensors_.back().values.clear();
        tensors_.back().f64.assign(values.begin(), values.end());
        tensors_.back().is_f64 = true;
    }
    void add(const std::string& name, const Tensor<float>& t) { add(name, t.shape(), t.values()); }
    void set_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }

    void write(const std::filesystem::path& path) const {
        Json header;
        if (!metadata_.empty()) {
            Json meta{Json::Object{}};
            for (const auto& [k, v] : metadata_) meta.set(k, v);
            header.set("__metadata__", meta);
        }
        std::uint64_t offset = 0;
        for (const auto& t : tensors_) {
            Json::Array shape;
            for (Index d : t.shape) shape.emplace_back(static_cast<std::int64_t>(d));
            const std::uint64_t bytes = t.is_f64 ? t.f64.size() * 8 : t.values.size() * 4;
            Json desc{Json::Object{}};
            desc.set("dtype", t.is_f64 ? "F64" : "F32");
            desc.set("shape", shape);
            desc.set("data_offsets", Json::Array{Json(static_cast<std::int64_t>(offset)),
                                                 Json(static_cast<std::int64_t>(offset + bytes))});
            header.set(t.name, desc);
            offset += bytes;
        }
        if (header.is_null()) header = Json{Json::Object{}};
        std::string text = header.dump();
        while (text.size() % 8 != 0) text += ' ';  // keeps the data section 8-byte aligned
        AtomicFileWriter out(path);
        unsigned char len[8];
        std::uint64_t n = text.size();
        for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>((n >> (8 * i)) & 0xFF);
        out.write(len, 8);
        out.write(text);
        std::vector<unsigned char> buf;
        for (const auto& t : tensors_) {
            if (t.is_f64) {
                buf.resize(t.f64.size() * 8);
                for (std::size_t i = 0; i < t.f64.size(); ++i) {
                    const auto u = std::bit_cast<std::uint64_t>(t.f64[i]);
                    for (int b = 0; b < 8; ++b) buf[8 * i + static_cast<std::size_t>(b)] = static_cast<unsigned char>((u >> (8 * b)) & 0xFF);
                }
                out.write(buf.data(), buf.size());
                continue;
            }
            buf.resize(t.values.size() * 4);
            for (std::size_t i = 0; i < t.values.size(); ++i) {
                const auto u = std::bit_cast<std::uint32_t>(t.values[i]);
                for (int b = 0; b < 4; ++b) buf[4 * i + b] = static_cast<unsigned char>((u >> (8 * b)) & 0xFF);
            }
            out.write(buf.data(), buf.size());
        }
        out.commit();
    }

private:
    struct Item {
        std::string name;
        Shape shape;
        std::vector<float> values;
        std::vector<double> f64;
        bool is_f64 = false;
    };
    std::vector<Item> tensors_;
    std::map<std::string, std::string> metadata_;
};

}  // namespace ganinv
