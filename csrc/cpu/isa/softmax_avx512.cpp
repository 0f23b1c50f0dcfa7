// Softmax kernels compiled for the avx512 path (flags from CMakeLists.txt); see
// cpu/isa/softmax_impl.h.
#define PE_SOFTMAX_ISA avx512
#include "cpu/isa/softmax_impl.h"
