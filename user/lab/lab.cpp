#include "lab/lab.hpp"

#include <stdexcept>

namespace xpmip::lab {

int lab_main(const LabOptions& options) {
    throw std::runtime_error("lab '" + options.action + "': being built (issue 6)");
}

} // namespace xpmip::lab
