/* nnkit core: the CPU's features (cpuid, with OS support from xgetbv)
 * and model name, probed once per process.  Knows nothing of BLAS or
 * layer types; providers and blas_setup.c ask it. */
#include "nn-private.h"
#include "nn-engine-private.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define NN_CPU_X86 1
#endif

struct _NnCpuInfo {
  guint64 features;      /* usable NnCpuFeature bits, after NN_CPU_DISABLE */
  guint64 raw_features;  /* before NN_CPU_DISABLE */
  guint family;
  guint model;
  char vendor[13];
  char model_name[49];
};

typedef struct {
  guint64 bit;
  const char *name;      /* as Linux's /proc/cpuinfo spells it */
  guint64 requires;      /* features this one is useless without */
} FeatureDesc;

#define AVX512_BASE NN_CPU_AVX512F
static const FeatureDesc features_table[] = {
  { NN_CPU_SSE3, "pni", 0 },
  { NN_CPU_SSSE3, "ssse3", NN_CPU_SSE3 },
  { NN_CPU_SSE4_1, "sse4_1", NN_CPU_SSSE3 },
  { NN_CPU_SSE4_2, "sse4_2", NN_CPU_SSE4_1 },
  { NN_CPU_AVX, "avx", NN_CPU_SSE4_2 },
  { NN_CPU_F16C, "f16c", NN_CPU_AVX },
  { NN_CPU_FMA, "fma", NN_CPU_AVX },
  { NN_CPU_AVX2, "avx2", NN_CPU_AVX },
  { NN_CPU_AVX512F, "avx512f", NN_CPU_AVX2 | NN_CPU_FMA },
  { NN_CPU_AVX512CD, "avx512cd", AVX512_BASE },
  { NN_CPU_AVX512DQ, "avx512dq", AVX512_BASE },
  { NN_CPU_AVX512BW, "avx512bw", AVX512_BASE },
  { NN_CPU_AVX512VL, "avx512vl", AVX512_BASE },
  { NN_CPU_AVX512_VNNI, "avx512_vnni", AVX512_BASE },
  { NN_CPU_AVX512_BF16, "avx512_bf16", AVX512_BASE },
  { NN_CPU_AVX512_FP16, "avx512_fp16", AVX512_BASE },
  { NN_CPU_AMX_TILE, "amx_tile", 0 },
  { NN_CPU_AMX_INT8, "amx_int8", NN_CPU_AMX_TILE },
  { NN_CPU_AMX_BF16, "amx_bf16", NN_CPU_AMX_TILE },
  { NN_CPU_AVX_VNNI, "avx_vnni", NN_CPU_AVX2 },
};

const char *
nn_cpu_feature_name (guint64 feature)
{
  for (guint i = 0; i < G_N_ELEMENTS (features_table); i++)
    if (features_table[i].bit == feature)
      return features_table[i].name;
  return NULL;
}

/* Drops every feature whose prerequisites are gone, so that disabling
 * "avx512f" also disables the AVX-512 extensions. */
static guint64
close_dependencies (guint64 f)
{
  gboolean changed = TRUE;

  while (changed)
    {
      changed = FALSE;
      for (guint i = 0; i < G_N_ELEMENTS (features_table); i++)
        {
          const FeatureDesc *d = &features_table[i];
          if ((f & d->bit) && (f & d->requires) != d->requires)
            {
              f &= ~d->bit;
              changed = TRUE;
            }
        }
    }
  return f;
}

guint64
nn_cpu_parse_feature_list (const char *list, char **unknown)
{
  guint64 mask = 0;
  char **names = g_strsplit_set (list ? list : "", ", ", -1);

  if (unknown)
    *unknown = NULL;
  for (guint i = 0; names[i]; i++)
    {
      char *n = g_ascii_strdown (g_strstrip (names[i]), -1);
      gboolean found = FALSE;

      g_strdelimit (n, "-", '_');
      if (*n == '\0')
        found = TRUE;
      for (guint j = 0; !found && j < G_N_ELEMENTS (features_table); j++)
        if (strcmp (features_table[j].name, n) == 0
            || (strcmp (n, "sse3") == 0 && features_table[j].bit == NN_CPU_SSE3))
          {
            mask |= features_table[j].bit;
            found = TRUE;
          }
      if (!found && unknown && !*unknown)
        *unknown = g_strdup (names[i]);
      g_free (n);
    }
  g_strfreev (names);
  return mask;
}

#ifdef NN_CPU_X86
static guint64
xgetbv0 (void)
{
  guint32 lo, hi;

  __asm__ volatile ("xgetbv" : "=a" (lo), "=d" (hi) : "c" (0));
  return (guint64) hi << 32 | lo;
}

static void
probe_x86 (NnCpuInfo *cpu)
{
  guint a, b, c, d, max_leaf, max_ext;
  guint64 f = 0, xcr0 = 0;

  if (!__get_cpuid (0, &max_leaf, &b, &c, &d))
    return;
  memcpy (cpu->vendor, &b, 4);
  memcpy (cpu->vendor + 4, &d, 4);
  memcpy (cpu->vendor + 8, &c, 4);

  __cpuid (1, a, b, c, d);
  guint base_family = (a >> 8) & 0xf, base_model = (a >> 4) & 0xf;
  cpu->family = base_family == 0xf ? base_family + ((a >> 20) & 0xff)
                                   : base_family;
  cpu->model = base_family == 0x6 || base_family == 0xf
                 ? base_model | ((a >> 16) & 0xf) << 4 : base_model;

  if (c & (1u << 0)) f |= NN_CPU_SSE3;
  if (c & (1u << 9)) f |= NN_CPU_SSSE3;
  if (c & (1u << 19)) f |= NN_CPU_SSE4_1;
  if (c & (1u << 20)) f |= NN_CPU_SSE4_2;
  /* Without OSXSAVE the OS saves no AVX state: AVX and up are unusable. */
  gboolean osxsave = (c & (1u << 27)) != 0;
  if (osxsave)
    xcr0 = xgetbv0 ();
  gboolean os_avx = (xcr0 & 0x6) == 0x6;
  gboolean os_avx512 = (xcr0 & 0xe6) == 0xe6;
  gboolean os_amx = (xcr0 & 0x60000) == 0x60000;
  if (os_avx)
    {
      if (c & (1u << 28)) f |= NN_CPU_AVX;
      if (c & (1u << 29)) f |= NN_CPU_F16C;
      if (c & (1u << 12)) f |= NN_CPU_FMA;
    }

  if (max_leaf >= 7)
    {
      guint max_sub;
      __cpuid_count (7, 0, max_sub, b, c, d);
      if (os_avx && (b & (1u << 5))) f |= NN_CPU_AVX2;
      if (os_avx512)
        {
          if (b & (1u << 16)) f |= NN_CPU_AVX512F;
          if (b & (1u << 17)) f |= NN_CPU_AVX512DQ;
          if (b & (1u << 28)) f |= NN_CPU_AVX512CD;
          if (b & (1u << 30)) f |= NN_CPU_AVX512BW;
          if (b & (1u << 31)) f |= NN_CPU_AVX512VL;
          if (c & (1u << 11)) f |= NN_CPU_AVX512_VNNI;
          if (d & (1u << 23)) f |= NN_CPU_AVX512_FP16;
        }
      if (os_amx)
        {
          if (d & (1u << 24)) f |= NN_CPU_AMX_TILE;
          if (d & (1u << 25)) f |= NN_CPU_AMX_INT8;
          if (d & (1u << 22)) f |= NN_CPU_AMX_BF16;
        }
      if (max_sub >= 1)
        {
          __cpuid_count (7, 1, a, b, c, d);
          if (os_avx && (a & (1u << 4))) f |= NN_CPU_AVX_VNNI;
          if (os_avx512 && (a & (1u << 5))) f |= NN_CPU_AVX512_BF16;
        }
    }
  cpu->raw_features = close_dependencies (f);

  __cpuid (0x80000000, max_ext, b, c, d);
  if (max_ext >= 0x80000004)
    {
      guint regs[12];
      for (guint i = 0; i < 3; i++)
        __cpuid (0x80000002 + i, regs[4 * i], regs[4 * i + 1],
                 regs[4 * i + 2], regs[4 * i + 3]);
      memcpy (cpu->model_name, regs, 48);
      cpu->model_name[48] = '\0';
      g_strstrip (cpu->model_name);
    }
}
#endif

const NnCpuInfo *
nn_cpu_info_get (void)
{
  static NnCpuInfo cpu;
  static gsize once;

  if (g_once_init_enter (&once))
    {
      char *unknown = NULL;
      guint64 off;

      g_strlcpy (cpu.vendor, "unknown", sizeof cpu.vendor);
#ifdef NN_CPU_X86
      probe_x86 (&cpu);
#endif
      if (cpu.model_name[0] == '\0')
        g_strlcpy (cpu.model_name, "unknown", sizeof cpu.model_name);
      off = nn_cpu_parse_feature_list (g_getenv ("NN_CPU_DISABLE"), &unknown);
      if (unknown)
        g_printerr ("nnkit: NN_CPU_DISABLE: unknown CPU feature '%s' "
                    "ignored\n", unknown);
      g_free (unknown);
      cpu.features = close_dependencies (cpu.raw_features & ~off);
      g_once_init_leave (&once, 1);
    }
  return &cpu;
}

gboolean
nn_cpu_has (const NnCpuInfo *cpu, guint64 features)
{
  g_return_val_if_fail (cpu != NULL, FALSE);
  return (cpu->features & features) == features;
}

guint64
nn_cpu_get_features (const NnCpuInfo *cpu)
{
  g_return_val_if_fail (cpu != NULL, 0);
  return cpu->features;
}

const char *
nn_cpu_get_model_name (const NnCpuInfo *cpu)
{
  g_return_val_if_fail (cpu != NULL, NULL);
  return cpu->model_name;
}

const char *
nn_cpu_get_vendor (const NnCpuInfo *cpu)
{
  g_return_val_if_fail (cpu != NULL, NULL);
  return cpu->vendor;
}

guint
nn_cpu_get_family (const NnCpuInfo *cpu)
{
  g_return_val_if_fail (cpu != NULL, 0);
  return cpu->family;
}

guint
nn_cpu_get_model (const NnCpuInfo *cpu)
{
  g_return_val_if_fail (cpu != NULL, 0);
  return cpu->model;
}

char *
nn_cpu_describe_features (const NnCpuInfo *cpu)
{
  GString *s = g_string_new (NULL);

  g_return_val_if_fail (cpu != NULL, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (features_table); i++)
    if (cpu->features & features_table[i].bit)
      g_string_append_printf (s, "%s%s", s->len ? " " : "",
                              features_table[i].name);
  return g_string_free (s, FALSE);
}
