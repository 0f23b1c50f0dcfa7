// Activation kernels compiled for the avx2 path (flags from CMakeLists.txt); see
// cpu/isa/activation_impl.h.
#define PE_ACT_ISA avx2
#include "cpu/isa/activation_impl.h"
