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

BindingCacheEntry& BindingCache::insert(BindingCacheEntry e) {
    std::string key = e.mn_id;
    return entries_.insert_or_assign(std::move(key), std::move(e)).first->second;
}

void BindingCache::erase(const std::string& mn_id) {
    entries_.erase(mn_id);
}

} // namespace xpmip::lma
