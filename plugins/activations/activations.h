/* activations plugin: the layer types it registers and the elementwise
 * helpers they share.  Private to the plugin. */
#ifndef NN_ACTIVATIONS_H
#define NN_ACTIVATIONS_H

#include <nnkit/plugin.h>

/* act_fuse.c: the activations' fusion declarations. */
extern const NnFuseInfo nn_relu_fuse, nn_relu6_fuse, nn_hardtanh_fuse,
  nn_silu_fuse, nn_hardswish_fuse, nn_gelu_fuse, nn_sigmoid_fuse,
  nn_tanh_fuse;

extern const NnLayerType nn_relu_type;
extern const NnLayerType nn_relu6_type;
extern const NnLayerType nn_hardtanh_type;
extern const NnLayerType nn_sigmoid_type;
extern const NnLayerType nn_hardsigmoid_type;
extern const NnLayerType nn_silu_type;
extern const NnLayerType nn_hardswish_type;
extern const NnLayerType nn_gelu_type;
extern const NnLayerType nn_tanh_type;
extern const NnLayerType nn_softmax_type;
extern const NnLayerType nn_softmax2d_type;
extern const NnLayerType nn_rrelu_type;
extern const NnLayerType nn_rrelu_fn_type;
extern const NnLayerType nn_leaky_relu_type;
extern const NnLayerType nn_prelu_type;
extern const NnLayerType nn_elu_type;
extern const NnLayerType nn_selu_type;
extern const NnLayerType nn_celu_type;
extern const NnLayerType nn_mish_type;
extern const NnLayerType nn_softplus_type;
extern const NnLayerType nn_softsign_type;
extern const NnLayerType nn_log_sigmoid_type;
extern const NnLayerType nn_log_softmax_type;
extern const NnLayerType nn_softmin_type;
extern const NnLayerType nn_glu_type;
extern const NnLayerType nn_threshold_type;
extern const NnLayerType nn_hardshrink_type;
extern const NnLayerType nn_softshrink_type;
extern const NnLayerType nn_tanhshrink_type;
extern const NnLayerType nn_leaky_relu_fn_type;
extern const NnLayerType nn_prelu_fn_type;
extern const NnLayerType nn_elu_fn_type;
extern const NnLayerType nn_selu_fn_type;
extern const NnLayerType nn_celu_fn_type;
extern const NnLayerType nn_mish_fn_type;
extern const NnLayerType nn_softplus_fn_type;
extern const NnLayerType nn_softsign_fn_type;
extern const NnLayerType nn_log_sigmoid_fn_type;
extern const NnLayerType nn_glu_fn_type;
extern const NnLayerType nn_threshold_fn_type;
extern const NnLayerType nn_hardshrink_fn_type;
extern const NnLayerType nn_softshrink_fn_type;
extern const NnLayerType nn_tanhshrink_fn_type;

/* The `inplace` flag PyTorch's activations take.  nnkit always returns a
 * new tensor, so it only shows in the repr. */
#define NN_ACT_INPLACE_KEY                                               \
  { "inplace", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "false", 0, 0, NULL,    \
    "in PyTorch, overwrite the input (repr only: nnkit returns a new tensor)" }

/* Forward signatures (ABI 2).  A functional spelling passes PyTorch's
 * extra arguments in the call (F.hardtanh(x, -2.0, 2.0)); None, the
 * default, means the module's config value, so one type serves both the
 * module and its functions.  nn_act_input_args: (input); nn_act_inplace_args:
 * (input, inplace=None), as F.relu(input, inplace=False). */
#define NN_ACT_INPUT_ARG                                                 \
  { "input", NN_ARG_TENSOR, NN_DTYPE_BIT (NN_DTYPE_F32), 0, NULL,          \
    "the tensor to transform, any shape" }
#define NN_ACT_INPLACE_ARG                                               \
  { "inplace", NN_ARG_BOOL | NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null",      \
    "ignored: nnkit returns a new tensor (None: the config's)" }
extern const NnArgSpec nn_act_input_args[1];
extern const NnArgSpec nn_act_inplace_args[2];

/* y[i] = f(x[i]) for @n elements; @params is the type's constants. */
typedef void (*NnActKernel) (const float *restrict x, float *restrict y,
                             gint64 n, gconstpointer params);

/* Applies @kernel to argument 0 (a float32 tensor of any shape, checked
 * by the core's binding).  Returns (transfer full) a tensor value of the
 * input's shape, or NULL when memory for it is exhausted. */
/* The derivative of a pointwise activation at input @x with output @y. */
typedef float (*NnActDeriv) (float x, float y);
/* A backward slot's body for a pointwise activation: a one-item tuple
 * holding grad_out * deriv (x, y), elementwise. */
NnValue *nn_act_backward_map (const NnArgs *args, const NnValue *out,
                              const NnValue *grad_out, NnActDeriv deriv,
                              GError **error);
NnValue *nn_act_map (const NnArgs *args, NnActKernel kernel,
                     gconstpointer params, GError **error);

/* (transfer full) a new F32 tensor of @shape, or NULL with an error saying
 * how many bytes could not be allocated. */
NnTensor *nn_act_alloc (const NnShape *shape, GError **error);
/* As nn_act_alloc, contents unspecified: for a result written in full. */
NnTensor *nn_act_alloc_full (const NnShape *shape, GError **error);
/* Runs @func over 0 .. @n-1 on the default thread pool, on as many
 * threads as @n elements are worth (nn_threads_for_work): the elementwise
 * maps and their backward passes, serial before (trainbwd). */
void nn_act_parallel (gint64 n, NnParallelFunc func, gpointer data);

/* infer() of the elementwise types: a meta tensor shaped as argument 0. */
NnValue *nn_act_infer_same (NnModule *self, NnCall *call, const NnArgs *args,
                            GError **error);


/* PyTorch's extra_repr for types whose only argument is inplace:
 * "inplace=True", or NULL (nothing) when false. */
char *nn_act_inplace_repr (NnModule *self);

/* exp(x) for the sigmoid family, written so that loops over it vectorise
 * (glibc's expf does not): 2^n * e^r with n = round(x / ln 2), r reduced
 * in two steps (Cody-Waite), e^r by its degree-7 Taylor polynomial on
 * |r| <= ln(2) / 2; about 2 ulp.  x is clamped to [-87, 88] so 2^n stays
 * a normal float: results saturate near 1e-38 and 1.6e38 instead of
 * reaching 0 and inf, which 1 / (1 + e) absorbs.  NaN stays NaN. */
static inline float
nn_act_expf (float x)
{
  x = x > 88.0f ? 88.0f : x;
  x = x < -87.0f ? -87.0f : x;
  /* Adding 1.5 * 2^23 rounds to an integer held in the low mantissa bits,
   * with no float-to-int conversion (undefined for NaN). */
  const float shifter = 12582912.0f;
  float t = x * 1.44269504088896341f + shifter;
  float n = t - shifter;
  float r = x - n * 0.693145751953125f;       /* ln 2, high bits: exact */
  r = r - n * 1.42860682030941723212e-6f;     /* ln 2, the rest */
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  union { float f; guint32 u; } bits = { t }, scale;
  /* t's mantissa holds n + 2^22; move n + 127 into the exponent field. */
  scale.u = (bits.u + 127u - 0x400000u) << 23;
  return p * scale.f;
}

/* The create of a type that registers nothing. */
gboolean nn_act_create_nothing (NnModule *self, GError **error);

#endif
