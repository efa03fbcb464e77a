#include "common/blas.h"

#include <dlfcn.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <cstring>

namespace chatrec::common {
namespace {

// Set by prefer_fast_blas_core() to OpenBLAS's own choice before re-executing; its presence also
// stops a second re-exec.
constexpr const char* kLibraryChoiceVariable = "CHATREC_BLAS_LIBRARY_CORE";

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// OpenBLAS 0.3.21's kernel families without AVX2 (its corename table), best replaced.
constexpr std::array<std::string_view, 21> kPreAvx2Cores = {
    "unknown",   "katmai", "coppermine",  "northwood", "prescott",  "banias",     "atom",
    "core2",     "penryn", "dunnington",  "nehalem",   "athlon",    "opteron",    "opteron(sse3)",
    "barcelona", "nano",   "sandybridge", "bobcat",    "bulldozer", "piledriver", "steamroller"};

bool is_pre_avx2(const std::string& core) {
  return std::find(kPreAvx2Cores.begin(), kPreAvx2Cores.end(), core) != kPreAvx2Cores.end();
}

using NameFn = char* (*)();

std::string call(const char* symbol) {
  // Looked up at run time: the BLAS behind libblas.so.3 is chosen by the system (Debian's
  // alternatives), and may be another library than OpenBLAS.
  auto fn = reinterpret_cast<NameFn>(dlsym(RTLD_DEFAULT, symbol));
  if (!fn) return {};
  const char* s = fn();
  return s ? std::string(s) : std::string();
}

}  // namespace

VectorSupport vector_support() {
  VectorSupport v;
  __builtin_cpu_init();
  v.avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  v.avx512 = v.avx2_fma && __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  return v;
}

std::string better_openblas_core(std::string_view current, const VectorSupport& cpu) {
  const std::string core = lower(current);
  if (cpu.avx512 && (is_pre_avx2(core) || core == "haswell")) return "SkylakeX";
  // Zen and the AVX-512 families are OpenBLAS's own informed choices; left alone.
  if (cpu.avx2_fma && is_pre_avx2(core)) return "Haswell";
  return {};
}

BlasInfo blas_info() {
  BlasInfo info;
  info.core = call("openblas_get_corename");
  info.openblas = !info.core.empty();
  if (!info.openblas) return info;
  info.config = call("openblas_get_config");
  if (const char* by_us = std::getenv(kLibraryChoiceVariable); by_us && *by_us)
    info.chosen_by = "chatrec";
  else if (const char* env = std::getenv("OPENBLAS_CORETYPE"); env && *env)
    info.chosen_by = "environment";
  else
    info.chosen_by = "library";
  return info;
}

std::string BlasInfo::describe() const {
  if (!openblas) return "BLAS: not OpenBLAS (kernels unknown)";
  std::string line = fmt::format("BLAS: {} | core {}", config, core);
  if (chosen_by == "chatrec") {
    const char* own = std::getenv(kLibraryChoiceVariable);
    line += fmt::format(" (chosen by chatrec for this CPU; OpenBLAS's own choice: {})", own);
  } else if (chosen_by == "environment") {
    line += " (from $OPENBLAS_CORETYPE)";
  } else {
    line += " (OpenBLAS's own choice)";
  }
  return line;
}

void prefer_fast_blas_core(char** argv) {
  if (const char* env = std::getenv("OPENBLAS_CORETYPE"); env && *env) return;
  if (const char* mode = std::getenv("CHATREC_BLAS_CORE");
      mode && std::strcmp(mode, "library") == 0)
    return;
  if (std::getenv(kLibraryChoiceVariable)) return;  // already re-executed once
  const BlasInfo info = blas_info();
  if (!info.openblas) return;
  const std::string core = better_openblas_core(info.core, vector_support());
  if (core.empty()) return;
  setenv("OPENBLAS_CORETYPE", core.c_str(), 1);
  setenv(kLibraryChoiceVariable, info.core.c_str(), 1);
  execv("/proc/self/exe", argv);
  // Not re-executed (no /proc, say): run on as before, with OpenBLAS's own kernels.
  unsetenv("OPENBLAS_CORETYPE");
  unsetenv(kLibraryChoiceVariable);
}

}  // namespace chatrec::common
