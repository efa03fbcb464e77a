#include "common/blas.h"

#include <gtest/gtest.h>

#include <cstdlib>

extern "C" void sgemm_(const char* transa, const char* transb, const int* m, const int* n,
                       const int* k, const float* alpha, const float* a, const int* lda,
                       const float* b, const int* ldb, const float* beta, float* c, const int* ldc);

namespace chatrec::common {
namespace {

constexpr VectorSupport kSse{false, false};
constexpr VectorSupport kAvx2{true, false};
constexpr VectorSupport kAvx512{true, true};

TEST(OpenBlasCore, GenericFallbacksGiveWayToTheBestFamilyTheCpuGrants) {
  // OpenBLAS 0.3.21 on a CPU newer than itself runs Prescott kernels.
  EXPECT_EQ(better_openblas_core("Prescott", kAvx512), "SkylakeX");
  EXPECT_EQ(better_openblas_core("Prescott", kAvx2), "Haswell");
  EXPECT_EQ(better_openblas_core("Sandybridge", kAvx2), "Haswell");
  EXPECT_EQ(better_openblas_core("Unknown", kAvx512), "SkylakeX");
  EXPECT_EQ(better_openblas_core("nehalem", kAvx2), "Haswell");  // OpenBLAS compares without case
  EXPECT_EQ(better_openblas_core("Haswell", kAvx512), "SkylakeX");
}

TEST(OpenBlasCore, InformedChoicesAndMissingInstructionsAreLeftAlone) {
  EXPECT_EQ(better_openblas_core("Zen", kAvx2), "");
  EXPECT_EQ(better_openblas_core("Zen", kAvx512), "");  // Zen 4: the library's own call
  EXPECT_EQ(better_openblas_core("Haswell", kAvx2), "");
  EXPECT_EQ(better_openblas_core("SkylakeX", kAvx512), "");
  EXPECT_EQ(better_openblas_core("Cooperlake", kAvx512), "");
  EXPECT_EQ(better_openblas_core("SapphireRapids", kAvx512), "");
  EXPECT_EQ(better_openblas_core("Excavator", kAvx2), "");
  // Never a kernel whose instructions the CPU or the OS does not grant.
  EXPECT_EQ(better_openblas_core("Prescott", kSse), "");
  EXPECT_EQ(better_openblas_core("Haswell", kSse), "");
  EXPECT_EQ(better_openblas_core("SomethingNew", kAvx512), "");
}

TEST(OpenBlasCore, ThisProcessReportsTheKernelsItRuns) {
  // A 1x1 product, so the test really loads (and calls) the BLAS it links.
  const int one = 1;
  const float a = 3.0f, b = 4.0f, alpha = 1.0f, beta = 0.0f;
  float c = 0.0f;
  sgemm_("N", "N", &one, &one, &one, &alpha, &a, &one, &b, &one, &beta, &c, &one);
  ASSERT_EQ(c, 12.0f);
  const BlasInfo info = blas_info();
  if (!info.openblas) GTEST_SKIP() << "the BLAS this test links is not OpenBLAS";
  EXPECT_FALSE(info.core.empty());
  EXPECT_EQ(info.config.rfind("OpenBLAS", 0), 0u) << info.config;
  const char* env = std::getenv("OPENBLAS_CORETYPE");
  EXPECT_EQ(info.chosen_by, env && *env ? "environment" : "library");
  EXPECT_NE(info.describe().find("core " + info.core), std::string::npos) << info.describe();
  const VectorSupport cpu = vector_support();
  EXPECT_TRUE(!cpu.avx512 || cpu.avx2_fma);
}

}  // namespace
}  // namespace chatrec::common
