// `xpmip subscribers import|add|remove|show`: the LMA's subscriber store (README "Subscribers").
#pragma once

#include <CLI/CLI.hpp>

#include <memory>

namespace xpmip::cli {

struct SubscribersCommand;

// Adds the `subscribers` subcommand to `app`; run_subscribers() runs it once parsed.
std::shared_ptr<SubscribersCommand> add_subscribers_command(CLI::App& app);
bool subscribers_requested(const SubscribersCommand& c);
int run_subscribers(SubscribersCommand& c);

} // namespace xpmip::cli
