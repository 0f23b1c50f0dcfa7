// Process-wide allocator tuning. Fresh pages are expensive on the machines we run on (page
// faults near 2 GB/s, reused memory near 30 GB/s), and glibc returns freed blocks of 128 KiB and
// more to the OS by default, so every new output array of a training step would fault its pages
// in again. Raising the mmap and trim thresholds keeps freed blocks in the heap for reuse.
#pragma once
#include <string>

namespace pyengine {
// Applies the tuning once unless PYENGINE_MALLOC_TUNE=0; returns a description for info().
std::string tune_allocator();
// Returns freed heap memory (top and holes) to the OS; true if some was released.
bool trim_memory();
}  // namespace pyengine
