// xpmip: the one agent binary. `xpmip lma -c lma.yaml` runs a local mobility anchor in the
// foreground (systemd-friendly: logs to stderr, stops cleanly on SIGTERM, re-reads its policy
// on SIGHUP); `xpmip check-config` validates a configuration without touching the system.
#include "config/yaml_reader.hpp"
#include "lma/lma_config.hpp"
#include "lma/lma_daemon.hpp"
#include "mag/mag_config.hpp"
#include "mag/mag_daemon.hpp"

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <iostream>

int main(int argc, char** argv) {
    CLI::App app{"xpmip - Proxy Mobile IPv6 gateway (LMA and MAG) with an eBPF/XDP data plane"};
    app.require_subcommand(1);

    xpmip::lma::LmaRunOptions lma_opts;
    auto* lma = app.add_subcommand(
        "lma", "Run a local mobility anchor in the foreground: load and attach the data plane, answer PBUs "
               "over IPv6 (Mobility Header) and IPv4/UDP 5436, keep the binding cache. SIGTERM/SIGINT stop it "
               "(the data plane is unloaded unless --keep-dataplane), SIGHUP re-reads peers, mobile nodes, "
               "policies and timers from the file.");
    lma->add_option("-c,--config", lma_opts.config_file, "YAML configuration file (see examples/lma.yaml)")
        ->required()
        ->check(CLI::ExistingFile);
    lma->add_flag("--keep-dataplane", lma_opts.keep_dataplane,
                  "leave the maps and programs pinned under /sys/fs/bpf/xpmip/<instance> at exit");

    xpmip::mag::MagRunOptions mag_opts;
    auto* mag = app.add_subcommand(
        "mag", "Run a mobile access gateway in the foreground: load and attach the data plane, register its "
               "mobile nodes with the LMA (PBUs over IPv6, or IPv4/UDP 5436 when the LMA address is IPv4), "
               "refresh and retransmit, attach dynamic MNs when their MAC shows up on an access link, detach "
               "idle ones. SIGTERM/SIGINT de-register every MN and stop.");
    mag->add_option("-c,--config", mag_opts.config_file, "YAML configuration file (see examples/mag.yaml)")
        ->required()
        ->check(CLI::ExistingFile);
    mag->add_flag("--keep-dataplane", mag_opts.keep_dataplane,
                  "leave the maps and programs pinned under /sys/fs/bpf/xpmip/<instance> at exit");

    std::string check_file;
    std::string check_role = "lma";
    auto* check = app.add_subcommand("check-config", "Validate a configuration file and exit (0: valid, 2: not)");
    check->add_option("file", check_file, "YAML configuration file")->required();
    check->add_option("--role", check_role, "lma or mag")->check(CLI::IsMember({"lma", "mag"}))->capture_default_str();

    CLI11_PARSE(app, argc, argv);
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
    try {
        if (*lma) {
            return xpmip::lma::run_lma(lma_opts);
        }
        if (*mag) {
            return xpmip::mag::run_mag(mag_opts);
        }
        if (*check && check_role == "mag") {
            auto cfg = xpmip::mag::load_mag_config(check_file);
            std::cout << check_file << ": valid MAG configuration (LMA " << xpmip::to_string(cfg.lma) << ", "
                      << cfg.mobile_nodes.size() << " mobile node(s))\n";
            return 0;
        }
        if (*check) {
            auto cfg = xpmip::lma::load_lma_config(check_file);
            std::cout << check_file << ": valid LMA configuration (" << cfg.realms.size() << " realm(s), "
                      << cfg.peers.size() << " peer(s), " << cfg.mobile_nodes.size() << " mobile node(s))\n";
            return 0;
        }
    } catch (const xpmip::config::ConfigError& e) {
        std::cerr << "xpmip: configuration error: " << e.what() << "\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "xpmip: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
