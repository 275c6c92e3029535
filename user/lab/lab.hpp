// `xpmip lab`: the RFC 5845 Figure 1 scenario in network namespaces on one host.
#pragma once

#include <string>
#include <vector>

namespace xpmip::lab {

struct LabOptions {
    std::string action;            // up, down, status, demo
    std::string xpmip_binary;      // this binary (to start the agents)
    std::vector<std::string> extra;
};

// Returns the exit status.
int lab_main(const LabOptions& options);

} // namespace xpmip::lab
