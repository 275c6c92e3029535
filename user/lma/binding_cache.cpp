#include "lma/binding_cache.hpp"

namespace xpmip::lma {

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
