#define BOOST_TEST_MODULE xpmip unit tests
#include <boost/test/unit_test.hpp>

#include <spdlog/spdlog.h>

#include <cstdlib>

// The agents' log lines are not the tests' output: off unless XPMIP_TEST_LOG=debug|info|...
struct QuietLogs {
    QuietLogs() {
        const char* level = std::getenv("XPMIP_TEST_LOG");
        spdlog::set_level(level ? spdlog::level::from_str(level) : spdlog::level::off);
    }
};
BOOST_TEST_GLOBAL_FIXTURE(QuietLogs);
