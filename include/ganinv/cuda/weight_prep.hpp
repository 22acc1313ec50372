/// @file weight_prep.hpp
/// @brief Prepared forms of a modulated conv's weights (squared norms for demodulation, the
///        transposed copy, phase-arranged copies, packed wgmma operands), built once and reused
///        while the weights are frozen — an inversion, whose generator does not change.
///
/// Why: every forward and backward of a layer derived these from the weights again. At 1024^2
/// that was ~0.7 ms of a 12.5 ms official-objective step on an H100 (session 20's ncu profile:
/// weight_sq_norm, arrange_weights, pack_weights, transpose_weights), for values that are the same
/// at every step. The cache is keyed by what a prepared form depends on (the weight pointer, the
/// layer's sizes, the operand, the layout) and lives only inside a `WeightPrepCache::Frozen`
/// scope: outside one (tuning, training, any code that writes weights) every call prepares its
/// forms afresh, as before; leaving the last scope drops every entry, so a later change of the
/// weights is always seen.
#pragma once

#include "ganinv/cuda/device_buffer.hpp"

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <utility>

namespace ganinv::cuda {

class WeightPrepCache {
public:
    /// What a prepared form is (kind), of which weights (pointer), and its layout parameters.
    using Key = std::array<long long, 12>;
    enum Kind : long long { squared_norms = 1, transposed, arranged_phase, packed_operand };

    /// While one lives, get() keeps what it builds; the last one to go drops every entry.
    class Frozen {
    public:
        explicit Frozen(std::shared_ptr<WeightPrepCache> c) : cache_(std::move(c)) {
            const std::lock_guard lock(cache_->mutex_);
            ++cache_->frozen_;
        }
        Frozen(const Frozen&) = delete;
        Frozen& operator=(const Frozen&) = delete;
        ~Frozen() {
            const std::lock_guard lock(cache_->mutex_);
            if (--cache_->frozen_ == 0) cache_->entries_.clear();
        }

    private:
        std::shared_ptr<WeightPrepCache> cache_;
    };

    /// The prepared form for `key`: inside a frozen scope the cached one (built by make() on the
    /// first request), outside one make()'s result stored in `local`.
    template <class Make>
    const DeviceTensor& get(const Key& key, DeviceTensor& local, Make&& make) {
        {
            const std::lock_guard lock(mutex_);
            if (frozen_ > 0) {
                auto it = entries_.find(key);
                if (it != entries_.end()) return it->second;
            } else {
                ++builds_;
                local = make();
                return local;
            }
        }
        DeviceTensor built = make();  // outside the lock: launches and allocations
        const std::lock_guard lock(mutex_);
        ++builds_;
        if (frozen_ == 0) {  // the scope ended meanwhile (another thread): keep nothing
            local = std::move(built);
            return local;
        }
        return entries_.emplace(key, std::move(built)).first->second;
    }

    bool frozen() const {
        const std::lock_guard lock(mutex_);
        return frozen_ > 0;
    }
    /// Prepared forms built so far (tests: a frozen run builds each form once).
    std::uint64_t builds() const {
        const std::lock_guard lock(mutex_);
        return builds_;
    }
    std::size_t entries() const {
        const std::lock_guard lock(mutex_);
        return entries_.size();
    }

private:
    mutable std::mutex mutex_;
    int frozen_ = 0;
    std::uint64_t builds_ = 0;
    std::map<Key, DeviceTensor> entries_;
};

/// The prepared form `key` from `cache` (kept while frozen), or, without a cache, make()'s result
/// in `local`: what every launcher that derives a form from the weights calls.
template <class Make>
const DeviceTensor& prepared_weights(WeightPrepCache* cache, const WeightPrepCache::Key& key, DeviceTensor& local,
                                     Make&& make) {
    if (!cache) {
        local = make();
        return local;
    }
    return cache->get(key, local, std::forward<Make>(make));
}

/// A cache key: kind, the weights' address, then up to ten layout integers.
template <class... Ints>
WeightPrepCache::Key weight_prep_key(WeightPrepCache::Kind kind, const float* w, Ints... params) {
    static_assert(sizeof...(Ints) <= 10, "weight_prep_key: at most ten layout parameters");
    WeightPrepCache::Key k{};
    k[0] = kind;
    k[1] = static_cast<long long>(reinterpret_cast<std::uintptr_t>(w));
    std::size_t i = 2;
    ((k[i++] = static_cast<long long>(params)), ...);
    return k;
}

}  // namespace ganinv::cuda
