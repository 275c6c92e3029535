#include "transport/signaling_socket.hpp"

#include <fmt/format.h>

#include <arpa/inet.h>
#include <cerrno>
#include <algorithm>
#include <array>
#include <cstring>
#include <netinet/in.h>
#include <sys/socket.h>

namespace xpmip::transport {

namespace {

[[noreturn]] void fail(const std::string& what) {
    throw SocketError(fmt::format("{}: {}", what, std::strerror(errno)));
}

// A burst of signaling (a MAG's restart re-registers every MN at once) waits in the socket while
// the loop is busy: 8 MiB instead of the default ~200 KiB, about 8000 PBUs. SO_RCVBUFFORCE (we
// have CAP_NET_ADMIN) goes past net.core.rmem_max; without it, SO_RCVBUF up to that limit.
constexpr int kReceiveBuffer = 8 << 20;

void enlarge_receive_buffer(int fd) {
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &kReceiveBuffer, sizeof kReceiveBuffer) < 0) {
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kReceiveBuffer, sizeof kReceiveBuffer);
    }
}

void enable(int fd, int level, int opt, const char* name) {
    int one = 1;
    if (setsockopt(fd, level, opt, &one, sizeof(one)) < 0) {
        fail(fmt::format("setsockopt {}", name));
    }
}

} // namespace

SignalingSocket SignalingSocket::open_ipv6() {
    UniqueFd fd(socket(AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, wire::kIpProtoMobilityHeader));
    if (!fd) {
        fail("raw IPv6 socket for the Mobility Header (protocol 135)");
    }
    enable(fd.get(), IPPROTO_IPV6, IPV6_RECVPKTINFO, "IPV6_RECVPKTINFO");
    enlarge_receive_buffer(fd.get());
    return SignalingSocket(std::move(fd), wire::Transport::Ipv6);
}

SignalingSocket SignalingSocket::open_ipv4_udp(std::uint16_t port) {
    UniqueFd fd(socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) {
        fail("UDP socket");
    }
    enable(fd.get(), SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR");
    enable(fd.get(), IPPROTO_IP, IP_PKTINFO, "IP_PKTINFO");
    enlarge_receive_buffer(fd.get());
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    if (bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) < 0) {
        fail(fmt::format("bind UDP port {}", port));
    }
    return SignalingSocket(std::move(fd), wire::Transport::Ipv4Udp);
}

// The buffers of one recvmmsg and one sendmmsg of kBatch messages each.
struct SignalingSocket::Batches {
    struct Slot {
        std::array<std::uint8_t, kMaxMessage> data;
        sockaddr_storage addr;
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(in6_pktinfo)) + 64];
        iovec iov;
    };
    std::array<Slot, kBatch> rx{}, tx{};
    std::array<mmsghdr, kBatch> rx_msgs{}, tx_msgs{};
    std::size_t queued = 0;
};

SignalingSocket::SignalingSocket(UniqueFd fd, wire::Transport t)
    : fd_(std::move(fd)), transport_(t), batches_(std::make_unique<Batches>()) {}
SignalingSocket::~SignalingSocket() = default;
SignalingSocket::SignalingSocket(SignalingSocket&&) noexcept = default;
SignalingSocket& SignalingSocket::operator=(SignalingSocket&&) noexcept = default;

namespace {

// Who sent a datagram, to which of our addresses and on which interface (IP(V6)_PKTINFO).
void read_addresses(wire::Transport transport, const msghdr& msg, const sockaddr_storage& from, Datagram& d) {
    d.transport = transport;
    d.ifindex = 0;
    if (transport == wire::Transport::Ipv6) {
        const auto* s6 = reinterpret_cast<const sockaddr_in6*>(&from);
        Ipv6Address src;
        std::memcpy(src.bytes.data(), &s6->sin6_addr, 16);
        d.src = src;
        d.src_port = 0;
        d.dst = Ipv6Address{};
        for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(const_cast<msghdr*>(&msg), c)) {
            if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
                in6_pktinfo pi{};
                std::memcpy(&pi, CMSG_DATA(c), sizeof(pi));
                Ipv6Address dst;
                std::memcpy(dst.bytes.data(), &pi.ipi6_addr, 16);
                d.dst = dst;
                d.ifindex = pi.ipi6_ifindex;
            }
        }
        return;
    }
    const auto* s4 = reinterpret_cast<const sockaddr_in*>(&from);
    Ipv4Address src;
    std::memcpy(src.bytes.data(), &s4->sin_addr, 4);
    d.src = src;
    d.src_port = ntohs(s4->sin_port);
    d.dst = Ipv4Address{};
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(const_cast<msghdr*>(&msg), c)) {
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
            in_pktinfo pi{};
            std::memcpy(&pi, CMSG_DATA(c), sizeof(pi));
            Ipv4Address dst;
            std::memcpy(dst.bytes.data(), &pi.ipi_addr, 4);
            d.dst = dst;
            d.ifindex = static_cast<std::uint32_t>(pi.ipi_ifindex);
        }
    }
}

// A message's destination and source address (IP(V6)_PKTINFO) into `msg`, whose name and
// control buffers are `to` and `control`.
void address_message(wire::Transport transport, const IpAddress& src, const IpAddress& dst, std::uint16_t dst_port,
                     sockaddr_storage& to, char* control, msghdr& msg) {
    std::memset(&to, 0, sizeof to);
    msg.msg_name = &to;
    msg.msg_control = control;
    if (transport == wire::Transport::Ipv6) {
        if (!std::holds_alternative<Ipv6Address>(dst) || !std::holds_alternative<Ipv6Address>(src)) {
            throw SocketError(fmt::format("MH over IPv6 to {} from {}: both must be IPv6", to_string(dst), to_string(src)));
        }
        auto* to6 = reinterpret_cast<sockaddr_in6*>(&to);
        to6->sin6_family = AF_INET6;
        std::memcpy(&to6->sin6_addr, std::get<Ipv6Address>(dst).bytes.data(), 16);
        msg.msg_namelen = sizeof(sockaddr_in6);
        msg.msg_controllen = CMSG_SPACE(sizeof(in6_pktinfo));
        std::memset(control, 0, msg.msg_controllen);
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = IPPROTO_IPV6;
        c->cmsg_type = IPV6_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(in6_pktinfo));
        in6_pktinfo pi{};
        std::memcpy(&pi.ipi6_addr, std::get<Ipv6Address>(src).bytes.data(), 16);
        std::memcpy(CMSG_DATA(c), &pi, sizeof(pi));
        return;
    }
    if (!std::holds_alternative<Ipv4Address>(dst) || !std::holds_alternative<Ipv4Address>(src)) {
        throw SocketError(fmt::format("MH over UDP to {} from {}: both must be IPv4", to_string(dst), to_string(src)));
    }
    auto* to4 = reinterpret_cast<sockaddr_in*>(&to);
    to4->sin_family = AF_INET;
    to4->sin_port = htons(dst_port);
    std::memcpy(&to4->sin_addr, std::get<Ipv4Address>(dst).bytes.data(), 4);
    msg.msg_namelen = sizeof(sockaddr_in);
    msg.msg_controllen = CMSG_SPACE(sizeof(in_pktinfo));
    std::memset(control, 0, msg.msg_controllen);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = IPPROTO_IP;
    c->cmsg_type = IP_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof(in_pktinfo));
    in_pktinfo pi{};
    std::memcpy(&pi.ipi_spec_dst, std::get<Ipv4Address>(src).bytes.data(), 4);
    std::memcpy(CMSG_DATA(c), &pi, sizeof(pi));
}

} // namespace

const std::vector<Datagram>& SignalingSocket::receive_batch() {
    auto& b = *batches_;
    auto& out = received_;
    for (std::size_t i = 0; i < kBatch; ++i) {
        auto& slot = b.rx[i];
        slot.iov = {slot.data.data(), slot.data.size()};
        msghdr& m = b.rx_msgs[i].msg_hdr;
        m = msghdr{};
        m.msg_name = &slot.addr;
        m.msg_namelen = sizeof slot.addr;
        m.msg_iov = &slot.iov;
        m.msg_iovlen = 1;
        m.msg_control = slot.control;
        m.msg_controllen = sizeof slot.control;
    }
    const int n = recvmmsg(fd_.get(), b.rx_msgs.data(), kBatch, MSG_DONTWAIT, nullptr);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            out.clear();
            return out;
        }
        fail("recvmmsg");
    }
    out.resize(static_cast<std::size_t>(n));
    for (std::size_t i = 0; i < out.size(); ++i) {
        const auto& slot = b.rx[i];
        const std::size_t len = std::min<std::size_t>(b.rx_msgs[i].msg_len, slot.data.size());
        out[i].mh.assign(slot.data.begin(), slot.data.begin() + static_cast<std::ptrdiff_t>(len));
        read_addresses(transport_, b.rx_msgs[i].msg_hdr, slot.addr, out[i]);
    }
    return out;
}

void SignalingSocket::send(const std::vector<std::uint8_t>& mh, const IpAddress& src, const IpAddress& dst,
                           std::uint16_t dst_port) {
    sockaddr_storage to{};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(in6_pktinfo))]{};
    iovec iov{const_cast<std::uint8_t*>(mh.data()), mh.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    address_message(transport_, src, dst, dst_port, to, control, msg);
    if (sendmsg(fd_.get(), &msg, 0) < 0) {
        fail(fmt::format("sending {} octets to {}", mh.size(), to_string(dst)));
    }
}

void SignalingSocket::queue(const std::vector<std::uint8_t>& mh, const IpAddress& src, const IpAddress& dst,
                            std::uint16_t dst_port) {
    auto& b = *batches_;
    if (mh.size() > kMaxMessage) {
        send(mh, src, dst, dst_port);
        return;
    }
    if (b.queued == kBatch) {
        auto errors = flush();
        send_errors_.insert(send_errors_.end(), errors.begin(), errors.end());
    }
    auto& slot = b.tx[b.queued];
    std::copy(mh.begin(), mh.end(), slot.data.begin());
    slot.iov = {slot.data.data(), mh.size()};
    msghdr& m = b.tx_msgs[b.queued].msg_hdr;
    m = msghdr{};
    m.msg_iov = &slot.iov;
    m.msg_iovlen = 1;
    address_message(transport_, src, dst, dst_port, slot.addr, slot.control, m);
    ++b.queued;
}

std::vector<std::string> SignalingSocket::flush() {
    auto& b = *batches_;
    std::vector<std::string> errors = std::move(send_errors_);
    send_errors_.clear();
    std::size_t done = 0;
    while (done < b.queued) {
        const int n = sendmmsg(fd_.get(), b.tx_msgs.data() + done, static_cast<unsigned>(b.queued - done), 0);
        if (n > 0) {
            done += static_cast<std::size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        // The message at `done` failed (sendmmsg reports the error of the first one it could not
        // send): note it and go on with the rest.
        const auto* to = static_cast<const sockaddr*>(b.tx_msgs[done].msg_hdr.msg_name);
        char text[INET6_ADDRSTRLEN] = "?";
        if (to->sa_family == AF_INET6) {
            inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(to)->sin6_addr, text, sizeof text);
        } else {
            inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(to)->sin_addr, text, sizeof text);
        }
        errors.push_back(fmt::format("sending {} octets to {}: {}", b.tx[done].iov.iov_len, text, std::strerror(errno)));
        ++done;
    }
    b.queued = 0;
    return errors;
}

} // namespace xpmip::transport
