/* GELU: x * Phi(x), exact (erf) or PyTorch's tanh approximation. */
#include "activations.h"

#include "../common/nn-vecmath.h"
#include <nnkit/cpu.h>

#include <math.h>

static const char *const gelu_approximations[] = { "none", "tanh", NULL };

static const NnSchemaKey gelu_schema[] = {
  { "approximate", NN_KIND_ENUM, 0, NN_KEY_OPTIONAL, "\"none\"", 0, 0,
    gelu_approximations, "'none' for the exact erf form, 'tanh' for the "
    "tanh approximation" },
};

/* 8 at a time on the vector erf: libm's erff per element was an eighth
 * of a GPT's forward.  One body, compiled twice: for AVX2 (picked when
 * the CPU has it, NN_CPU_DISABLE honoured) and for the baseline. */
__attribute__ ((always_inline)) static inline void
gelu_erf_body (const float *x, float *y, gint64 n)
{
  for (gint64 i = 0; i < n; i += 8) {
    gint64 w = MIN (8, n - i);
    NnV8f v = nn_v8_load (x + i, w);
    NnV8f e = nn_v8_erf (v * NN_V8 ((float) M_SQRT1_2));
    nn_v8_store (y + i, v * NN_V8 (0.5f) * (NN_V8 (1.0f) + e), w);
  }
}

#ifdef NN_VECMATH_AVX2
__attribute__ ((target ("avx2,fma"))) static void
gelu_erf_avx2 (const float *x, float *y, gint64 n)
{
  gelu_erf_body (x, y, n);
}
#endif

/* @y may be @x (the in-place path): each block is read before written. */
static void
gelu_erf_run (const float *x, float *y, gint64 n)
{
#ifdef NN_VECMATH_AVX2
  static gsize once;
  static gboolean avx2;
  if (g_once_init_enter (&once)) {
    avx2 = nn_cpu_has (nn_cpu_info_get (), NN_CPU_AVX2 | NN_CPU_FMA);
    g_once_init_leave (&once, 1);
  }
  if (avx2) {
    gelu_erf_avx2 (x, y, n);
    return;
  }
#endif
  gelu_erf_body (x, y, n);
}

static void
gelu_erf_kernel (const float *restrict x, float *restrict y, gint64 n,
                 gconstpointer params)
{
  gelu_erf_run (x, y, n);
}

/* @y may be @x: element i is read before it is written. */
static void
gelu_tanh_run (const float *x, float *y, gint64 n)
{
  const float k = (float) (M_2_SQRTPI * M_SQRT1_2); /* sqrt(2 / pi) */
  for (gint64 i = 0; i < n; i++) {
    float v = x[i];
    y[i] = 0.5f * v * (1.0f + tanhf (k * (v + 0.044715f * v * v * v)));
  }
}

static void
gelu_tanh_kernel (const float *restrict x, float *restrict y, gint64 n,
                  gconstpointer params)
{
  gelu_tanh_run (x, y, n);
}

/* F.gelu(input, approximate='none'): None takes the config's. */
static const NnArgSpec gelu_args[] = {
  NN_ACT_INPUT_ARG,
  { "approximate", NN_ARG_STRING | NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null",
    "'none' or 'tanh' (None: the config's)" },
};

static const char *const gelu_aliases[] = {
  "gelu", "torch.nn.functional.gelu", NULL
};

/* The kernel of one call, or NULL with an error for an unknown form. */
static NnActKernel
gelu_kernel (NnModule *self, const NnArgs *args, GError **error)
{
  NnValue *a = nn_args_get (args, 1);
  const char *form = nn_value_is_none (a)
                       ? nn_module_config_string (self, "approximate")
                       : nn_value_get_string (a);
  if (g_str_equal (form, "tanh"))
    return gelu_tanh_kernel;
  if (g_str_equal (form, "none"))
    return gelu_erf_kernel;
  g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
               "argument 'approximate' must be 'none' or 'tanh', found '%s'",
               form);
  return NULL;
}

static NnValue *
gelu_forward (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnActKernel kernel = gelu_kernel (self, args, error);
  return kernel ? nn_act_map (args, kernel, NULL, error) : NULL;
}

/* The engine's path: @out is a new tensor, or the input itself when it
 * dies at this call (a Linear's result before GELU): no allocation then. */
static gboolean
gelu_forward_into (NnModule *self, NnCall *call, const NnArgs *args,
                   NnTensor *out, NnWorkspace *ws, NnThreadPool *pool,
                   GError **error)
{
  NnActKernel kernel = gelu_kernel (self, args, error);
  if (!kernel)
    return FALSE;
  const float *x = nn_tensor_f32 (nn_args_tensor (args, 0));
  if (kernel == gelu_tanh_kernel)
    gelu_tanh_run (x, nn_tensor_f32 (out), nn_tensor_numel (out));
  else
    gelu_erf_run (x, nn_tensor_f32 (out), nn_tensor_numel (out));
  return TRUE;
}

static NnValue *
gelu_infer (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  if (!gelu_kernel (self, args, error))
    return NULL;
  return nn_act_infer_same (self, call, args, error);
}

/* Exact: Phi (x) + x phi (x).  Tanh form: with u = k (x + 0.044715 x^3),
 * 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) k (1 + 3 * 0.044715 x^2). */
static float
gelu_erf_deriv (float x, float y)
{
  double v = x;
  return (float) (0.5 * (1.0 + erf (v * M_SQRT1_2))
                  + v * exp (-0.5 * v * v) * 0.5 * M_2_SQRTPI * M_SQRT1_2);
}

static float
gelu_tanh_deriv (float x, float y)
{
  const double k = M_2_SQRTPI * M_SQRT1_2, v = x;
  double t = tanh (k * (v + 0.044715 * v * v * v));
  return (float) (0.5 * (1.0 + t)
                  + 0.5 * v * (1.0 - t * t) * k * (1.0 + 3.0 * 0.044715 * v * v));
}

static NnValue *
gelu_backward (NnModule *self, NnCall *call, const NnArgs *args,
               const NnValue *out, const NnValue *grad_out, GError **error)
{
  NnActKernel kernel = gelu_kernel (self, args, error);
  if (!kernel)
    return NULL;
  return nn_act_backward_map (args, out, grad_out,
                              kernel == gelu_tanh_kernel ? gelu_tanh_deriv
                                                         : gelu_erf_deriv,
                              error);
}

static char *
gelu_extra_repr (NnModule *self)
{
  g_autofree char *a = nn_module_config_repr (self, "approximate");
  return g_strdup_printf ("approximate=%s", a);
}

const NnLayerType nn_gelu_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "GELU",
  .doc = "Gaussian error linear unit x * Phi(x)",
  .schema = gelu_schema,
  .n_schema = G_N_ELEMENTS (gelu_schema),
  .args = gelu_args,
  .n_args = G_N_ELEMENTS (gelu_args),
  .aliases = gelu_aliases,
  .create = nn_act_create_nothing,
  .forward = gelu_forward,
  .inplace_arg = 1, /* input */
  .forward_into = gelu_forward_into,
  .backward = gelu_backward,
  .infer = gelu_infer,
  .extra_repr = gelu_extra_repr,
  .fuse = &nn_gelu_fuse,
};
