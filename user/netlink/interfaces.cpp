#include "netlink/interfaces.hpp"

#include <fmt/format.h>
#include <net/if.h>
#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <stdexcept>

namespace xpmip::netlink {

namespace {

// IFF_LOWER_UP (carrier) from <linux/if.h>, which cannot be included next to <net/if.h>.
constexpr unsigned kIffLowerUp = 1u << 16;

struct SockDeleter {
    void operator()(nl_sock* s) const { nl_socket_free(s); }
};
struct LinkDeleter {
    void operator()(rtnl_link* l) const { rtnl_link_put(l); }
};
struct CacheDeleter {
    void operator()(nl_cache* c) const { nl_cache_free(c); }
};

std::unique_ptr<nl_sock, SockDeleter> connect_route() {
    std::unique_ptr<nl_sock, SockDeleter> sock(nl_socket_alloc());
    if (!sock) {
        throw std::runtime_error("netlink: cannot allocate a socket");
    }
    if (int err = nl_connect(sock.get(), NETLINK_ROUTE); err < 0) {
        throw std::runtime_error(fmt::format("netlink: connect: {}", nl_geterror(err)));
    }
    return sock;
}

} // namespace

std::optional<InterfaceInfo> find_interface(const std::string& name) {
    auto sock = connect_route();
    rtnl_link* raw = nullptr;
    if (rtnl_link_get_kernel(sock.get(), 0, name.c_str(), &raw) < 0 || !raw) {
        return std::nullopt;
    }
    std::unique_ptr<rtnl_link, LinkDeleter> link(raw);
    InterfaceInfo info;
    info.name = name;
    info.ifindex = rtnl_link_get_ifindex(link.get());
    info.mtu = rtnl_link_get_mtu(link.get());
    info.carrier = (rtnl_link_get_flags(link.get()) & kIffLowerUp) != 0;
    if (nl_addr* ll = rtnl_link_get_addr(link.get()); ll && nl_addr_get_len(ll) == 6) {
        std::memcpy(info.mac.bytes.data(), nl_addr_get_binary_addr(ll), 6);
    }
    nl_cache* raw_cache = nullptr;
    if (rtnl_addr_alloc_cache(sock.get(), &raw_cache) >= 0) {
        std::unique_ptr<nl_cache, CacheDeleter> cache(raw_cache);
        std::vector<Ipv6Address> link_local;
        for (nl_object* o = nl_cache_get_first(cache.get()); o; o = nl_cache_get_next(o)) {
            auto* a = reinterpret_cast<rtnl_addr*>(o);
            if (rtnl_addr_get_ifindex(a) != info.ifindex) {
                continue;
            }
            nl_addr* local = rtnl_addr_get_local(a);
            if (!local) {
                continue;
            }
            const auto* bytes = static_cast<const std::uint8_t*>(nl_addr_get_binary_addr(local));
            if (rtnl_addr_get_family(a) == AF_INET && nl_addr_get_len(local) == 4) {
                info.ipv4.push_back(Ipv4Address{{bytes[0], bytes[1], bytes[2], bytes[3]}});
            } else if (rtnl_addr_get_family(a) == AF_INET6 && nl_addr_get_len(local) == 16) {
                Ipv6Address v6;
                std::memcpy(v6.bytes.data(), bytes, 16);
                (v6.is_link_local() ? link_local : info.ipv6).push_back(v6);
            }
        }
        info.ipv6.insert(info.ipv6.end(), link_local.begin(), link_local.end());
    }
    return info;
}

InterfaceInfo query_interface(const std::string& name) {
    if (auto info = find_interface(name)) {
        return *info;
    }
    throw std::runtime_error(fmt::format("interface '{}' does not exist", name));
}

std::string interface_name(int ifindex) {
    char buf[IF_NAMESIZE] = {};
    return if_indextoname(static_cast<unsigned>(ifindex), buf) ? std::string(buf) : std::string();
}

namespace {

struct AddrDeleter {
    void operator()(rtnl_addr* a) const { rtnl_addr_put(a); }
};
struct NlAddrDeleter {
    void operator()(nl_addr* a) const { nl_addr_put(a); }
};

void change_address(int ifindex, const IpAddress& address, unsigned prefix_length, bool add) {
    auto sock = connect_route();
    std::unique_ptr<rtnl_addr, AddrDeleter> a(rtnl_addr_alloc());
    const bool v4 = is_ipv4(address);
    std::unique_ptr<nl_addr, NlAddrDeleter> local(
        v4 ? nl_addr_build(AF_INET, std::get<Ipv4Address>(address).bytes.data(), 4)
           : nl_addr_build(AF_INET6, std::get<Ipv6Address>(address).bytes.data(), 16));
    if (!a || !local) {
        throw std::runtime_error("netlink: out of memory");
    }
    nl_addr_set_prefixlen(local.get(), static_cast<int>(prefix_length));
    rtnl_addr_set_ifindex(a.get(), ifindex);
    rtnl_addr_set_local(a.get(), local.get());
    int err = add ? rtnl_addr_add(sock.get(), a.get(), NLM_F_REPLACE) : rtnl_addr_delete(sock.get(), a.get(), 0);
    if (err < 0 && !(add && err == -NLE_EXIST) && !(!add && err == -NLE_NOADDR)) {
        throw std::runtime_error(fmt::format("netlink: {} {}/{} on ifindex {}: {}", add ? "adding" : "removing",
                                             to_string(address), prefix_length, ifindex, nl_geterror(err)));
    }
}

} // namespace

void add_address(int ifindex, const IpAddress& address, unsigned prefix_length) {
    change_address(ifindex, address, prefix_length, true);
}

void remove_address(int ifindex, const IpAddress& address, unsigned prefix_length) {
    change_address(ifindex, address, prefix_length, false);
}

} // namespace xpmip::netlink
