#include "lma/reservation.hpp"

namespace xpmip::lma {

Reservation::~Reservation() {
    if (committed_) {
        return;
    }
    if (session_) {
        session_ids_.release_now(*session_);
    }
    if (key_) {
        uplink_keys_.release_now(*key_);
    }
    if (prefix_ && prefixes_) {
        prefixes_->release_now(*prefix_);
    }
    if (address_ && addresses_) {
        addresses_->release_now(*address_);
    }
}

std::optional<std::uint32_t> Reservation::session_id() {
    if (auto v = session_ids_.allocate(now_)) {
        session_ = static_cast<std::uint32_t>(*v);
    }
    return session_;
}

std::optional<std::uint32_t> Reservation::uplink_key() {
    if (auto v = uplink_keys_.allocate(now_)) {
        key_ = static_cast<std::uint32_t>(*v);
    }
    return key_;
}

std::optional<Ipv6Prefix> Reservation::prefix() {
    if (prefixes_) {
        prefix_ = prefixes_->allocate(now_);
    }
    return prefix_;
}

std::optional<Ipv4Address> Reservation::address() {
    if (addresses_) {
        address_ = addresses_->allocate(now_);
    }
    return address_;
}

} // namespace xpmip::lma
