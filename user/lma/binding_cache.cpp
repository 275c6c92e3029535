#include "lma/binding_cache.hpp"

#include <fmt/format.h>

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

BindingCacheEntry* BindingCache::find(const std::string& mn_id) {
    auto it = entries_.find(mn_id);
    return it == entries_.end() ? nullptr : &it->second;
}

const BindingCacheEntry* BindingCache::find(const std::string& mn_id) const {
    auto it = entries_.find(mn_id);
    return it == entries_.end() ? nullptr : &it->second;
}

control::BindingClass binding_class(const BindingCacheEntry& e) {
    return {e.deregistered ? "deregistered" : "registered", std::to_string(e.realm), e.peer,
            std::string(dataplane::to_string(e.session.encap))};
}

BindingCacheEntry& BindingCache::insert(BindingCacheEntry e) {
    auto it = entries_.find(e.mn_id);
    if (it != entries_.end()) {
        e.counted_class = it->second.counted_class;
        e.scheduled = it->second.scheduled;
        it->second = std::move(e);
    } else {
        std::string key = e.mn_id;
        e.counted_class = 0;
        e.scheduled.reset();
        it = entries_.emplace(std::move(key), std::move(e)).first;
    }
    recount(it->second);
    return it->second;
}

void BindingCache::erase(const std::string& mn_id) {
    auto it = entries_.find(mn_id);
    if (it != entries_.end()) {
        classes_.move(it->second.counted_class, 0);
        if (it->second.scheduled) {
            deadlines_.erase({*it->second.scheduled, &it->first});
        }
        entries_.erase(it);
    }
}

void BindingCache::schedule(const std::string& mn_id, Clock::time_point t) {
    auto it = entries_.find(mn_id);
    if (it == entries_.end()) {
        return;
    }
    auto& e = it->second;
    if (e.scheduled == t) {
        return;
    }
    if (e.scheduled) {
        deadlines_.erase({*e.scheduled, &it->first});
    }
    deadlines_.emplace(t, &it->first);
    e.scheduled = t;
}

std::vector<std::string> BindingCache::due(Clock::time_point now) const {
    std::vector<std::string> out;
    for (auto it = deadlines_.begin(); it != deadlines_.end() && it->first <= now; ++it) {
        out.push_back(*it->second);
    }
    return out;
}

std::optional<Clock::time_point> BindingCache::earliest() const {
    return deadlines_.empty() ? std::nullopt : std::optional(deadlines_.begin()->first);
}

void BindingCache::recount(BindingCacheEntry& e) {
    e.counted_class = classes_.move(e.counted_class, classes_.id_of(binding_class(e)));
}

} // namespace xpmip::lma
