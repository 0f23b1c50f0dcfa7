// Activation kernels compiled for the avx512 path (flags from CMakeLists.txt); see
// cpu/isa/activation_impl.h.
#define PE_ACT_ISA avx512
#include "cpu/isa/activation_impl.h"
