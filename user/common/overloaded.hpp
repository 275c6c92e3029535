// The visitor of several lambdas for std::visit: Overloaded{[](const A&) {...}, [](const B&) {...}}.
#pragma once

namespace xpmip {

template <class... Ts>
struct Overloaded : Ts... {
    using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

} // namespace xpmip
