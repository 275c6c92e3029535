#include "lma/binding_cache.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <stdexcept>

namespace xpmip::lma {

std::string mn_key(const wire::MobileNodeIdentifierOption& o) {
    if (o.subtype == wire::kMnIdSubtypeNai) {
        return o.identifier;
    }
    std::string out = fmt::format("subtype{}:", o.subtype);
    for (unsigned char c : o.identifier) {
        out += fmt::format("{:02x}", c);
    }
    return out;
}

const std::map<std::uint8_t, MultipathBinding>& bindings_of(const BindingCacheEntry& e) {
    static const std::map<std::uint8_t, MultipathBinding> none;
    return e.multipath ? e.multipath->bindings : none;
}

BindingCacheEntry* BindingCache::find(const std::string& mn_id) {
    auto it = entries_.find(mn_id);
    return it == entries_.end() ? nullptr : &it->second;
}

const BindingCacheEntry* BindingCache::find(const std::string& mn_id) const {
    auto it = entries_.find(mn_id);
    return it == entries_.end() ? nullptr : &it->second;
}

BindingCache::~BindingCache() {
    deadlines_.clear();   // unlink the hooks before the entries go
}

std::uint16_t BindingCache::peer_id(const std::string& name) {
    auto it = std::find(peer_names_.begin(), peer_names_.end(), name);
    if (it != peer_names_.end()) {
        return static_cast<std::uint16_t>(it - peer_names_.begin());
    }
    if (peer_names_.size() > std::numeric_limits<std::uint16_t>::max()) {
        throw std::length_error("binding cache: more than 65535 peer names");
    }
    peer_names_.push_back(name);
    return static_cast<std::uint16_t>(peer_names_.size() - 1);
}

control::BindingClass BindingCache::binding_class(const BindingCacheEntry& e) const {
    return {e.deregistered ? "deregistered" : "registered", std::to_string(e.realm), peer_name(e),
            std::string(dataplane::to_string(e.encap))};
}

BindingCacheEntry& BindingCache::insert(const std::string& mn_id, BindingCacheEntry e) {
    auto it = entries_.find(mn_id);
    if (it != entries_.end()) {
        // The entry in place stays linked in the deadline index (a hook does not move).
        e.counted_class = it->second.counted_class;
        e.scheduled = it->second.scheduled;
        it->second = std::move(e);
    } else {
        e.counted_class = 0;
        it = entries_.emplace(mn_id, std::move(e)).first;
    }
    it->second.key = &it->first;
    recount(it->second);
    return it->second;
}

void BindingCache::erase(const std::string& mn_id) {
    auto it = entries_.find(mn_id);
    if (it != entries_.end()) {
        classes_.move(it->second.counted_class, 0);
        if (it->second.deadline_hook.is_linked()) {
            deadlines_.erase(deadlines_.iterator_to(it->second));
        }
        entries_.erase(it);
    }
}

void BindingCache::schedule(BindingCacheEntry& e, Clock::time_point t) {
    if (e.deadline_hook.is_linked()) {
        if (e.scheduled == t) {
            return;
        }
        deadlines_.erase(deadlines_.iterator_to(e));
    }
    e.scheduled = t;
    deadlines_.insert(e);
}

std::vector<std::string> BindingCache::due(Clock::time_point now) const {
    std::vector<std::string> out;
    for (auto it = deadlines_.begin(); it != deadlines_.end() && it->scheduled <= now; ++it) {
        out.push_back(*it->key);
    }
    return out;
}

std::optional<Clock::time_point> BindingCache::earliest() const {
    return deadlines_.empty() ? std::nullopt : std::optional(deadlines_.begin()->scheduled);
}

void BindingCache::recount(BindingCacheEntry& e) {
    e.counted_class = classes_.move(e.counted_class, classes_.id_of(binding_class(e)));
}

} // namespace xpmip::lma
