// Run a packet through the program attached to an interface with BPF_PROG_TEST_RUN (nothing
// is transmitted): the verdict and the packet as the program left it. For tests and
// per-packet benchmarks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace xpmip::dataplane {

enum class Hook { Xdp, TcIngress, TcEgress };
Hook parse_hook(const std::string& s);  // "xdp", "tc-ingress", "tc-egress"

struct TestRunResult {
    std::uint32_t retval = 0;
    std::vector<std::uint8_t> output;
    std::uint32_t duration_ns = 0;   // average per repetition, as the kernel measured
};

// The program must be attached to `ifname` in the current network namespace (the context's
// ingress interface is `ifname`, so FIB lookups use this namespace's tables and neighbours).
TestRunResult test_run(const std::string& ifname, Hook hook, const std::vector<std::uint8_t>& packet,
                       std::uint32_t repeat = 1);

} // namespace xpmip::dataplane
