#include "control/metrics.hpp"

#include "dataplane/stats.hpp"

#include <fmt/format.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace xpmip::control {

namespace {

std::string escape(const std::string& v) {
    std::string out;
    for (char c : v) {
        if (c == '\\' || c == '"') {
            out += '\\';
            out += c;
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

} // namespace

MetricsServer::MetricsServer(const std::string& listen) {
    auto colon = listen.rfind(':');
    if (colon == std::string::npos) {
        throw std::invalid_argument(fmt::format("metrics listen address '{}' is not address:port", listen));
    }
    std::string host = listen.substr(0, colon);
    int port = 0;
    try {
        port = std::stoi(listen.substr(colon + 1));
    } catch (const std::exception&) {
        port = -1;
    }
    if (port <= 0 || port > 65535) {
        throw std::invalid_argument(fmt::format("metrics listen address '{}': bad port", listen));
    }
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    sockaddr_storage ss{};
    socklen_t len = 0;
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
    auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
    if (host.empty() || host.find(':') != std::string::npos) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(static_cast<std::uint16_t>(port));
        if (!host.empty() && inet_pton(AF_INET6, host.c_str(), &s6->sin6_addr) != 1) {
            throw std::invalid_argument(fmt::format("metrics listen address '{}': bad IPv6 address", listen));
        }
        len = sizeof(*s6);
    } else {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(static_cast<std::uint16_t>(port));
        if (inet_pton(AF_INET, host.c_str(), &s4->sin_addr) != 1) {
            throw std::invalid_argument(fmt::format("metrics listen address '{}': bad IPv4 address", listen));
        }
        len = sizeof(*s4);
    }
    fd_.reset(socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    int one = 1;
    setsockopt(fd_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (!fd_ || bind(fd_.get(), reinterpret_cast<sockaddr*>(&ss), len) < 0 || ::listen(fd_.get(), 16) < 0) {
        throw std::runtime_error(fmt::format("metrics on {}: {}", listen, std::strerror(errno)));
    }
}

void MetricsServer::serve_one(const std::function<std::string()>& render) {
    UniqueFd c(accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!c) {
        return;
    }
    pollfd p{c.get(), POLLIN, 0};
    std::string req;
    char buf[2048];
    while (req.find("\r\n\r\n") == std::string::npos && req.find("\n\n") == std::string::npos && req.size() < 8192) {
        if (poll(&p, 1, 1000) != 1) {
            return;
        }
        ssize_t n = read(c.get(), buf, sizeof(buf));
        if (n <= 0) {
            return;
        }
        req.append(buf, static_cast<std::size_t>(n));
    }
    std::string resp;
    if (req.rfind("GET /metrics", 0) == 0) {
        std::string body = render();
        resp = fmt::format("HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n"
                           "Connection: close\r\n\r\n{}",
                           body.size(), body);
    } else {
        resp = "HTTP/1.0 404 Not Found\r\nContent-Length: 10\r\nConnection: close\r\n\r\nnot found\n";
    }
    std::size_t off = 0;
    while (off < resp.size()) {
        ssize_t n = send(c.get(), resp.data() + off, resp.size() - off, MSG_NOSIGNAL);
        if (n <= 0) {
            return;
        }
        off += static_cast<std::size_t>(n);
    }
}

std::string render_metrics(const AgentMetrics& a, const dataplane::MapSet& maps, const dataplane::SessionTable& sessions) {
    std::string o;
    auto head = [&](const char* name, const char* type, const char* help) {
        o += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
    };
    if (a.role == "lma") {
        head("xpmip_pbu_received_total", "counter", "Proxy Binding Updates received");
        o += fmt::format("xpmip_pbu_received_total {}\n", a.pbu_received);
        head("xpmip_pba_sent_total", "counter", "Proxy Binding Acknowledgements sent, by status");
        for (const auto& [status, n] : a.pba) {
            o += fmt::format("xpmip_pba_sent_total{{status=\"{}\"}} {}\n", escape(status), n);
        }
    } else {
        head("xpmip_pbu_sent_total", "counter", "Proxy Binding Updates sent (retransmissions included)");
        o += fmt::format("xpmip_pbu_sent_total {}\n", a.pbu_sent);
        head("xpmip_pba_received_total", "counter", "Proxy Binding Acknowledgements received, by status");
        for (const auto& [status, n] : a.pba) {
            o += fmt::format("xpmip_pba_received_total{{status=\"{}\"}} {}\n", escape(status), n);
        }
    }
    head("xpmip_signaling_malformed_total", "counter", "Signaling messages dropped as malformed");
    o += fmt::format("xpmip_signaling_malformed_total {}\n", a.malformed);
    head("xpmip_bindings", "gauge", "Binding cache (LMA) or binding update list (MAG) entries");
    o += fmt::format("xpmip_bindings {}\n", a.bindings);

    auto list = sessions.list();
    head("xpmip_sessions", "gauge", "Sessions in the data plane");
    o += fmt::format("xpmip_sessions {}\n", list.size());
    std::string pkts, bytes, ppkts, pbytes;
    for (const auto& s : list) {
        auto c = sessions.counters(s.id);
        auto it = a.session_mn.find(s.id);
        std::string mn = it == a.session_mn.end() ? "" : escape(it->second);
        for (const auto& [dir, t] : {std::pair{"uplink", c.uplink}, std::pair{"downlink", c.downlink}}) {
            pkts += fmt::format("xpmip_session_packets_total{{session=\"{}\",mn=\"{}\",direction=\"{}\"}} {}\n", s.id,
                                mn, dir, t.packets);
            bytes += fmt::format("xpmip_session_bytes_total{{session=\"{}\",mn=\"{}\",direction=\"{}\"}} {}\n", s.id,
                                 mn, dir, t.bytes);
        }
        for (std::size_t i = 0; i < s.paths.size(); ++i) {
            const auto& p = s.paths[i];
            for (const auto& [dir, t] : {std::pair{"tx", c.path_tx[i]}, std::pair{"rx", c.path_rx[i]}}) {
                auto labels = fmt::format("session=\"{}\",bid=\"{}\",label=\"{}\",remote=\"{}\",direction=\"{}\"", s.id,
                                          p.bid, p.label, to_string(p.remote), dir);
                ppkts += fmt::format("xpmip_path_packets_total{{{}}} {}\n", labels, t.packets);
                pbytes += fmt::format("xpmip_path_bytes_total{{{}}} {}\n", labels, t.bytes);
            }
        }
    }
    head("xpmip_session_packets_total", "counter", "Packets of a session by direction");
    o += pkts;
    head("xpmip_session_bytes_total", "counter", "Bytes of a session by direction");
    o += bytes;
    head("xpmip_path_packets_total", "counter", "Packets of a session's path (RFC 8278 binding) by direction");
    o += ppkts;
    head("xpmip_path_bytes_total", "counter", "Bytes of a session's path by direction");
    o += pbytes;
    head("xpmip_dataplane_events_total", "counter", "Data plane counters: drops by reason and other events");
    auto counters = dataplane::read_counters(maps);
    for (unsigned i = 0; i < counters.size(); ++i) {
        o += fmt::format("xpmip_dataplane_events_total{{counter=\"{}\"}} {}\n", dataplane::stat_name(i), counters[i]);
    }
    return o;
}

} // namespace xpmip::control
