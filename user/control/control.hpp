// The agent's control socket: a Unix stream socket under /run/xpmip/, one JSON request line in,
// one JSON answer line out. `xpmip show|attach|detach` are its clients.
#pragma once

#include "common/fd.hpp"
#include "dataplane/maps.hpp"
#include "dataplane/session_table.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
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

class ControlServer {
public:
    using Handler = std::function<nlohmann::json(const nlohmann::json& request)>;
    // Binds (replacing a stale socket file of a dead agent; refusing a live one's).
    explicit ControlServer(std::filesystem::path path);
    ~ControlServer();
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    int fd() const { return fd_.get(); }
    // Accept one client, answer its request with `handler` (errors become {"error": ...}).
    void serve_one(const Handler& handler);

private:
    std::filesystem::path path_;
    UniqueFd fd_;
};

// Send a request to a running agent. Throws ControlError when no agent answers at `path`.
nlohmann::json request(const std::filesystem::path& path, const nlohmann::json& req, int timeout_ms = 5000);

// Views of the data plane shared by the agent and by `show` without an agent (pinned maps).
nlohmann::json sessions_view(const dataplane::SessionTable& sessions);
nlohmann::json paths_view(const dataplane::SessionTable& sessions);
nlohmann::json stats_view(const dataplane::MapSet& maps);
nlohmann::json show_from_dataplane(const std::string& what, const dataplane::MapSet& maps,
                                   const dataplane::SessionTable& sessions);   // sessions|paths|stats

// Human-readable tables of the views (`show` without --json).
std::string format_table(const std::string& what, const nlohmann::json& view);

} // namespace xpmip::control
