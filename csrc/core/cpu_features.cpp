#include "cpu_features.h"

#include <atomic>
#include <cstdlib>

#include "error.h"

namespace pyengine {
namespace {

bool has_avx2() {
#if defined(__x86_64__) || defined(__i386__)
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

bool has_avx512() {
#if defined(__x86_64__) || defined(__i386__)
  return has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
#else
  return false;
#endif
}

Isa initial_isa() {
  const char* env = std::getenv("PYENGINE_CPU_ISA");
  if (env == nullptr || *env == '\0') return best_isa();
  Isa want = parse_isa(env);
  PE_CHECK(isa_supported(want), "cpu_isa", "PYENGINE_CPU_ISA=", env,
           " is not supported by this CPU; supported: generic", has_avx2() ? ", avx2" : "",
           has_avx512() ? ", avx512" : "");
  return want;
}

std::atomic<int>& active() {
  static std::atomic<int> isa{static_cast<int>(initial_isa())};
  return isa;
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::AVX512: return "avx512";
    case Isa::AVX2: return "avx2";
    default: return "generic";
  }
}

Isa parse_isa(const std::string& name) {
  if (name == "generic") return Isa::Generic;
  if (name == "avx2") return Isa::AVX2;
  if (name == "avx512") return Isa::AVX512;
  throw ValueError("[cpu_isa] unknown ISA '" + name + "'; expected generic, avx2 or avx512");
}

bool isa_supported(Isa isa) {
  switch (isa) {
    case Isa::AVX512: return has_avx512();
    case Isa::AVX2: return has_avx2();
    default: return true;
  }
}

Isa best_isa() { return has_avx512() ? Isa::AVX512 : has_avx2() ? Isa::AVX2 : Isa::Generic; }

Isa active_isa() { return static_cast<Isa>(active().load(std::memory_order_relaxed)); }

void set_active_isa(Isa isa) {
  PE_CHECK(isa_supported(isa), "cpu_isa", isa_name(isa), " is not supported by this CPU");
  active().store(static_cast<int>(isa));
}

std::vector<std::string> supported_isas() {
  std::vector<std::string> out{"generic"};
  if (has_avx2()) out.push_back("avx2");
  if (has_avx512()) out.push_back("avx512");
  return out;
}

std::string cpu_flags() {
  std::string s;
#if defined(__x86_64__) || defined(__i386__)
  auto add = [&](const char* name, bool on) {
    if (on) s += (s.empty() ? "" : " ") + std::string(name);
  };
  add("sse4.2", __builtin_cpu_supports("sse4.2"));
  add("avx", __builtin_cpu_supports("avx"));
  add("avx2", __builtin_cpu_supports("avx2"));
  add("fma", __builtin_cpu_supports("fma"));
  add("avx512f", __builtin_cpu_supports("avx512f"));
  add("avx512vl", __builtin_cpu_supports("avx512vl"));
  add("avx512bw", __builtin_cpu_supports("avx512bw"));
  add("avx512dq", __builtin_cpu_supports("avx512dq"));
#endif
  return s;
}

}  // namespace pyengine
