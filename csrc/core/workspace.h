// A per-thread scratch buffer: 64-byte aligned, grows to the largest request and is
// reused, so hot paths do not allocate (fresh pages are expensive on our VMs).
// Use it as `thread_local Workspace t_name;`; the contents are not kept between get()s
// that grow it.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace pyengine {

class Workspace {
 public:
  Workspace() = default;
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  ~Workspace() { std::free(ptr_); }

  // At least `bytes` bytes (and at least 64), aligned to 64.
  void* get(size_t bytes) {
    if (bytes > cap_) {
      std::free(ptr_);
      ptr_ = nullptr;
      cap_ = 0;
      const size_t rounded = (std::max<size_t>(bytes, 64) + 4095) / 4096 * 4096;
      ptr_ = std::aligned_alloc(64, rounded);
      if (ptr_ == nullptr) throw std::bad_alloc();
      cap_ = rounded;
    }
    return ptr_;
  }

  // Room for `elems` values of T (at least one).
  template <typename T>
  T* get(int64_t elems) {
    return static_cast<T*>(get(static_cast<size_t>(std::max<int64_t>(elems, 1)) * sizeof(T)));
  }

 private:
  void* ptr_ = nullptr;
  size_t cap_ = 0;
};

}  // namespace pyengine
