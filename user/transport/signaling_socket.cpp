#include "transport/signaling_socket.hpp"

#include <fmt/format.h>

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <sys/socket.h>

namespace xpmip::transport {

namespace {

[[noreturn]] void fail(const std::string& what) {
    throw SocketError(fmt::format("{}: {}", what, std::strerror(errno)));
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
    return SignalingSocket(std::move(fd), wire::Transport::Ipv6);
}

SignalingSocket SignalingSocket::open_ipv4_udp(std::uint16_t port) {
    UniqueFd fd(socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) {
        fail("UDP socket");
    }
    enable(fd.get(), SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR");
    enable(fd.get(), IPPROTO_IP, IP_PKTINFO, "IP_PKTINFO");
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    if (bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) < 0) {
        fail(fmt::format("bind UDP port {}", port));
    }
    return SignalingSocket(std::move(fd), wire::Transport::Ipv4Udp);
}

std::optional<Datagram> SignalingSocket::receive() {
    std::vector<std::uint8_t> buf(65536);
    sockaddr_storage from{};
    alignas(cmsghdr) char control[256];
    iovec iov{buf.data(), buf.size()};
    msghdr msg{};
    msg.msg_name = &from;
    msg.msg_namelen = sizeof(from);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t n = recvmsg(fd_.get(), &msg, MSG_DONTWAIT);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            return std::nullopt;
        }
        fail("recvmsg");
    }
    Datagram d;
    d.transport = transport_;
    buf.resize(static_cast<std::size_t>(n));
    d.mh = std::move(buf);
    if (transport_ == wire::Transport::Ipv6) {
        const auto* s6 = reinterpret_cast<const sockaddr_in6*>(&from);
        Ipv6Address src;
        std::memcpy(src.bytes.data(), &s6->sin6_addr, 16);
        d.src = src;
        d.dst = Ipv6Address{};
        for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
                in6_pktinfo pi{};
                std::memcpy(&pi, CMSG_DATA(c), sizeof(pi));
                Ipv6Address dst;
                std::memcpy(dst.bytes.data(), &pi.ipi6_addr, 16);
                d.dst = dst;
                d.ifindex = pi.ipi6_ifindex;
            }
        }
    } else {
        const auto* s4 = reinterpret_cast<const sockaddr_in*>(&from);
        Ipv4Address src;
        std::memcpy(src.bytes.data(), &s4->sin_addr, 4);
        d.src = src;
        d.src_port = ntohs(s4->sin_port);
        d.dst = Ipv4Address{};
        for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
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
    return d;
}

void SignalingSocket::send(const std::vector<std::uint8_t>& mh, const IpAddress& src, const IpAddress& dst,
                           std::uint16_t dst_port) {
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(in6_pktinfo))]{};
    iovec iov{const_cast<std::uint8_t*>(mh.data()), mh.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    sockaddr_in6 to6{};
    sockaddr_in to4{};
    if (transport_ == wire::Transport::Ipv6) {
        if (!std::holds_alternative<Ipv6Address>(dst) || !std::holds_alternative<Ipv6Address>(src)) {
            throw SocketError(fmt::format("MH over IPv6 to {} from {}: both must be IPv6", to_string(dst), to_string(src)));
        }
        to6.sin6_family = AF_INET6;
        std::memcpy(&to6.sin6_addr, std::get<Ipv6Address>(dst).bytes.data(), 16);
        msg.msg_name = &to6;
        msg.msg_namelen = sizeof(to6);
        msg.msg_controllen = CMSG_SPACE(sizeof(in6_pktinfo));
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = IPPROTO_IPV6;
        c->cmsg_type = IPV6_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(in6_pktinfo));
        in6_pktinfo pi{};
        std::memcpy(&pi.ipi6_addr, std::get<Ipv6Address>(src).bytes.data(), 16);
        std::memcpy(CMSG_DATA(c), &pi, sizeof(pi));
    } else {
        if (!std::holds_alternative<Ipv4Address>(dst) || !std::holds_alternative<Ipv4Address>(src)) {
            throw SocketError(fmt::format("MH over UDP to {} from {}: both must be IPv4", to_string(dst), to_string(src)));
        }
        to4.sin_family = AF_INET;
        to4.sin_port = htons(dst_port);
        std::memcpy(&to4.sin_addr, std::get<Ipv4Address>(dst).bytes.data(), 4);
        msg.msg_name = &to4;
        msg.msg_namelen = sizeof(to4);
        msg.msg_controllen = CMSG_SPACE(sizeof(in_pktinfo));
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = IPPROTO_IP;
        c->cmsg_type = IP_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(in_pktinfo));
        in_pktinfo pi{};
        std::memcpy(&pi.ipi_spec_dst, std::get<Ipv4Address>(src).bytes.data(), 4);
        std::memcpy(CMSG_DATA(c), &pi, sizeof(pi));
    }
    if (sendmsg(fd_.get(), &msg, 0) < 0) {
        fail(fmt::format("sending {} octets to {}", mh.size(), to_string(dst)));
    }
}

} // namespace xpmip::transport
