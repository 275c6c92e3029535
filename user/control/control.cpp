#include "control/control.hpp"

#include "dataplane/json.hpp"
#include "dataplane/stats.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>
#include <sstream>

namespace xpmip::control {

using nlohmann::json;

std::filesystem::path socket_path(const std::string& instance) {
    return std::filesystem::path("/run/xpmip") / (instance + ".sock");
}

namespace {

sockaddr_un address_of(const std::filesystem::path& path) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    const std::string p = path.string();
    if (p.size() >= sizeof(sa.sun_path)) {
        throw ControlError(fmt::format("control socket path {} is too long", p));
    }
    std::memcpy(sa.sun_path, p.c_str(), p.size() + 1);
    return sa;
}

UniqueFd unix_socket() {
    UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) {
        throw ControlError(fmt::format("unix socket: {}", std::strerror(errno)));
    }
    return fd;
}

bool wait_for(int fd, short events, int timeout_ms) {
    pollfd p{fd, events, 0};
    return poll(&p, 1, timeout_ms) == 1;
}

// Read up to the first newline (requests and answers are one line each).
std::string read_line(int fd, int timeout_ms) {
    std::string out;
    char buf[4096];
    while (out.find('\n') == std::string::npos) {
        if (!wait_for(fd, POLLIN, timeout_ms)) {
            throw ControlError("timed out waiting for the other side");
        }
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0) {
            throw ControlError(fmt::format("read: {}", std::strerror(errno)));
        }
        if (n == 0) {
            break;
        }
        out.append(buf, static_cast<std::size_t>(n));
        if (out.size() > (16u << 20)) {
            throw ControlError("message over 16 MiB");
        }
    }
    return out.substr(0, out.find('\n'));
}

void write_all(int fd, const std::string& s) {
    std::size_t off = 0;
    while (off < s.size()) {
        ssize_t n = send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
        if (n < 0) {
            throw ControlError(fmt::format("write: {}", std::strerror(errno)));
        }
        off += static_cast<std::size_t>(n);
    }
}

} // namespace

ControlServer::ControlServer(std::filesystem::path path) : path_(std::move(path)) {
    std::filesystem::create_directories(path_.parent_path());
    if (std::filesystem::exists(path_)) {
        try {
            request(path_, json{{"command", "ping"}}, 500);
            throw ControlError(fmt::format("another agent answers on {}: is this instance already running?",
                                           path_.string()));
        } catch (const ControlError& e) {
            if (std::string(e.what()).find("another agent") != std::string::npos) {
                throw;
            }
            std::filesystem::remove(path_);   // a dead agent's socket file
        }
    }
    fd_ = unix_socket();
    sockaddr_un sa = address_of(path_);
    if (bind(fd_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) < 0 || listen(fd_.get(), 16) < 0) {
        throw ControlError(fmt::format("control socket {}: {}", path_.string(), std::strerror(errno)));
    }
}

ControlServer::~ControlServer() {
    std::error_code ec;
    std::filesystem::remove(path_, ec);
}

void ControlServer::serve_one(const Handler& handler) {
    UniqueFd c(accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!c) {
        return;
    }
    json answer;
    try {
        std::string line = read_line(c.get(), 1000);
        json req = json::parse(line);
        if (req.value("command", "") == "ping") {
            answer = json{{"ok", true}};
        } else {
            answer = handler(req);
        }
    } catch (const std::exception& e) {
        answer = json{{"error", e.what()}};
    }
    try {
        write_all(c.get(), answer.dump() + "\n");
    } catch (const std::exception& e) {
        spdlog::debug("control client went away: {}", e.what());
    }
}

json request(const std::filesystem::path& path, const json& req, int timeout_ms) {
    UniqueFd fd = unix_socket();
    sockaddr_un sa = address_of(path);
    if (connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) < 0) {
        throw ControlError(fmt::format("no agent at {}: {}", path.string(), std::strerror(errno)));
    }
    write_all(fd.get(), req.dump() + "\n");
    std::string line = read_line(fd.get(), timeout_ms);
    if (line.empty()) {
        throw ControlError(fmt::format("the agent at {} closed without an answer", path.string()));
    }
    json answer = json::parse(line);
    if (answer.contains("error")) {
        throw ControlError(answer["error"].get<std::string>());
    }
    return answer;
}

json sessions_view(const dataplane::SessionTable& sessions) {
    json out = json::array();
    for (const auto& s : sessions.list()) {
        json j = dataplane::to_json(s);
        j["counters"] = dataplane::to_json(sessions.counters(s.id), s.paths.size());
        out.push_back(j);
    }
    return out;
}

json paths_view(const dataplane::SessionTable& sessions) {
    json out = json::array();
    for (const auto& s : sessions.list()) {
        auto c = sessions.counters(s.id);
        for (std::size_t i = 0; i < s.paths.size(); ++i) {
            const auto& p = s.paths[i];
            out.push_back(json{{"session", s.id}, {"bid", p.bid}, {"label", p.label}, {"up", p.up},
                               {"local", to_string(p.local)}, {"remote", to_string(p.remote)},
                               {"key_downlink", p.key_downlink}, {"key_uplink", p.key_uplink},
                               {"encap", dataplane::to_string(s.encap)},
                               {"tx_packets", c.path_tx[i].packets}, {"tx_bytes", c.path_tx[i].bytes},
                               {"rx_packets", c.path_rx[i].packets}, {"rx_bytes", c.path_rx[i].bytes}});
        }
    }
    return out;
}

json stats_view(const dataplane::MapSet& maps) {
    return dataplane::to_json(dataplane::read_counters(maps));
}

json show_from_dataplane(const std::string& what, const dataplane::MapSet& maps, const dataplane::SessionTable& sessions) {
    if (what == "sessions") {
        return sessions_view(sessions);
    }
    if (what == "paths") {
        return paths_view(sessions);
    }
    if (what == "stats") {
        return stats_view(maps);
    }
    if (what == "nexthops") {
        return dataplane::to_json(dataplane::list_next_hops(maps));
    }
    throw ControlError(fmt::format("'{}' is not in the data plane: sessions, paths, nexthops or stats", what));
}

namespace {

std::string cell(const json& v) {
    if (v.is_string()) {
        return v.get<std::string>();
    }
    if (v.is_null()) {
        return "-";
    }
    return v.dump();
}

std::string table(const std::vector<std::string>& head, const std::vector<std::vector<std::string>>& rows) {
    std::vector<std::size_t> w(head.size());
    for (std::size_t i = 0; i < head.size(); ++i) {
        w[i] = head[i].size();
        for (const auto& r : rows) {
            w[i] = std::max(w[i], r[i].size());
        }
    }
    std::ostringstream o;
    auto line = [&](const std::vector<std::string>& r) {
        for (std::size_t i = 0; i < r.size(); ++i) {
            o << r[i] << std::string(w[i] - r[i].size() + (i + 1 < r.size() ? 2 : 0), ' ');
        }
        o << "\n";
    };
    line(head);
    for (const auto& r : rows) {
        line(r);
    }
    return o.str();
}

} // namespace

std::string format_table(const std::string& what, const json& view) {
    std::vector<std::vector<std::string>> rows;
    if (what == "stats") {
        for (auto it = view.begin(); it != view.end(); ++it) {
            rows.push_back({it.key(), cell(it.value())});
        }
        return table({"COUNTER", "VALUE"}, rows);
    }
    if (what == "sessions") {
        for (const auto& s : view) {
            const auto& p = s["paths"].empty() ? json::object() : s["paths"][0];
            rows.push_back({cell(s["id"]), cell(s["encap"]), cell(s["realm"]), cell(s.value("hnp", json())),
                            cell(s.value("hoa", json())), cell(s.value("mn_interface", json())),
                            cell(p.value("remote", json())), cell(p.value("key_downlink", json())),
                            cell(p.value("key_uplink", json())), cell(s["counters"]["uplink"]["packets"]),
                            cell(s["counters"]["downlink"]["packets"])});
        }
        return table({"ID", "ENCAP", "REALM", "HNP", "HOA", "MN-IF", "PEER", "KEY-DOWN", "KEY-UP", "UP-PKTS", "DOWN-PKTS"},
                     rows);
    }
    if (what == "paths") {
        for (const auto& p : view) {
            rows.push_back({cell(p["session"]), cell(p["bid"]), cell(p["label"]), p["up"].get<bool>() ? "up" : "down",
                            cell(p["local"]), cell(p["remote"]), cell(p["encap"]), cell(p["key_downlink"]),
                            cell(p["key_uplink"]), cell(p["tx_packets"]), cell(p["rx_packets"])});
        }
        return table({"SESSION", "BID", "LABEL", "STATE", "LOCAL", "REMOTE", "ENCAP", "KEY-DOWN", "KEY-UP", "TX-PKTS",
                      "RX-PKTS"},
                     rows);
    }
    if (what == "nexthops") {
        for (const auto& h : view) {
            rows.push_back({cell(h["id"]), cell(h["remote"]), cell(h["local"]), cell(h["interface"]),
                            h["resolved"].get<bool>() ? "resolved" : "fib", cell(h["dmac"]), cell(h["mtu"])});
        }
        return table({"ID", "REMOTE", "LOCAL", "EGRESS", "STATE", "NEIGHBOUR-MAC", "MTU"}, rows);
    }
    // bindings: whatever columns the agent gave, in its order.
    if (view.empty()) {
        return "no bindings\n";
    }
    std::vector<std::string> head;
    for (auto it = view[0].begin(); it != view[0].end(); ++it) {
        head.push_back(it.key());
    }
    for (const auto& b : view) {
        std::vector<std::string> r;
        for (const auto& k : head) {
            r.push_back(cell(b.value(k, json())));
        }
        rows.push_back(r);
    }
    for (auto& h : head) {
        for (auto& ch : h) {
            ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        }
    }
    return table(head, rows);
}

} // namespace xpmip::control
