// Tests for core/cpu.c, against Linux's own reading of the CPU.
#include "engine-test.h"

extern "C" {
#include <nnkit/cpu.h>
}

using namespace nnengine;

#ifdef __x86_64__
TEST (Cpu, FeaturesMatchProcCpuinfo)
{
  auto flags = linux_cpu_flags ();
  ASSERT_FALSE (flags.empty ()) << "no flags line in /proc/cpuinfo";
  const NnCpuInfo *cpu = nn_cpu_info_get ();
  for (guint bit = 0; bit < 64; bit++) {
    const char *name = nn_cpu_feature_name (1ull << bit);
    if (!name)
      continue;
    EXPECT_EQ (flags.count (name) == 1, (bool) nn_cpu_has (cpu, 1ull << bit))
      << name;
  }
}

TEST (Cpu, IdentityMatchesProcCpuinfo)
{
  const NnCpuInfo *cpu = nn_cpu_info_get ();
  EXPECT_EQ (linux_cpu_field ("vendor_id"), nn_cpu_get_vendor (cpu));
  EXPECT_EQ (linux_cpu_field ("cpu family"), std::to_string (nn_cpu_get_family (cpu)));
  EXPECT_EQ (linux_cpu_field ("model"), std::to_string (nn_cpu_get_model (cpu)));
  std::string name = linux_cpu_field ("model name");
  EXPECT_EQ (name, nn_cpu_get_model_name (cpu));
}
#endif

TEST (Cpu, HasNeedsEveryBitOfTheMask)
{
  const NnCpuInfo *cpu = nn_cpu_info_get ();
  guint64 f = nn_cpu_get_features (cpu);
  EXPECT_TRUE (nn_cpu_has (cpu, 0));
  EXPECT_TRUE (nn_cpu_has (cpu, f));
  // Bit 63 names no feature, so no CPU has it.
  EXPECT_FALSE (nn_cpu_has (cpu, f | (1ull << 63)));
  EXPECT_EQ (nullptr, nn_cpu_feature_name (1ull << 63));
  EXPECT_EQ (nullptr, nn_cpu_feature_name (3));
}

TEST (Cpu, DisableMasksDependentFeatures)
{
  CheckRun all = run_check ("cpu");
  ASSERT_EQ (0, all.status) << all.err;
  if (all.kv["features"].find ("avx512f") == std::string::npos)
    GTEST_SKIP () << "this CPU has no AVX-512";
  CheckRun r = run_check ("cpu", { "NN_CPU_DISABLE=AVX512F" });
  ASSERT_EQ (0, r.status) << r.err;
  EXPECT_EQ (std::string::npos, r.kv["features"].find ("avx512"))
    << "every AVX-512 extension needs avx512f: " << r.kv["features"];
  EXPECT_NE (std::string::npos, r.kv["features"].find ("avx2"));
  EXPECT_EQ ("", r.err);
}

TEST (Cpu, DisableNamesAnUnknownFeature)
{
  CheckRun r = run_check ("cpu", { "NN_CPU_DISABLE=avx2, warp-drive" });
  ASSERT_EQ (0, r.status) << r.err;
  EXPECT_NE (std::string::npos, r.err.find ("unknown CPU feature 'warp-drive'")) << r.err;
  EXPECT_EQ (std::string::npos, r.kv["features"].find ("avx2"));
  // AVX-512 needs AVX2: gone too.
  EXPECT_EQ (std::string::npos, r.kv["features"].find ("avx512f"));
}

TEST (Cpu, DescribeListsTheSameFeaturesAsHas)
{
  const NnCpuInfo *cpu = nn_cpu_info_get ();
  char *d = nn_cpu_describe_features (cpu);
  std::istringstream words (d);
  g_free (d);
  guint64 seen = 0;
  for (std::string w; words >> w;) {
    bool found = false;
    for (guint bit = 0; bit < 64; bit++)
      if (nn_cpu_feature_name (1ull << bit) && w == nn_cpu_feature_name (1ull << bit)) {
        seen |= 1ull << bit;
        found = true;
      }
    EXPECT_TRUE (found) << w;
  }
  EXPECT_EQ (nn_cpu_get_features (cpu), seen);
}
