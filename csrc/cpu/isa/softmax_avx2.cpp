// Softmax kernels compiled for the avx2 path (flags from CMakeLists.txt); see
// cpu/isa/softmax_impl.h.
#define PE_SOFTMAX_ISA avx2
#include "cpu/isa/softmax_impl.h"
