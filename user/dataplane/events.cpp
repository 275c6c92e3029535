#include "dataplane/events.hpp"

#include <bpf/libbpf.h>
#include <fmt/format.h>

#include <cerrno>
#include <cstring>

namespace xpmip::dataplane {

EventReader::EventReader(const MapSet& maps, Handler handler) : handler_(std::move(handler)) {
    rb_ = ring_buffer__new(maps.fd(MapId::Events), &EventReader::on_event, this, nullptr);
    if (!rb_) {
        throw DataplaneError(fmt::format("events ring buffer: {}", std::strerror(errno)));
    }
}

EventReader::~EventReader() { ring_buffer__free(rb_); }

int EventReader::fd() const { return ring_buffer__epoll_fd(rb_); }

int EventReader::poll(int timeout_ms) { return ring_buffer__poll(rb_, timeout_ms); }

int EventReader::consume() { return ring_buffer__consume(rb_); }

int EventReader::on_event(void* self, void* data, std::size_t size) {
    if (size < sizeof(xpmip_event)) {
        return 0;
    }
    xpmip_event e;
    std::memcpy(&e, data, sizeof e);
    static_cast<EventReader*>(self)->handler_(e);
    return 0;
}

} // namespace xpmip::dataplane
