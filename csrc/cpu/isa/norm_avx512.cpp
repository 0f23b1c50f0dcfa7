// Norm kernels compiled for the avx512 path (flags from CMakeLists.txt); see cpu/isa/norm_impl.h.
#define PE_NORM_ISA avx512
#include "cpu/isa/norm_impl.h"
