// CPU feature detection (CPUID via the compiler's builtins, which also check
// that the OS saves the wide registers) and the ISA chosen for kernels.
// PYENGINE_CPU_ISA=generic|avx2|avx512 forces a path at import; set_active_isa
// switches at run time so tests can cover every path on one machine.
#pragma once
#include <string>
#include <vector>

namespace pyengine {

enum class Isa { Generic = 0, AVX2 = 1, AVX512 = 2 };

const char* isa_name(Isa isa);
Isa parse_isa(const std::string& name);  // throws ValueError on unknown names
bool isa_supported(Isa isa);             // by this CPU and OS
Isa best_isa();                          // the best supported path
Isa active_isa();                        // what kernels use now
void set_active_isa(Isa isa);            // throws ValueError if unsupported
std::vector<std::string> supported_isas();
std::string cpu_flags();  // e.g. "avx2 fma avx512f ..."

}  // namespace pyengine
