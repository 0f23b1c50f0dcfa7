// Activation kernels compiled for the generic path (flags from CMakeLists.txt); see
// cpu/isa/activation_impl.h.
#define PE_ACT_ISA generic
#include "cpu/isa/activation_impl.h"
