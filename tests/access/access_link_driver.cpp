// Test driver: runs one xpmip::access::AccessLink on an interface, so the tests can put real
// clients (the kernel's SLAAC, udhcpc, scapy) on the other end of the link.
//
//   access_link_driver IFNAME [--station JSON]... [--attach-on-unknown JSON]...
//                             [--router-lifetime S] [--mtu N] [--ra-interval MIN_MS MAX_MS]
//                             [--initial-ra-interval MS] [--unknown-interval MS] [--log-level L]
//
// A station is {"mac": "02:..", "hnp": "2001:db8::/64", "ipv4": "10.0.0.5", "plen": 16,
// "router": "10.0.0.1", "lifetime": 600, "preferred": 300, "dns": ["192.0.2.53"]}.
// --attach-on-unknown stations are set from inside on_unknown_station (a synchronous attach).
//
// Commands on stdin, one JSON object a line: {"op": "set", <station>}, {"op": "remove", "mac"},
// {"op": "advertise", "mac"}, {"op": "counters"}. Each is answered on stdout with
// {"event": "ok", "op": ...} or {"event": "error", "op": ..., "message": ...}. Other events:
// {"event": "ready", ...}, {"event": "unknown_station", "mac", "t"}, {"event": "release", "mac"},
// {"event": "counters", ...}. EOF on stdin ends the driver.
#include "access/access_link.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <string>

using nlohmann::json;
using namespace xpmip;

namespace {

const auto kStart = std::chrono::steady_clock::now();

void emit(const json& j) {
    std::string line = j.dump() + "\n";
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fflush(stdout);
}

template <typename T>
T number(const json& j, const char* key, T fallback) {
    if (!j.contains(key)) {
        return fallback;
    }
    auto v = j.at(key).get<long long>();
    if (v < 0 || static_cast<unsigned long long>(v) > std::numeric_limits<T>::max()) {
        throw std::invalid_argument(std::string("\"") + key + "\": " + std::to_string(v) + " is out of range");
    }
    return static_cast<T>(v);
}

std::pair<MacAddress, access::StationConfig> station_from_json(const json& j) {
    access::StationConfig c;
    MacAddress mac = MacAddress::parse(j.at("mac").get<std::string>());
    if (j.contains("hnp")) {
        c.hnp = Ipv6Prefix::parse(j.at("hnp").get<std::string>());
    }
    if (j.contains("ipv4")) {
        c.ipv4_address = Ipv4Address::parse(j.at("ipv4").get<std::string>());
    }
    if (j.contains("router")) {
        c.ipv4_router = Ipv4Address::parse(j.at("router").get<std::string>());
    }
    c.ipv4_prefix_length = number<std::uint8_t>(j, "plen", c.ipv4_prefix_length);
    c.lifetime_seconds = number<std::uint32_t>(j, "lifetime", c.lifetime_seconds);
    if (j.contains("preferred")) {
        c.preferred_lifetime_seconds = number<std::uint32_t>(j, "preferred", 0);
    }
    for (const auto& d : j.value("dns", json::array())) {
        c.dns_servers.push_back(Ipv4Address::parse(d.get<std::string>()));
    }
    return {mac, c};
}

json counters_json(const access::AccessLinkCounters& c) {
    return {{"event", "counters"},        {"frames", c.frames},
            {"malformed", c.malformed},   {"rs_received", c.rs_received},
            {"ra_sent", c.ra_sent},       {"ra_solicited", c.ra_solicited},
            {"ra_withdrawals", c.ra_withdrawals},
            {"dhcp_discover", c.dhcp_discover}, {"dhcp_request", c.dhcp_request},
            {"dhcp_inform", c.dhcp_inform},     {"dhcp_release", c.dhcp_release},
            {"dhcp_decline", c.dhcp_decline},   {"dhcp_offer", c.dhcp_offer},
            {"dhcp_ack", c.dhcp_ack},           {"dhcp_nak", c.dhcp_nak},
            {"dhcp_ignored", c.dhcp_ignored},   {"arp_requests", c.arp_requests},
            {"arp_replies", c.arp_replies},     {"unknown_reported", c.unknown_reported},
            {"unknown_suppressed", c.unknown_suppressed}, {"send_errors", c.send_errors}};
}

void command(access::AccessLink& link, const std::string& line) {
    json cmd;
    std::string op = "?";
    try {
        cmd = json::parse(line);
        op = cmd.at("op").get<std::string>();
        if (op == "set") {
            auto [mac, cfg] = station_from_json(cmd);
            link.set_station(mac, cfg);
        } else if (op == "remove") {
            link.remove_station(MacAddress::parse(cmd.at("mac").get<std::string>()));
        } else if (op == "advertise") {
            link.advertise(MacAddress::parse(cmd.at("mac").get<std::string>()));
        } else if (op == "counters") {
            emit(counters_json(link.counters()));
        } else {
            throw std::invalid_argument("unknown op \"" + op + "\"");
        }
        emit({{"event", "ok"}, {"op", op}});
    } catch (const std::exception& e) {
        emit({{"event", "error"}, {"op", op}, {"message", e.what()}});
    }
}

} // namespace

int main(int argc, char** argv) {
    spdlog::set_default_logger(spdlog::stderr_color_mt("access"));
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s IFNAME [--station JSON]... (see the source)\n", argv[0]);
        return 2;
    }
    try {
        std::string ifname = argv[1];
        access::AccessLinkOptions options;
        std::vector<json> stations;
        std::map<MacAddress, access::StationConfig> attach_on_unknown;
        for (int i = 2; i < argc; ++i) {
            std::string a = argv[i];
            auto next = [&]() -> std::string {
                if (i + 1 >= argc) {
                    throw std::invalid_argument(a + " needs a value");
                }
                return argv[++i];
            };
            if (a == "--station") {
                stations.push_back(json::parse(next()));
            } else if (a == "--attach-on-unknown") {
                auto [mac, cfg] = station_from_json(json::parse(next()));
                attach_on_unknown[mac] = cfg;
            } else if (a == "--router-lifetime") {
                options.router_lifetime_seconds = static_cast<std::uint16_t>(std::stoul(next()));
            } else if (a == "--mtu") {
                options.advertised_mtu = static_cast<std::uint32_t>(std::stoul(next()));
            } else if (a == "--ra-interval") {
                options.ra_min_interval = std::chrono::milliseconds(std::stoll(next()));
                options.ra_max_interval = std::chrono::milliseconds(std::stoll(next()));
            } else if (a == "--initial-ra-interval") {
                options.initial_ra_interval = std::chrono::milliseconds(std::stoll(next()));
            } else if (a == "--unknown-interval") {
                options.unknown_station_interval = std::chrono::milliseconds(std::stoll(next()));
            } else if (a == "--log-level") {
                spdlog::set_level(spdlog::level::from_str(next()));
            } else {
                throw std::invalid_argument("unknown argument " + a);
            }
        }

        access::AccessLink link(ifname, options);
        link.on_unknown_station = [&](const MacAddress& mac) {
            double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - kStart).count();
            emit({{"event", "unknown_station"}, {"mac", mac.to_string()}, {"t", t}});
            if (auto it = attach_on_unknown.find(mac); it != attach_on_unknown.end()) {
                link.set_station(mac, it->second);
            }
        };
        link.on_release = [&](const MacAddress& mac) { emit({{"event", "release"}, {"mac", mac.to_string()}}); };
        for (const auto& s : stations) {
            auto [mac, cfg] = station_from_json(s);
            link.set_station(mac, cfg);
        }
        emit({{"event", "ready"},
              {"ifname", ifname},
              {"mac", link.mac().to_string()},
              {"link_local", link.link_local() ? link.link_local()->to_string() : ""}});

        std::string pending;
        bool stdin_open = true;
        while (stdin_open) {
            auto timeout = link.tick();
            pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {link.fd(), POLLIN, 0}};
            int n = ::poll(fds, 2, static_cast<int>(std::min<long long>(timeout.count(), 60'000)));
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                throw std::runtime_error(std::string("poll: ") + std::strerror(errno));
            }
            if (fds[1].revents & POLLIN) {
                link.handle_readable();
            }
            if (fds[0].revents & (POLLIN | POLLHUP)) {
                char buf[4096];
                ssize_t got = ::read(STDIN_FILENO, buf, sizeof(buf));
                if (got <= 0) {
                    stdin_open = false;
                } else {
                    pending.append(buf, static_cast<std::size_t>(got));
                    for (std::size_t nl; (nl = pending.find('\n')) != std::string::npos;) {
                        std::string line = pending.substr(0, nl);
                        pending.erase(0, nl + 1);
                        if (!line.empty()) {
                            command(link, line);
                        }
                    }
                }
            }
        }
        return 0;
    } catch (const std::exception& e) {
        emit({{"event", "fatal"}, {"message", e.what()}});
        std::fprintf(stderr, "access_link_driver: %s\n", e.what());
        return 1;
    }
}
