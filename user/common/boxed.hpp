// A value kept on the heap that copies as a value: for state few objects have (a multipath
// session's bindings), so the many that do not carry a pointer instead of the state's size.
#pragma once

#include <memory>
#include <utility>

namespace xpmip {

template <class T>
class Boxed {
public:
    Boxed() = default;
    Boxed(const Boxed& o) : value_(o.value_ ? std::make_unique<T>(*o.value_) : nullptr) {}
    Boxed(Boxed&&) noexcept = default;
    Boxed& operator=(const Boxed& o) {
        if (this != &o) {
            value_ = o.value_ ? std::make_unique<T>(*o.value_) : nullptr;
        }
        return *this;
    }
    Boxed& operator=(Boxed&&) noexcept = default;
    ~Boxed() = default;

    explicit operator bool() const { return value_ != nullptr; }
    T& operator*() { return *value_; }
    const T& operator*() const { return *value_; }
    T* operator->() { return value_.get(); }
    const T* operator->() const { return value_.get(); }
    // The value, made (default) if there is none yet.
    T& get_or_emplace() {
        if (!value_) {
            value_ = std::make_unique<T>();
        }
        return *value_;
    }
    void reset() { value_.reset(); }

private:
    std::unique_ptr<T> value_;
};

} // namespace xpmip
