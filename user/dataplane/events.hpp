// Reading the data plane's event ring buffer (unknown stations on access links).
#pragma once

#include "dataplane/maps.hpp"

#include <functional>
#include <memory>

struct ring_buffer;

namespace xpmip::dataplane {

class EventReader {
public:
    using Handler = std::function<void(const xpmip_event&)>;
    EventReader(const MapSet& maps, Handler handler);
    ~EventReader();
    EventReader(const EventReader&) = delete;
    EventReader& operator=(const EventReader&) = delete;

    int fd() const;                  // epoll-able
    int poll(int timeout_ms);        // handles what is there; returns the number of events
    int consume();                   // non-blocking

private:
    static int on_event(void* self, void* data, std::size_t size);
    Handler handler_;
    ring_buffer* rb_ = nullptr;
};

} // namespace xpmip::dataplane
