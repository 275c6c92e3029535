#include "cli/subscribers_cmd.hpp"

#include "lma/lma_config.hpp"
#include "lma/subscriber_import.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>

namespace xpmip::cli {

struct SubscribersCommand {
    CLI::App* root = nullptr;
    CLI::App* import_cmd = nullptr;
    CLI::App* add_cmd = nullptr;
    CLI::App* remove_cmd = nullptr;
    CLI::App* show_cmd = nullptr;
    std::string config_file, file, format, after;
    bool replace = false, as_json = false;
    std::size_t limit = 100;
    std::vector<std::string> ids;
    lma::SubscriberFields fields;   // add: the profile's fields as given
};

namespace {

// `add` takes each field of a record as an option of the same name (dashes for underscores).
void add_field_options(CLI::App* add, SubscribersCommand& c) {
    const std::vector<std::pair<std::string, std::string>> options = {
        {"id", "MN-ID (NAI), required"},
        {"realm", "realm id from the configuration's realms, required"},
        {"ipv4", "authorized for an IPv4 home address (true|false, default true)"},
        {"ipv6", "authorized for an IPv6 home network prefix (true|false, default true)"},
        {"ipv4_home_address", "static IPv4 home address (else from the realm's pool)"},
        {"home_network_prefix", "static home network prefix (else from the realm's pool)"},
        {"gre", "GRE policy: allowed, not-required, unsupported, gre-required, keys-required"},
        {"tlv_header", "RFC 5845 TLV-header UDP format (true|false)"},
        {"udp_encapsulation", "RFC 5844 forced UDP encapsulation accepted (true|false)"},
        {"multipath", "RFC 8278 several bindings (true|false, default true)"},
    };
    for (const auto& [field, help] : options) {
        std::string flag = "--" + field;
        std::replace(flag.begin(), flag.end(), '_', '-');
        add->add_option_function<std::string>(
               flag, [&c, field = field](const std::string& v) { c.fields.emplace_back(field, v); }, help)
            ->required(field == "id" || field == "realm");
    }
}

lma::LmaConfig load_config(const SubscribersCommand& c) {
    auto cfg = lma::load_lma_config(c.config_file);
    if (!cfg.subscriber_store) {
        throw std::invalid_argument(fmt::format("{}: has no subscriber_store: set it to the store's file "
                                                "(e.g. /var/lib/xpmip/subscribers.lmdb)", c.config_file));
    }
    return cfg;
}

int run_import(SubscribersCommand& c, const lma::LmaConfig& cfg, lma::SubscriberStore& store) {
    lma::ImportOptions o;
    o.replace = c.replace;
    o.format = c.format.empty() ? lma::subscriber_format_of(c.file)
                                : (c.format == "csv" ? lma::SubscriberFormat::Csv : lma::SubscriberFormat::Json);
    std::ifstream in(c.file);
    if (!in) {
        throw std::invalid_argument(fmt::format("{}: cannot be read", c.file));
    }
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = lma::import_subscribers(store, cfg, in, o);
    if (!r.errors.empty()) {
        for (const auto& e : r.errors) {
            std::cerr << c.file << ": " << e << "\n";
        }
        std::cerr << "xpmip: " << c.file << ": nothing imported (the store is as it was)\n";
        return 2;
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::cout << fmt::format("{}: {} subscribers {} in {:.1f} s; the store holds {}\n", c.file, r.records,
                             c.replace ? "replace the store's" : "added or updated", s, store.size());
    return 0;
}

int run_add(SubscribersCommand& c, const lma::LmaConfig& cfg, lma::SubscriberStore& store) {
    lma::MobileNodeProfile m;
    try {
        m = lma::parse_subscriber(c.fields, cfg);
        lma::SubscriberStore::Writer w(store);
        w.put(m);
        w.commit();
    } catch (const lma::SubscriberError& e) {
        std::string id;
        for (const auto& [k, v] : c.fields) {
            id = k == "id" ? v : id;
        }
        std::cerr << "xpmip: subscriber '" << id << "': " << e.what() << "\n";
        return 2;
    }
    std::cout << "subscriber " << m.id << " stored; the LMA uses it from its next registration\n";
    return 0;
}

int run_remove(SubscribersCommand& c, lma::SubscriberStore& store) {
    lma::SubscriberStore::Writer w(store);
    std::vector<std::string> missing;
    for (const auto& id : c.ids) {
        if (!w.remove(id)) {
            missing.push_back(id);
        }
    }
    if (!missing.empty()) {
        std::cerr << "xpmip: not in the store (nothing removed): " << fmt::format("{}", fmt::join(missing, ", "))
                  << "\n";
        return 1;
    }
    w.commit();
    std::cout << c.ids.size() << " subscriber(s) removed; their bindings stay until they end\n";
    return 0;
}

int run_show(SubscribersCommand& c, lma::SubscriberStore& store) {
    std::vector<lma::MobileNodeProfile> profiles;
    if (!c.ids.empty()) {
        for (const auto& id : c.ids) {
            auto m = store.get(id);
            if (!m) {
                std::cerr << "xpmip: subscriber '" << id << "' is not in the store\n";
                return 1;
            }
            profiles.push_back(std::move(*m));
        }
    } else {
        profiles = store.page(c.after, c.limit);
    }
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const auto& m : profiles) {
        nlohmann::ordered_json o;
        for (const auto& [k, v] : lma::subscriber_fields(m)) {
            o[k] = v;
        }
        out.push_back(o);
    }
    if (c.as_json) {
        nlohmann::ordered_json doc{
            {"result", out}, {"total", store.size()},
            {"next", c.ids.empty() && profiles.size() == c.limit ? nlohmann::ordered_json(profiles.back().id)
                                                                  : nlohmann::ordered_json(nullptr)}};
        std::cout << doc.dump(2) << "\n";
        return 0;
    }
    for (const auto& o : out) {
        std::string line;
        for (const auto& [k, v] : o.items()) {
            line += (line.empty() ? "" : " ") + k + "=" + v.get<std::string>();
        }
        std::cout << line << "\n";
    }
    if (c.ids.empty()) {
        std::cout << fmt::format("({} of {} subscribers{})\n", profiles.size(), store.size(),
                                 profiles.size() == c.limit ? fmt::format("; more: --after {}", profiles.back().id)
                                                            : "");
    }
    return 0;
}

} // namespace

std::shared_ptr<SubscribersCommand> add_subscribers_command(CLI::App& app) {
    auto c = std::make_shared<SubscribersCommand>();
    c->root = app.add_subcommand(
        "subscribers", "The LMA's subscriber store (its configuration's subscriber_store): per-MN profiles for "
                       "up to millions of MNs, read by a running LMA at each registration (no restart, no reload)");
    c->root->require_subcommand(1);
    c->import_cmd = c->root->add_subcommand(
        "import", "Add or update the profiles of a CSV file (header row of field names) or JSON file (JSON Lines "
                  "or an array of objects), all or nothing: one bad record and nothing is written");
    c->import_cmd->add_option("file", c->file, "the file (.csv, .json or .jsonl)")->required();
    c->import_cmd->add_option("--format", c->format, "csv or json (default: from the file name)")
        ->check(CLI::IsMember({"csv", "json"}));
    c->import_cmd->add_flag("--replace", c->replace, "the file's profiles replace the whole store");
    c->add_cmd = c->root->add_subcommand("add", "Add or replace one profile");
    add_field_options(c->add_cmd, *c);
    c->remove_cmd = c->root->add_subcommand("remove", "Remove profiles (all or nothing)");
    c->remove_cmd->add_option("id", c->ids, "MN-IDs")->required();
    c->show_cmd = c->root->add_subcommand("show", "Show profiles: the ones named, or a page in MN-ID order");
    c->show_cmd->add_option("id", c->ids, "MN-IDs (default: a page of all)");
    c->show_cmd->add_option("--after", c->after, "the page after this MN-ID");
    c->show_cmd->add_option("--limit", c->limit, "profiles per page")->check(CLI::Range(1, 100000));
    c->show_cmd->add_flag("--json", c->as_json, "JSON instead of lines");
    for (auto* sub : {c->import_cmd, c->add_cmd, c->remove_cmd, c->show_cmd}) {
        sub->add_option("-c,--config", c->config_file, "the LMA's configuration file (its subscriber_store, realms)")
            ->required()
            ->check(CLI::ExistingFile);
    }
    return c;
}

bool subscribers_requested(const SubscribersCommand& c) {
    return c.root->parsed();
}

int run_subscribers(SubscribersCommand& c) {
    const auto cfg = load_config(c);
    lma::SubscriberStore store(*cfg.subscriber_store);
    if (*c.import_cmd) {
        return run_import(c, cfg, store);
    }
    if (*c.add_cmd) {
        return run_add(c, cfg, store);
    }
    if (*c.remove_cmd) {
        return run_remove(c, store);
    }
    return run_show(c, store);
}

} // namespace xpmip::cli
