#include "control/control.hpp"

#include "dataplane/json.hpp"
#include "dataplane/stats.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

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

// The I/O thread's side: clients by fd, each reading its request, waiting for its answer, or
// writing it. Requests go to the event loop through `requests` (and `to_loop` readable), answers
// come back through `answers` (and `to_io` readable).
struct ControlServer::Io {
    using Clock = std::chrono::steady_clock;
    struct Client {
        UniqueFd fd;
        std::string in;
        std::string out;
        std::size_t written = 0;
        bool waiting = false;                    // the request is with the event loop
        Clock::time_point deadline;
    };
    struct Request {
        std::uint64_t client;
        std::string line;
    };

    ControlLimits limits;
    UniqueFd listener;
    UniqueFd to_loop{eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
    UniqueFd to_io{eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
    std::mutex mutex;
    std::deque<Request> requests;
    std::deque<std::pair<std::uint64_t, std::string>> answers;
    bool stop = false;
    std::map<std::uint64_t, Client> clients;     // the I/O thread's only
    std::uint64_t next_id = 1;
    std::thread thread;

    static void signal(int efd) {
        const std::uint64_t one = 1;
        [[maybe_unused]] auto n = write(efd, &one, sizeof one);
    }
    static void drain(int efd) {
        std::uint64_t v;
        [[maybe_unused]] auto n = read(efd, &v, sizeof v);
    }

    void accept_clients() {
        for (;;) {
            UniqueFd c(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
            if (!c) {
                return;
            }
            if (clients.size() >= limits.max_clients) {
                const std::string busy = json{{"error", fmt::format("the agent serves {} control clients at once: "
                                                                    "try again", limits.max_clients)}}.dump() + "\n";
                [[maybe_unused]] auto n = send(c.get(), busy.data(), busy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
                continue;
            }
            Client cl{std::move(c), {}, {}, 0, false, Clock::now() + limits.request_timeout};
            clients.emplace(next_id++, std::move(cl));
        }
    }

    // False when the client is done with (closed, failed or finished).
    bool read_request(std::uint64_t id, Client& c) {
        char buf[4096];
        for (;;) {
            const ssize_t n = read(c.fd.get(), buf, sizeof buf);
            if (n == 0) {
                return false;
            }
            if (n < 0) {
                return errno == EAGAIN || errno == EINTR;
            }
            c.in.append(buf, static_cast<std::size_t>(n));
            if (const auto nl = c.in.find('\n'); nl != std::string::npos) {
                c.in.resize(nl);
                return hand_over(id, c);
            }
            if (c.in.size() > limits.max_request) {
                c.out = json{{"error", fmt::format("request over {} octets", limits.max_request)}}.dump() + "\n";
                c.deadline = Clock::now() + limits.answer_timeout;
                return true;
            }
        }
    }

    bool hand_over(std::uint64_t id, Client& c) {
        try {
            if (json::parse(c.in).value("command", "") == "ping") {
                c.out = json{{"ok", true}}.dump() + "\n";
                c.deadline = Clock::now() + limits.answer_timeout;
                return true;
            }
        } catch (const std::exception&) {
            // the event loop's handler says what is wrong with it
        }
        c.waiting = true;
        {
            std::lock_guard lock(mutex);
            requests.push_back({id, std::move(c.in)});
        }
        signal(to_loop.get());
        return true;
    }

    bool write_answer(Client& c) {
        while (c.written < c.out.size()) {
            const ssize_t n = send(c.fd.get(), c.out.data() + c.written, c.out.size() - c.written,
                                   MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0) {
                return errno == EAGAIN || errno == EINTR;
            }
            c.written += static_cast<std::size_t>(n);
        }
        return false;   // all written: done
    }

    void take_answers() {
        drain(to_io.get());
        std::deque<std::pair<std::uint64_t, std::string>> ready;
        {
            std::lock_guard lock(mutex);
            ready.swap(answers);
        }
        for (auto& [id, text] : ready) {
            auto it = clients.find(id);
            if (it == clients.end()) {
                continue;   // it went away meanwhile
            }
            it->second.waiting = false;
            it->second.out = std::move(text);
            it->second.deadline = Clock::now() + limits.answer_timeout;
        }
    }

    void run() {
        std::vector<pollfd> fds;
        std::vector<std::uint64_t> ids;
        for (;;) {
            {
                std::lock_guard lock(mutex);
                if (stop) {
                    return;
                }
            }
            fds.assign({{listener.get(), POLLIN, 0}, {to_io.get(), POLLIN, 0}});
            ids.clear();
            const auto now = Clock::now();
            int wait = 1000;
            for (auto it = clients.begin(); it != clients.end();) {
                auto& c = it->second;
                if (!c.waiting && now >= c.deadline) {
                    spdlog::debug("control client {}: {} timed out, closed", it->first,
                                  c.out.empty() ? "sending its request" : "reading its answer");
                    it = clients.erase(it);
                    continue;
                }
                if (!c.waiting) {
                    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(c.deadline - now).count();
                    wait = std::min<int>(wait, static_cast<int>(std::max<long>(left, 1)));
                    fds.push_back({c.fd.get(), static_cast<short>(c.out.empty() ? POLLIN : POLLOUT), 0});
                    ids.push_back(it->first);
                }
                ++it;
            }
            if (poll(fds.data(), fds.size(), wait) < 0 && errno != EINTR) {
                spdlog::error("control socket: poll: {}", std::strerror(errno));
                return;
            }
            if (fds[1].revents & POLLIN) {
                take_answers();
            }
            for (std::size_t i = 2; i < fds.size(); ++i) {
                if (!fds[i].revents) {
                    continue;
                }
                auto it = clients.find(ids[i - 2]);
                const bool reading = it->second.out.empty();
                const bool keep = (fds[i].revents & (POLLERR | POLLNVAL)) == 0 &&
                                  (reading ? read_request(it->first, it->second) : write_answer(it->second));
                if (!keep && !it->second.waiting) {
                    clients.erase(it);
                }
            }
            if (fds[0].revents & POLLIN) {
                accept_clients();
            }
        }
    }
};

ControlServer::ControlServer(std::filesystem::path path, ControlLimits limits) : path_(std::move(path)) {
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
    io_ = std::make_unique<Io>();
    io_->limits = limits;
    io_->listener.reset(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    sockaddr_un sa = address_of(path_);
    if (!io_->listener || !io_->to_loop || !io_->to_io ||
        bind(io_->listener.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) < 0 ||
        listen(io_->listener.get(), 64) < 0) {
        throw ControlError(fmt::format("control socket {}: {}", path_.string(), std::strerror(errno)));
    }
    io_->thread = std::thread([io = io_.get()] { io->run(); });
}

ControlServer::~ControlServer() {
    {
        std::lock_guard lock(io_->mutex);
        io_->stop = true;
    }
    Io::signal(io_->to_io.get());
    io_->thread.join();
    std::error_code ec;
    std::filesystem::remove(path_, ec);
}

int ControlServer::fd() const { return io_->to_loop.get(); }

void ControlServer::serve_pending(const Handler& handler) {
    Io::drain(io_->to_loop.get());
    std::deque<Io::Request> pending;
    {
        std::lock_guard lock(io_->mutex);
        pending.swap(io_->requests);
    }
    std::deque<std::pair<std::uint64_t, std::string>> done;
    for (auto& r : pending) {
        json answer;
        try {
            answer = handler(json::parse(r.line));
        } catch (const std::exception& e) {
            answer = json{{"error", e.what()}};
        }
        done.emplace_back(r.client, answer.dump() + "\n");
    }
    {
        std::lock_guard lock(io_->mutex);
        for (auto& d : done) {
            io_->answers.push_back(std::move(d));
        }
    }
    Io::signal(io_->to_io.get());
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

PageRequest page_request(const json& req) {
    PageRequest p;
    if (req.contains("after")) {
        p.after = req["after"];
    }
    if (req.contains("limit")) {
        const auto& l = req["limit"];
        if (!l.is_number_unsigned() || l.get<std::size_t>() == 0 || l.get<std::size_t>() > kMaxPage) {
            throw ControlError(fmt::format("limit: {} is not 1-{}", l.dump(), kMaxPage));
        }
        p.limit = l.get<std::size_t>();
    }
    return p;
}

namespace {

std::uint32_t session_cursor(const PageRequest& page) {
    if (page.after.is_null()) {
        return 0;
    }
    if (!page.after.is_number_unsigned() || page.after.get<std::uint64_t>() > 0xffffffffu) {
        throw ControlError(fmt::format("after: {} is not a session id", page.after.dump()));
    }
    return page.after.get<std::uint32_t>();
}

json page_of(json result, json next) { return json{{"result", std::move(result)}, {"next", std::move(next)}}; }

} // namespace

json sessions_view(const dataplane::SessionTable& sessions, const PageRequest& page) {
    json out = json::array();
    const auto list = sessions.list_page(session_cursor(page), page.limit);
    for (const auto& s : list) {
        json j = dataplane::to_json(s);
        j["counters"] = dataplane::to_json(sessions.counters(s.id), s.paths.size());
        out.push_back(j);
    }
    return page_of(out, list.size() == page.limit ? json(list.back().id) : json());
}

json paths_view(const dataplane::SessionTable& sessions, const PageRequest& page) {
    json out = json::array();
    const auto list = sessions.list_page(session_cursor(page), page.limit);
    for (const auto& s : list) {
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
    return page_of(out, list.size() == page.limit ? json(list.back().id) : json());
}

json stats_view(const dataplane::MapSet& maps) {
    return dataplane::to_json(dataplane::read_counters(maps));
}

json show_from_dataplane(const std::string& what, const dataplane::MapSet& maps, const dataplane::SessionTable& sessions,
                         const PageRequest& page) {
    if (what == "sessions") {
        return sessions_view(sessions, page);
    }
    if (what == "paths") {
        return paths_view(sessions, page);
    }
    if (what == "stats") {
        return page_of(stats_view(maps), nullptr);
    }
    if (what == "nexthops") {
        return page_of(dataplane::to_json(dataplane::list_next_hops(maps)), nullptr);   // at most limits.nexthops
    }
    throw ControlError(fmt::format("'{}' is not in the data plane: sessions, paths, nexthops or stats", what));
}

json all_pages(const std::function<json(const json& after)>& fetch) {
    json after;
    json out;
    for (;;) {
        json page = fetch(after);
        json& result = page["result"];
        if (!result.is_array()) {
            return result;   // stats: one object
        }
        if (out.is_null()) {
            out = json::array();
        }
        for (auto& r : result) {
            out.push_back(std::move(r));
        }
        if (page["next"].is_null()) {
            return out;
        }
        after = page["next"];
    }
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
    if (what == "peers") {
        for (const auto& p : view) {
            std::vector<std::string> addrs, hb, statuses;
            for (const auto& a : p["addresses"]) {
                addrs.push_back(a.get<std::string>());
            }
            for (const auto& h : p["heartbeat"]) {
                hb.push_back(h["address"].get<std::string>() + " " + h["state"].get<std::string>() +
                             (h["restart_counter"].is_null() ? "" : " rc " + cell(h["restart_counter"])));
            }
            for (auto it = p["pba_status"].begin(); it != p["pba_status"].end(); ++it) {
                statuses.push_back(it.key() + ":" + cell(it.value()));
            }
            const auto& ago = p["last_heard_s_ago"];
            rows.push_back({cell(p["peer"]), fmt::format("{}", fmt::join(addrs, ",")), cell(p["bindings"]),
                            ago.is_null() ? "-" : fmt::format("{:.1f}s ago", ago.get<double>()),
                            hb.empty() ? "-" : fmt::format("{}", fmt::join(hb, "; ")),
                            statuses.empty() ? "-" : fmt::format("{}", fmt::join(statuses, " "))});
        }
        return table({"PEER", "ADDRESSES", "BINDINGS", "LAST-HEARD", "HEARTBEAT", "PBA-STATUS"}, rows);
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
