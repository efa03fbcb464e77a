#pragma once
// Which BLAS kernels run, and choosing OpenBLAS's fast ones when it does not know the CPU.
//
// Debian 12's OpenBLAS 0.3.21 (DYNAMIC_ARCH) picks its kernels from the CPU model at load time;
// on CPUs newer than it (e.g. recent Xeons with AVX-512) it falls back to its generic Prescott
// kernels, 6-8x slower at f32 GEMM than its SkylakeX ones on the same machine. The choice is made
// in the library's constructor, before main(), from $OPENBLAS_CORETYPE, so the only way to change
// it is to set that variable and start the process again: prefer_fast_blas_core() does that once,
// and only for a kernel family whose instructions the CPU and the OS both grant.
#include <string>
#include <string_view>

namespace chatrec::common {

// The vector instructions the BLAS kernels need, as the CPU and the OS grant them (XSAVE state
// enabled, which GCC's __builtin_cpu_supports checks through XGETBV).
struct VectorSupport {
  bool avx2_fma = false;  // OpenBLAS Haswell/Zen kernels
  bool avx512 = false;    // F, CD, BW, DQ and VL: OpenBLAS SkylakeX kernels
};

VectorSupport vector_support();

// The OpenBLAS core type that uses `cpu` best when `current` (openblas_get_corename()) is one of
// the older or generic kernel families, or "" when `current` is already as good (or unknown to this
// table, which is then left alone).
std::string better_openblas_core(std::string_view current, const VectorSupport& cpu);

struct BlasInfo {
  bool openblas = false;  // the process's BLAS is OpenBLAS (its symbols resolve)
  std::string core;       // openblas_get_corename(), e.g. "Zen", "SkylakeX", "Prescott"
  std::string config;     // openblas_get_config()
  // How the core was chosen: "library" (OpenBLAS's own choice), "environment" ($OPENBLAS_CORETYPE
  // set by the user) or "chatrec" (set by prefer_fast_blas_core()).
  std::string chosen_by;
  std::string describe() const;  // one line for logs and benchmarks
};

BlasInfo blas_info();

// Call first thing in main(): when the process's OpenBLAS runs a weaker kernel family than the
// CPU allows and $OPENBLAS_CORETYPE is not set, sets it and re-executes the program (same argv and
// environment otherwise). Returns normally when nothing is to be done or the re-exec fails.
// $CHATREC_BLAS_CORE=library turns it off.
void prefer_fast_blas_core(char** argv);

}  // namespace chatrec::common
