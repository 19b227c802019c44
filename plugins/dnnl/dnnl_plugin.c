/* dnnl plugin: entry point.  Each provider is set up from its reference
 * type (compiled into this plugin) and registered at NN_DNNL_RANK. */
#include "dnnl-private.h"

typedef void (*SetupFunc) (NnLayerType *t);

static const SetupFunc setups[] = {
  nn_dnnl_conv2d_setup,
  nn_dnnl_linear_setup,
  nn_dnnl_max_pool2d_setup,
  nn_dnnl_avg_pool2d_setup,
  nn_dnnl_adaptive_avg_pool2d_setup,
  nn_dnnl_batch_norm2d_setup,
  nn_dnnl_matmul_setup,
  nn_dnnl_mm_setup,
  nn_dnnl_bmm_setup,
  nn_dnnl_linear_fn_setup,
  nn_dnnl_softmax_setup,
  nn_dnnl_log_softmax_setup,
  nn_dnnl_mha_setup,
  nn_dnnl_layer_norm_setup,
  nn_dnnl_relu_setup,
  nn_dnnl_add_setup,
  nn_dnnl_mul_setup,
  nn_dnnl_cat_setup,
};

/* Backward providers, added to the type their forward setup filled
 * (kept apart so that forward and backward code live in separate files). */
static const struct {
  SetupFunc forward, backward;
} backward_setups[] = {
  { nn_dnnl_conv2d_setup, nn_dnnl_conv2d_backward_setup },
  { nn_dnnl_batch_norm2d_setup, nn_dnnl_batch_norm2d_backward_setup },
};

/* Filled once, at init: they copy the reference vtables, which are not
 * compile-time constants here. */
static NnLayerType types[G_N_ELEMENTS (setups)];

/* oneDNN dispatches on cpuid itself; NN_CPU_DISABLE (include/nnkit/cpu.h)
 * caps it too, unless the user capped oneDNN directly. */
static void
cap_isa (void)
{
  const NnCpuInfo *cpu = nn_cpu_info_get ();
  const guint64 avx512 = NN_CPU_AVX512F | NN_CPU_AVX512BW | NN_CPU_AVX512VL
                         | NN_CPU_AVX512DQ;
  dnnl_cpu_isa_t isa = dnnl_cpu_isa_all;

  if (g_getenv ("ONEDNN_MAX_CPU_ISA") || g_getenv ("DNNL_MAX_CPU_ISA"))
    return;
  if (!nn_cpu_has (cpu, NN_CPU_AMX_TILE))
    isa = nn_cpu_has (cpu, avx512 | NN_CPU_AVX512_BF16) ? dnnl_cpu_isa_avx512_core_bf16
          : nn_cpu_has (cpu, avx512 | NN_CPU_AVX512_VNNI) ? dnnl_cpu_isa_avx512_core_vnni
          : nn_cpu_has (cpu, avx512) ? dnnl_cpu_isa_avx512_core
          : nn_cpu_has (cpu, NN_CPU_AVX2 | NN_CPU_FMA) ? dnnl_cpu_isa_avx2
          : nn_cpu_has (cpu, NN_CPU_AVX) ? dnnl_cpu_isa_avx
          : dnnl_cpu_isa_sse41;
  if (isa != dnnl_cpu_isa_all)
    dnnl_set_max_cpu_isa (isa);
}

static gboolean
dnnl_init (NnPlugin *plugin, GError **error)
{
  cap_isa ();
  if (!nn_dnnl_engine (error))
    return FALSE;
  for (gsize i = 0; i < G_N_ELEMENTS (setups); i++)
    {
      setups[i] (&types[i]);
      for (gsize j = 0; j < G_N_ELEMENTS (backward_setups); j++)
        if (backward_setups[j].forward == setups[i])
          backward_setups[j].backward (&types[i]);
      /* Last: whatever forward the setups chained reads a laid-out input
       * only in eval mode (layouts: docs/ENGINE.md "Memory"). */
      if (setups[i] == nn_dnnl_batch_norm2d_setup)
        nn_dnnl_batch_norm2d_layout_setup (&types[i]);
      if (!nn_plugin_register_type (plugin, &types[i], error))
        return FALSE;
    }
  return TRUE;
}

NN_PLUGIN_DEFINE ("dnnl", "0.1.0", "MIT",
                  "oneDNN providers: Conv2d, Linear, MaxPool2d, AvgPool2d, "
                  "BatchNorm2d, LayerNorm, matmul/mm/bmm/linear, softmax/log_softmax, "
                  "MultiheadAttention, and ReLU, add, mul and cat on its laid-out tensors "
                  "(rank above the OpenBLAS reference)",
                  dnnl_init)
