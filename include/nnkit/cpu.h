/* nnkit: what the CPU can do, for providers' supports() checks and for
 * choosing BLAS kernels.
 *
 * NnCpuInfo is the object the NnLayerType.supports slot receives.  It is
 * probed once per process (cpuid, and xgetbv for the registers the OS
 * saves: a CPU's AVX-512 is usable only when the kernel enables it).
 *
 * NN_CPU_DISABLE (e.g. "avx512f,amx-tile") masks features for the whole
 * process, as oneDNN's ONEDNN_MAX_CPU_ISA does: a way to run and test the
 * code paths of weaker CPUs.  All functions are MT safe.
 */
#ifndef NNKIT_CPU_H
#define NNKIT_CPU_H

#include <glib.h>
#include <nnkit/export.h>

G_BEGIN_DECLS

typedef struct _NnCpuInfo NnCpuInfo;

/* One bit per feature; a feature is set only when the OS supports its
 * registers too.  New features are appended. */
typedef enum {
  NN_CPU_SSE3 = 1u << 0,
  NN_CPU_SSSE3 = 1u << 1,
  NN_CPU_SSE4_1 = 1u << 2,
  NN_CPU_SSE4_2 = 1u << 3,
  NN_CPU_AVX = 1u << 4,
  NN_CPU_F16C = 1u << 5,
  NN_CPU_FMA = 1u << 6,
  NN_CPU_AVX2 = 1u << 7,
  NN_CPU_AVX512F = 1u << 8,
  NN_CPU_AVX512CD = 1u << 9,
  NN_CPU_AVX512DQ = 1u << 10,
  NN_CPU_AVX512BW = 1u << 11,
  NN_CPU_AVX512VL = 1u << 12,
  NN_CPU_AVX512_VNNI = 1u << 13,
  NN_CPU_AVX512_BF16 = 1u << 14,
  NN_CPU_AVX512_FP16 = 1u << 15,
  NN_CPU_AMX_TILE = 1u << 16,
  NN_CPU_AMX_INT8 = 1u << 17,
  NN_CPU_AMX_BF16 = 1u << 18,
  NN_CPU_AVX_VNNI = 1u << 19,
} NnCpuFeature;

/* Returns: (transfer none) the process's CPU, probed on first use. */
NN_API const NnCpuInfo *nn_cpu_info_get (void);
/* TRUE when every feature of the mask @features is usable. */
NN_API gboolean nn_cpu_has (const NnCpuInfo *cpu, guint64 features);
/* Returns: the usable features, NnCpuFeature bits. */
NN_API guint64 nn_cpu_get_features (const NnCpuInfo *cpu);
/* Returns: (transfer none) the brand string, "AMD EPYC 9654 96-Core
 * Processor"; "unknown" where cpuid has none. */
NN_API const char *nn_cpu_get_model_name (const NnCpuInfo *cpu);
/* Returns: (transfer none) "GenuineIntel", "AuthenticAMD", ... */
NN_API const char *nn_cpu_get_vendor (const NnCpuInfo *cpu);
/* Display family and model, as /proc/cpuinfo prints them. */
NN_API guint nn_cpu_get_family (const NnCpuInfo *cpu);
NN_API guint nn_cpu_get_model (const NnCpuInfo *cpu);
/* Returns: (transfer none) the feature's name as Linux prints it in
 * /proc/cpuinfo ("avx512f", "amx_tile"), NULL for a non-single bit. */
NN_API const char *nn_cpu_feature_name (guint64 feature);
/* Returns: (transfer full) the usable features' names, space-separated. */
NN_API char *nn_cpu_describe_features (const NnCpuInfo *cpu);

G_END_DECLS

#endif
