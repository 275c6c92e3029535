#define BOOST_TEST_MODULE xpmip unit tests
#include <boost/test/unit_test.hpp>
