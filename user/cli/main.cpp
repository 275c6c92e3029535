// xpmip: the one agent binary. `xpmip lma -c lma.yaml` runs a local mobility anchor in the
// foreground (systemd-friendly: logs to stderr, stops cleanly on SIGTERM, re-reads its policy
// on SIGHUP); `xpmip check-config` validates a configuration without touching the system.
#include "cli/subscribers_cmd.hpp"
#include "config/yaml_reader.hpp"
#include "control/control.hpp"
#include "dataplane/dataplane.hpp"
#include "lab/lab.hpp"
#include "lma/lma_config.hpp"
#include "lma/lma_daemon.hpp"
#include "mag/mag_config.hpp"
#include "mag/mag_daemon.hpp"

#include "xpmip_version.hpp"

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <iostream>

namespace {

// A configuration file's role: its top-level `lma:` or `mag:` section.
std::string role_of_config(const std::string& file) {
    auto root = xpmip::config::load_file(file);
    const bool lma = root.has("lma"), mag = root.has("mag");
    if (lma == mag) {
        throw xpmip::config::ConfigError(
            file + (lma ? ": has both an `lma:` and a `mag:` section" : ": has neither an `lma:` nor a `mag:` section") +
            ": cannot tell its role (use --role lma|mag)");
    }
    return lma ? "lma" : "mag";
}

// What the command line asked for: one subcommand and its options.
struct Command {
    xpmip::lma::LmaRunOptions lma;
    xpmip::mag::MagRunOptions mag;
    xpmip::lab::LabOptions lab;
    std::string check_file, check_role;
    std::string show_what, instance, instance_config, mn, show_mn;
    std::size_t show_page = 1000;
    bool as_json = false;
    CLI::App* lma_cmd = nullptr;
    CLI::App* mag_cmd = nullptr;
    CLI::App* check_cmd = nullptr;
    CLI::App* show_cmd = nullptr;
    CLI::App* attach_cmd = nullptr;
    CLI::App* detach_cmd = nullptr;
    CLI::App* revoke_cmd = nullptr;
    std::string revoke_mn, revoke_peer;
    bool revoke_all = false;
    int revoke_trigger = -1;
    CLI::App* lab_cmd = nullptr;
    std::shared_ptr<xpmip::cli::SubscribersCommand> subscribers;
};

void add_agent_commands(CLI::App& app, Command& c) {
    c.lma_cmd = app.add_subcommand(
        "lma", "Run a local mobility anchor in the foreground: load and attach the data plane, answer PBUs "
               "over IPv6 (Mobility Header) and IPv4/UDP 5436, keep the binding cache (journaled: a restart "
               "brings it back). SIGTERM/SIGINT stop it "
               "(the data plane is unloaded unless --keep-dataplane), SIGHUP re-reads peers, mobile nodes, "
               "policies and timers from the file.");
    c.lma_cmd->add_option("-c,--config", c.lma.config_file, "YAML configuration file (see examples/lma.yaml)")
        ->required()
        ->check(CLI::ExistingFile);
    c.lma_cmd->add_flag("--keep-dataplane", c.lma.keep_dataplane,
                        "leave the maps and programs pinned under /sys/fs/bpf/xpmip/<instance> at exit");
    c.mag_cmd = app.add_subcommand(
        "mag", "Run a mobile access gateway in the foreground: load and attach the data plane, register its "
               "mobile nodes with the LMA (PBUs over IPv6, or IPv4/UDP 5436 when the LMA address is IPv4), "
               "refresh and retransmit, attach dynamic MNs when their MAC shows up on an access link, detach "
               "idle ones. SIGTERM/SIGINT de-register every MN (resent until answered, for at most "
               "timers.shutdown_timeout) and stop; a restart brings its MNs back from its journal.");
    c.mag_cmd->add_option("-c,--config", c.mag.config_file, "YAML configuration file (see examples/mag.yaml)")
        ->required()
        ->check(CLI::ExistingFile);
    c.mag_cmd->add_flag("--keep-dataplane", c.mag.keep_dataplane,
                        "leave the maps and programs pinned under /sys/fs/bpf/xpmip/<instance> at exit");
    c.check_cmd = app.add_subcommand("check-config", "Validate a configuration file and exit (0: valid, 2: not)");
    c.check_cmd->add_option("file", c.check_file, "YAML configuration file")->required();
    c.check_cmd
        ->add_option("--role", c.check_role,
                     "lma or mag (default: the file's own, from its top-level `lma:` or `mag:` section)")
        ->check(CLI::IsMember({"lma", "mag"}));
}

// Inspection and control of a running agent (over its control socket), or of the pinned maps when
// no agent runs; and the lab.
void add_tool_commands(CLI::App& app, Command& c) {
    c.show_cmd = app.add_subcommand(
        "show", "Show an agent's state: sessions (data plane sessions with counters), bindings (the LMA's "
                "binding cache or the MAG's binding update list), paths (per path, with counters), nexthops "
                "(the tunnel peers' resolved next hops) or stats (drops and events by reason). Asks the running "
                "agent; all but bindings are read from the pinned maps when it is not running.");
    c.show_cmd->add_option("what", c.show_what, "sessions, bindings, paths, nexthops or stats")
        ->required()
        ->check(CLI::IsMember({"sessions", "bindings", "paths", "nexthops", "stats", "peers"}));
    c.show_cmd->add_flag("--json", c.as_json, "JSON instead of a table");
    c.show_cmd->add_option("--mn", c.show_mn, "bindings: only this MN-ID's entry (one lookup, however many there are)");
    c.show_cmd->add_option("--page", c.show_page,
                           "entries per request to the agent (it answers each in one short step between "
                           "signaling messages)")
        ->check(CLI::Range(std::size_t{1}, xpmip::control::kMaxPage));
    c.attach_cmd = app.add_subcommand("attach", "Ask a running MAG to register a configured mobile node now");
    c.detach_cmd = app.add_subcommand("detach", "Ask a running MAG to de-register a mobile node and stop serving it");
    c.revoke_cmd = app.add_subcommand(
        "revoke", "Ask a running LMA to revoke bindings (RFC 5846): a Binding Revocation Indication to the MAG, "
                  "the bindings removed when it acknowledges (or after the last retransmission)");
    auto* scope = c.revoke_cmd->add_option_group("what", "what to revoke");
    scope->add_option("--mn", c.revoke_mn, "one MN's binding (a per-MN BRI with its MN-ID and prefix)");
    scope->add_option("--peer", c.revoke_peer, "every binding of one configured MAG (a global BRI, G set)");
    scope->add_flag("--all", c.revoke_all, "every binding (a global BRI to each MAG with bindings)");
    scope->require_option(1);
    c.revoke_cmd
        ->add_option("--trigger", c.revoke_trigger,
                     "Revocation Trigger (RFC 5846 §5.1): default 1 (Administrative Reason) for --mn, 128 "
                     "(Per-Peer Policy) for --peer and --all")
        ->check(CLI::Range(0, 255));
    c.revoke_cmd->add_flag("--json", c.as_json, "the agent's answer as JSON");
    for (auto* sub : {c.show_cmd, c.attach_cmd, c.detach_cmd, c.revoke_cmd}) {
        sub->add_option("-i,--instance", c.instance, "the agent's instance name (its 'instance' setting)");
        sub->add_option("-c,--config", c.instance_config, "or the agent's configuration file, to take the instance from")
            ->check(CLI::ExistingFile);
    }
    c.attach_cmd->add_option("mn", c.mn, "MN-ID as configured")->required();
    c.detach_cmd->add_option("mn", c.mn, "MN-ID as configured")->required();
    c.lab_cmd = app.add_subcommand(
        "lab", "The RFC 5845 Figure 1 lab in network namespaces on this host: two operators whose mobile nodes' "
               "IPv4 addresses overlap, one MAG with two WAN links, one LMA, one correspondent network per "
               "operator. up: build it and start the agents; status: what is up and the session table; down: "
               "remove everything; demo: up, register, traffic from every MN to its operator's CN, tables, down.");
    c.lab_cmd->add_option("action", c.lab.action, "up, down, status or demo")
        ->required()
        ->check(CLI::IsMember({"up", "down", "status", "demo"}));
    c.lab_cmd->add_option("extra", c.lab.extra, "options of the action (see xpmip lab ACTION --help)");
}

int show_or_control(Command& c) {
    if (c.instance.empty() && !c.instance_config.empty()) {
        c.instance = xpmip::config::load_file(c.instance_config).opt_str("instance").value_or("");
    }
    if (c.instance.empty()) {
        std::cerr << "xpmip: name the agent with -i INSTANCE or -c CONFIG\n";
        return 2;
    }
    const auto sock = xpmip::control::socket_path(c.instance);
    if (*c.attach_cmd || *c.detach_cmd) {
        auto answer = xpmip::control::request(sock, {{"command", *c.attach_cmd ? "attach" : "detach"}, {"mn", c.mn}});
        std::cout << answer["result"].get<std::string>() << "\n";
        return 0;
    }
    if (*c.revoke_cmd) {
        nlohmann::json req{{"command", "revoke"},
                           {"scope", !c.revoke_mn.empty() ? "mn" : !c.revoke_peer.empty() ? "peer" : "all"},
                           {"target", !c.revoke_mn.empty() ? c.revoke_mn : c.revoke_peer}};
        if (c.revoke_trigger >= 0) {
            req["trigger"] = c.revoke_trigger;
        }
        auto answer = xpmip::control::request(sock, req);
        if (c.as_json) {
            std::cout << answer.dump(2) << "\n";
            return 0;
        }
        std::cout << answer["result"].get<std::string>() << "\n";
        for (const auto& b : answer["bris"]) {
            std::cout << "  BRI " << b["sequence"].get<int>() << " to " << b["to"].get<std::string>() << ": "
                      << b["bindings"].get<std::size_t>() << " binding(s)\n";
        }
        return 0;
    }
    if (!c.show_mn.empty() && c.show_what != "bindings") {
        std::cerr << "xpmip: --mn selects a binding: show bindings --mn ID\n";
        return 2;
    }
    nlohmann::json view;
    try {
        view = xpmip::control::all_pages([&](const nlohmann::json& after) {
            nlohmann::json req{{"command", "show"}, {"what", c.show_what}, {"limit", c.show_page}};
            if (!after.is_null()) {
                req["after"] = after;
            }
            if (!c.show_mn.empty()) {
                req["mn"] = c.show_mn;
            }
            return xpmip::control::request(sock, req);
        });
    } catch (const xpmip::control::ControlError& e) {
        if (std::string(e.what()).rfind("no agent", 0) != 0) {
            throw;
        }
        if (c.show_what == "bindings") {
            std::cerr << "xpmip: " << e.what() << ": bindings live in the agent (sessions, paths and stats "
                      << "can be read from the pinned maps without it)\n";
            return 1;
        }
        auto pinned = xpmip::dataplane::open_pinned(c.instance);
        const auto sessions = pinned.sessions();
        view = xpmip::control::all_pages([&](const nlohmann::json& after) {
            return xpmip::control::show_from_dataplane(c.show_what, pinned.maps, sessions,
                                                       {.after = after, .limit = c.show_page});
        });
    }
    std::cout << (c.as_json ? view.dump(2) + "\n" : xpmip::control::format_table(c.show_what, view));
    return 0;
}

int check_config(Command& c) {
    if (c.check_role.empty()) {
        c.check_role = role_of_config(c.check_file);
    }
    if (c.check_role == "mag") {
        auto cfg = xpmip::mag::load_mag_config(c.check_file);
        std::cout << c.check_file << ": valid MAG configuration (LMA " << xpmip::to_string(cfg.lma) << ", "
                  << cfg.wans.size() << " WAN path(s)" << (cfg.multipath() ? " (multipath)" : "") << ", "
                  << cfg.steering.policy.rules.size() << " steering rule(s), " << cfg.mobile_nodes.size()
                  << " mobile node(s))\n";
        return 0;
    }
    auto cfg = xpmip::lma::load_lma_config(c.check_file);
    std::cout << c.check_file << ": valid LMA configuration (" << cfg.realms.size() << " realm(s), " << cfg.peers.size()
              << " peer(s), " << cfg.mobile_nodes.size() << " mobile node(s), " << cfg.mobile_node_domains.size()
              << " mobile node domain(s), multipath " << (cfg.multipath ? "on" : "off") << ", "
              << cfg.steering.policy.rules.size() << " steering rule(s))\n";
    return 0;
}

int dispatch(Command& c) {
    if (*c.lma_cmd) {
        return xpmip::lma::run_lma(c.lma);
    }
    if (*c.mag_cmd) {
        return xpmip::mag::run_mag(c.mag);
    }
    if (*c.lab_cmd) {
        c.lab.xpmip_binary = "/proc/self/exe";
        return xpmip::lab::lab_main(c.lab);
    }
    if (*c.show_cmd || *c.attach_cmd || *c.detach_cmd || *c.revoke_cmd) {
        return show_or_control(c);
    }
    if (xpmip::cli::subscribers_requested(*c.subscribers)) {
        return xpmip::cli::run_subscribers(*c.subscribers);
    }
    return check_config(c);
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"xpmip - Proxy Mobile IPv6 gateway (LMA and MAG) with an eBPF/XDP data plane"};
    app.require_subcommand(1);
    app.set_version_flag("--version", std::string("xpmip ") + XPMIP_VERSION + " (git " + XPMIP_GIT_COMMIT + ")");
    Command c;
    add_agent_commands(app, c);
    add_tool_commands(app, c);
    c.subscribers = xpmip::cli::add_subscribers_command(app);
    CLI11_PARSE(app, argc, argv);
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
    try {
        return dispatch(c);
    } catch (const xpmip::config::ConfigError& e) {
        std::cerr << "xpmip: configuration error: " << e.what() << "\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "xpmip: " << e.what() << "\n";
        return 1;
    }
}
