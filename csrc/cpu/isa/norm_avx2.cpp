// Norm kernels compiled for the avx2 path (flags from CMakeLists.txt); see cpu/isa/norm_impl.h.
#define PE_NORM_ISA avx2
#include "cpu/isa/norm_impl.h"
