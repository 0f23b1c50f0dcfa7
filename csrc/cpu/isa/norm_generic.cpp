// Norm kernels compiled for the generic path (flags from CMakeLists.txt); see cpu/isa/norm_impl.h.
#define PE_NORM_ISA generic
#include "cpu/isa/norm_impl.h"
