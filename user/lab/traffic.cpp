#include "lab/traffic.hpp"

#include <fmt/format.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <regex>
#include <sstream>
#include <thread>

namespace xpmip::lab {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// --- ping ------------------------------------------------------------------------------------

std::string PingResult::summary() const {
    if (sent == 0) {
        return "no ping";
    }
    return ok ? fmt::format("{}/{} rtt {:.3f} ms", received, sent, avg_ms) : fmt::format("{}/{} LOST", received, sent);
}

PingResult ping(const std::string& ns, const std::string& dst, int count) {
    auto r = run({"ping", "-c", std::to_string(count), "-i", "0.2", "-W", "2", "-q", dst},
                 RunOptions{.netns = ns, .timeout = std::chrono::seconds(count * 3 + 5), .check = false});
    PingResult p;
    p.output = r.out + r.err;
    std::smatch m;
    static const std::regex counts(R"((\d+) packets transmitted, (\d+) received)");
    static const std::regex rtt(R"(= [\d.]+/([\d.]+)/)");
    if (std::regex_search(p.output, m, counts)) {
        p.sent = std::stoi(m[1]);
        p.received = std::stoi(m[2]);
    }
    if (std::regex_search(p.output, m, rtt)) {
        p.avg_ms = std::stod(m[1]);
    }
    p.ok = r.status == 0 && p.sent == count && p.received == count;
    return p;
}

// --- TCP -------------------------------------------------------------------------------------

std::string TcpResult::summary() const {
    if (!ok) {
        return "FAILED: " + error;
    }
    const double mib = static_cast<double>(uplink + downlink) / (1024.0 * 1024.0);
    return fmt::format("{} KiB up + {} KiB down intact in {:.2f} s ({:.0f} Mbit/s)", uplink / 1024, downlink / 1024,
                       seconds, seconds > 0 ? mib * 8.388608 / seconds : 0.0);
}

namespace {

std::vector<std::uint8_t> pattern(std::size_t n) {
    std::vector<std::uint8_t> v(n);
    std::uint64_t x = 0x9e3779b97f4a7c15ULL;   // xorshift64: no period a lost segment could hide in
    for (auto& b : v) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b = static_cast<std::uint8_t>(x >> 32);
    }
    return v;
}

struct SockAddr {
    sockaddr_storage ss{};
    socklen_t len = 0;
    int family = AF_UNSPEC;
};

SockAddr sockaddr_of(const std::string& addr, std::uint16_t port) {
    SockAddr s;
    if (addr.find(':') != std::string::npos) {
        auto* a = reinterpret_cast<sockaddr_in6*>(&s.ss);
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        if (inet_pton(AF_INET6, addr.c_str(), &a->sin6_addr) != 1) {
            throw LabError(fmt::format("'{}' is not an IPv6 address", addr));
        }
        s.len = sizeof(sockaddr_in6);
        s.family = AF_INET6;
    } else {
        auto* a = reinterpret_cast<sockaddr_in*>(&s.ss);
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        if (inet_pton(AF_INET, addr.c_str(), &a->sin_addr) != 1) {
            throw LabError(fmt::format("'{}' is not an IPv4 address", addr));
        }
        s.len = sizeof(sockaddr_in);
        s.family = AF_INET;
    }
    return s;
}

UniqueFd tcp_socket(int family) {
    UniqueFd fd(socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) {
        throw LabError(fmt::format("TCP socket: {}", std::strerror(errno)));
    }
    return fd;
}

// Compare what arrived with the pattern at `offset`; false on the first wrong octet.
bool matches(const std::vector<std::uint8_t>& pat, std::size_t offset, const std::uint8_t* data, std::size_t n) {
    return offset + n <= pat.size() && std::memcmp(pat.data() + offset, data, n) == 0;
}

// The server's listening socket, made inside its namespace.
UniqueFd tcp_listener(const std::string& server_ns, const SockAddr& sa, const std::string& server_addr,
                      std::uint16_t port) {
    NetnsScope in(server_ns);
    UniqueFd listener = tcp_socket(sa.family);
    int one = 1;
    setsockopt(listener.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(listener.get(), reinterpret_cast<const sockaddr*>(&sa.ss), sa.len) < 0 || listen(listener.get(), 1) < 0) {
        throw LabError(fmt::format("TCP server on {} port {} in {}: {}", server_addr, port, server_ns,
                                   std::strerror(errno)));
    }
    return listener;
}

// Both ends of one connection, driven by poll() until the downlink's end reaches the client.
// Uplink: client -> server, then the client half-closes. Downlink: server -> client after
// the uplink's end, then the server closes.
class TcpExchange {
public:
    TcpExchange(const std::vector<std::uint8_t>& pat, UniqueFd listener, UniqueFd client,
                const std::string& server_addr, std::uint16_t port)
        : pat_(pat), bytes_(pat.size()), server_addr_(server_addr), port_(port), listener_(std::move(listener)),
          client_(std::move(client)) {}

    TcpResult run(std::chrono::milliseconds timeout);

private:
    std::string poll_and_serve(int timeout_ms);
    void accept_server(short revents);
    std::string serve_client(short revents);
    std::string serve_server(short revents);
    std::string send_more(int fd, std::size_t& sent, const char* dir);
    std::string receive_more(int fd, std::size_t& got, bool& eof, const char* dir);
    TcpResult failed(std::string why) const;
    TcpResult finished(double seconds) const;

    const std::vector<std::uint8_t>& pat_;
    const std::size_t bytes_;
    const std::string& server_addr_;
    const std::uint16_t port_;
    UniqueFd listener_, client_, server_;
    std::size_t up_sent_ = 0, up_got_ = 0, down_sent_ = 0, down_got_ = 0;
    bool connected_ = false, up_eof_ = false, down_eof_ = false;
    std::vector<std::uint8_t> buf_ = std::vector<std::uint8_t>(1 << 16);
};

TcpResult TcpExchange::run(std::chrono::milliseconds timeout) {
    const auto t0 = Clock::now();
    const auto deadline = t0 + timeout;
    while (!down_eof_) {
        if (interrupted()) {
            return failed("interrupted");
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) {
            return failed(fmt::format("timed out after {} s: {} of {} octets uplink, {} downlink",
                                      std::chrono::duration<double>(timeout).count(), up_got_, bytes_, down_got_));
        }
        if (auto err = poll_and_serve(static_cast<int>(std::min<long long>(left, 200))); !err.empty()) {
            return failed(err);
        }
    }
    return finished(std::chrono::duration<double>(Clock::now() - t0).count());
}

// One poll() round and what it allows on each socket. Returns an error text, empty when all is
// well (an interrupted poll() included: run() looks at the flag and the deadline again).
std::string TcpExchange::poll_and_serve(int timeout_ms) {
    short cev = POLLIN;
    if (!connected_ || (up_sent_ < bytes_)) {
        cev |= POLLOUT;
    }
    short sev = 0;
    if (server_) {
        sev = up_eof_ ? (down_sent_ < bytes_ ? POLLOUT : 0) : POLLIN;
    }
    pollfd p[3] = {{client_.get(), cev, 0},
                   {listener_ ? listener_.get() : -1, POLLIN, 0},
                   {server_ ? server_.get() : -1, sev, 0}};
    if (poll(p, 3, timeout_ms) < 0) {
        if (errno == EINTR) {
            return {};
        }
        return fmt::format("poll: {}", std::strerror(errno));
    }
    accept_server(p[1].revents);
    if (auto err = serve_client(p[0].revents); !err.empty()) {
        return err;
    }
    return serve_server(p[2].revents);
}

// The server accepts.
void TcpExchange::accept_server(short revents) {
    if (listener_ && (revents & POLLIN)) {
        server_.reset(accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (server_) {
            listener_.reset();
        }
    }
}

// The client: connection result, uplink data, downlink data.
std::string TcpExchange::serve_client(short revents) {
    if (revents & (POLLOUT | POLLERR | POLLHUP) && !connected_) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(client_.get(), SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
            return fmt::format("connect to {} port {}: {}", server_addr_, port_, std::strerror(err));
        }
        connected_ = (revents & POLLOUT) != 0;
    }
    if (connected_ && up_sent_ < bytes_ && (revents & POLLOUT)) {
        if (auto err = send_more(client_.get(), up_sent_, "uplink"); !err.empty()) {
            return err;
        }
    }
    if (revents & (POLLIN | POLLHUP)) {
        return receive_more(client_.get(), down_got_, down_eof_, "downlink");
    }
    return {};
}

// The server: uplink data until the client's FIN, then the downlink.
std::string TcpExchange::serve_server(short revents) {
    if (server_ && !up_eof_ && (revents & (POLLIN | POLLHUP))) {
        if (auto err = receive_more(server_.get(), up_got_, up_eof_, "uplink"); !err.empty()) {
            return err;
        }
    }
    if (server_ && up_eof_ && down_sent_ < bytes_ && (revents & POLLOUT)) {
        return send_more(server_.get(), down_sent_, "downlink");
    }
    return {};
}

// One direction's sender: the next piece of the pattern, a half-close after the last. Returns
// an error text, empty when all is well (a full socket buffer included).
std::string TcpExchange::send_more(int fd, std::size_t& sent, const char* dir) {
    ssize_t n = send(fd, pat_.data() + sent, std::min<std::size_t>(bytes_ - sent, 1 << 16), MSG_NOSIGNAL);
    if (n > 0) {
        sent += static_cast<std::size_t>(n);
        if (sent == bytes_) {
            shutdown(fd, SHUT_WR);
        }
    } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        return fmt::format("{} send: {}", dir, std::strerror(errno));
    }
    return {};
}

// One direction's receiver: what arrives must continue the pattern.
std::string TcpExchange::receive_more(int fd, std::size_t& got, bool& eof, const char* dir) {
    ssize_t n = recv(fd, buf_.data(), buf_.size(), 0);
    if (n > 0) {
        if (!matches(pat_, got, buf_.data(), static_cast<std::size_t>(n))) {
            return fmt::format("{} data corrupted or too long at octet {}", dir, got);
        }
        got += static_cast<std::size_t>(n);
    } else if (n == 0) {
        eof = true;
    } else if (errno != EAGAIN && errno != EINTR) {
        return fmt::format("{} receive: {}", dir, std::strerror(errno));
    }
    return {};
}

TcpResult TcpExchange::failed(std::string why) const {
    TcpResult res;
    res.error = std::move(why);
    res.uplink = up_got_;
    res.downlink = down_got_;
    return res;
}

TcpResult TcpExchange::finished(double seconds) const {
    TcpResult res;
    res.seconds = seconds;
    res.uplink = up_got_;
    res.downlink = down_got_;
    res.ok = up_got_ == bytes_ && down_got_ == bytes_;
    if (!res.ok) {
        res.error = fmt::format("{} of {} octets uplink, {} downlink", up_got_, bytes_, down_got_);
    }
    return res;
}

} // namespace

TcpResult tcp_transfer(const std::string& client_ns, const std::string& server_ns, const std::string& server_addr,
                       std::uint16_t port, std::size_t bytes, std::chrono::milliseconds timeout) {
    const auto pat = pattern(bytes);
    const auto sa = sockaddr_of(server_addr, port);
    UniqueFd listener = tcp_listener(server_ns, sa, server_addr, port);
    UniqueFd client;
    {
        NetnsScope in(client_ns);
        client = tcp_socket(sa.family);
        if (connect(client.get(), reinterpret_cast<const sockaddr*>(&sa.ss), sa.len) < 0 && errno != EINPROGRESS) {
            TcpResult res;
            res.error = fmt::format("connect to {} port {}: {}", server_addr, port, std::strerror(errno));
            return res;
        }
    }
    return TcpExchange(pat, std::move(listener), std::move(client), server_addr, port).run(timeout);
}

// --- tshark ----------------------------------------------------------------------------------

GreCapture::GreCapture(const std::string& ns, const std::string& iface, fs::path pcap) : pcap_(std::move(pcap)) {
    require_program("tshark", "tshark");
    // `ip netns exec` (not just the network namespace): dumpcap looks the interface up in /sys.
    tshark_ = std::make_unique<Child>(
        std::vector<std::string>{"ip", "netns", "exec", ns, "tshark", "-i", iface, "-f", "ip proto 47", "-w",
                                 pcap_.string(), "-q"},
        Child::Output::Null, Child::Output::Pipe);
    if (!tshark_->wait_stderr_for("Capturing on", std::chrono::seconds(20))) {
        throw_if_interrupted();
        throw LabError(fmt::format("tshark on {} in {} did not start capturing: {}", iface, ns, tshark_->stderr_text()));
    }
}

GreCapture::~GreCapture() {
    tshark_.reset();   // stopped before its file goes
    std::error_code ec;
    fs::remove(pcap_, ec);
}

std::vector<GrePacket> GreCapture::stop() {
    // The last packets reach the file; then SIGINT (`ip netns exec` execs tshark in place: the
    // pid is tshark's), which writes out and exits.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    tshark_->signal(SIGINT);
    if (!tshark_->wait(std::chrono::seconds(10))) {
        throw LabError("tshark did not stop within 10 s of SIGINT");
    }
    auto r = run({"tshark", "-r", pcap_.string(), "-Y", "gre", "-T", "fields", "-E", "occurrence=f", "-e", "ip.src", "-e",
                  "ip.dst", "-e", "gre.key"});
    std::vector<GrePacket> out;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) {
        std::istringstream f(line);
        GrePacket p;
        std::string key;
        std::getline(f, p.src, '\t');
        std::getline(f, p.dst, '\t');
        std::getline(f, key, '\t');
        if (!key.empty()) {
            p.key = static_cast<std::uint32_t>(std::stoul(key, nullptr, 0));
        }
        out.push_back(p);
    }
    return out;
}

} // namespace xpmip::lab
