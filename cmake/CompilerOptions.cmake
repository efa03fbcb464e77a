# Warnings and code generation flags shared by every chatrec target.
add_library(chatrec_options INTERFACE)
target_compile_options(chatrec_options INTERFACE -Wall -Wextra -Wno-missing-field-initializers)
if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  # The fp16 table of llm/runtime/quants.cpp is built at compile time (65536 conversions), beyond clang's
  # default constexpr step limit; GCC-only -Wno-* flags of some targets are not errors.
  target_compile_options(chatrec_options INTERFACE -fconstexpr-steps=100000000 -Wno-unknown-warning-option)
endif()
if(CHATREC_WERROR)
  target_compile_options(chatrec_options INTERFACE -Werror)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    # GCC 12 reports -Wrestrict and -Wmaybe-uninitialized inside libstdc++ and nlohmann-json headers after
    # inlining at -O3 (GCC bugs 105329, 107138), and -Wuninitialized in its own AVX-512 intrinsics headers as
    # used by Eigen under sanitizers; they stay warnings, not errors.
    target_compile_options(chatrec_options INTERFACE -Wno-error=restrict -Wno-error=maybe-uninitialized
                                                     -Wno-error=uninitialized)
  endif()
endif()
if(CHATREC_NATIVE)
  target_compile_options(chatrec_options INTERFACE -march=native)
else()
  # A portable build still gets AVX2/FMA kernels through function-level target attributes.
endif()
if(CHATREC_SANITIZE)
  target_compile_options(chatrec_options INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer
                                                   -fno-sanitize-recover=undefined)
  target_link_options(chatrec_options INTERFACE -fsanitize=address,undefined)
endif()
if(CHATREC_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "CHATREC_FUZZ needs clang (libFuzzer), e.g. -DCMAKE_CXX_COMPILER=clang++-14")
  endif()
  # Libraries get the coverage instrumentation libFuzzer steers by, without its main(); the fuzz
  # executables add -fsanitize=fuzzer themselves (tests/fuzz).
  target_compile_options(chatrec_options INTERFACE -fsanitize=fuzzer-no-link,address,undefined
                                                   -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  target_link_options(chatrec_options INTERFACE -fsanitize=address,undefined)
endif()
