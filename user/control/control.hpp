// The agent's control socket: a Unix stream socket under /run/xpmip/, one JSON request line in,
// one JSON answer line out. `xpmip show|attach|detach` are its clients.
#pragma once

#include "common/fd.hpp"
#include "dataplane/maps.hpp"
#include "dataplane/session_table.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <functional>
#include <iterator>
#include <stdexcept>
#include <string>

namespace xpmip::control {

class ControlError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

std::filesystem::path socket_path(const std::string& instance);

// An optional value as JSON: the value (strings for addresses and prefixes), or null.
template <class T>
nlohmann::json json_or_null(const std::optional<T>& v) {
    if (!v) {
        return nullptr;
    }
    if constexpr (requires { v->to_string(); }) {
        return v->to_string();
    } else {
        return *v;
    }
}

// Served off the event loop: a thread of its own accepts clients, reads their request lines and
// writes the answers, all non-blocking with per-client deadlines and a limit on clients; only
// complete requests reach the event loop (queued, with fd() readable), which answers each from
// its own state in one bounded step (views are paged). A client that sends slowly, reads
// nothing or never closes costs the event loop nothing (README "Control socket").
struct ControlLimits {
    unsigned max_clients = 16;                       // beyond: answered with an error and closed
    std::chrono::milliseconds request_timeout{5000};  // to send the whole request line
    std::chrono::milliseconds answer_timeout{30000};  // to read the whole answer
    std::size_t max_request = 64 * 1024;
};

class ControlServer {
public:
    using Handler = std::function<nlohmann::json(const nlohmann::json& request)>;
    // Binds (replacing a stale socket file of a dead agent; refusing a live one's).
    explicit ControlServer(std::filesystem::path path, ControlLimits limits = {});
    ~ControlServer();
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    // Readable when requests wait for serve_pending().
    int fd() const;
    // Answer every waiting request with `handler` (errors become {"error": ...}).
    void serve_pending(const Handler& handler);

private:
    struct Io;
    std::filesystem::path path_;
    std::unique_ptr<Io> io_;
};

// Paging of the views (`xpmip show` asks page by page): {"after": cursor, "limit": n}.
struct PageRequest {
    nlohmann::json after;          // null: from the start; else the last key of the previous page
    std::size_t limit = 1000;
};
PageRequest page_request(const nlohmann::json& req);   // throws ControlError naming a bad field
inline constexpr std::size_t kMaxPage = 10000;

// Send a request to a running agent. Throws ControlError when no agent answers at `path`.
nlohmann::json request(const std::filesystem::path& path, const nlohmann::json& req, int timeout_ms = 5000);

// Views of the data plane shared by the agent and by `show` without an agent (pinned maps).
// Answers are {"result": [...], "next": cursor or null}; sessions and paths page by session id.
nlohmann::json sessions_view(const dataplane::SessionTable& sessions, const PageRequest& page = {});
nlohmann::json paths_view(const dataplane::SessionTable& sessions, const PageRequest& page = {});
nlohmann::json stats_view(const dataplane::MapSet& maps);
nlohmann::json show_from_dataplane(const std::string& what, const dataplane::MapSet& maps,
                                   const dataplane::SessionTable& sessions,
                                   const PageRequest& page = {});   // sessions|paths|nexthops|stats
// Every page of a view from `fetch(after)` (a page answer as above) into one array.
nlohmann::json all_pages(const std::function<nlohmann::json(const nlohmann::json& after)>& fetch);

// A page of a map keyed by MN-ID (the LMA's binding cache, the MAG's binding update list): the
// entry of `mn` alone when given, else up to page.limit entries after page.after, in key order;
// `view(id, entry)` renders one. `next` is the last id of a full page with more after it.
template <class Entries, class View>
nlohmann::json mn_page(const Entries& entries, const PageRequest& page, const std::optional<std::string>& mn,
                       View view) {
    nlohmann::json out = nlohmann::json::array();
    if (mn) {
        if (auto it = entries.find(*mn); it != entries.end()) {
            out.push_back(view(it->first, it->second));
        }
        return {{"result", out}, {"next", nullptr}};
    }
    if (!page.after.is_null() && !page.after.is_string()) {
        throw ControlError("after: " + page.after.dump() + " is not an MN-ID");
    }
    auto it = page.after.is_null() ? entries.begin() : entries.upper_bound(page.after.get<std::string>());
    for (; it != entries.end() && out.size() < page.limit; ++it) {
        out.push_back(view(it->first, it->second));
    }
    return {{"result", out},
            {"next", it != entries.end() && !out.empty() ? nlohmann::json(std::prev(it)->first) : nullptr}};
}

// Human-readable tables of the views (`show` without --json).
std::string format_table(const std::string& what, const nlohmann::json& view);

} // namespace xpmip::control
