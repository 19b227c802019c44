/* Helpers shared by the layer families of plugins/ (norm, embedding,
 * activations, conv, pool, misc, recurrent, attention): header-only, so
 * each family's shared module carries its own copy and no plugin depends
 * on another.  Private to the plugins; not installed.
 *
 * Convention: a type's forward and infer slots may point to one function
 * that checks shapes, then returns a meta tensor when its input is meta
 * (shape inference) and computes otherwise, so the two never disagree. */
#ifndef NN_LAYER_UTIL_H
#define NN_LAYER_UTIL_H

#include <math.h>
#include <string.h>
#include <nnkit/plugin.h>

#include <stdarg.h>

/* A one-tensor result (transfer full of @t), or NULL when @t is NULL:
 * then @error keeps the reason a callee set, or says that the allocation
 * failed. */
static inline NnValue *
nn_lu_result (NnTensor *t, GError **error)
{
  if (!t) {
    if (!error || !*error)
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                   "cannot allocate the output tensor");
    return NULL;
  }
  return nn_value_take_tensor (t);
}

/* A new F32 tensor of @shape: a meta tensor when @meta, else zero-filled
 * storage.  Returns (transfer full) (nullable: out of memory). */
static inline NnTensor *
nn_lu_new_f32 (const NnShape *shape, gboolean meta)
{
  return meta ? nn_tensor_new_meta (NN_DTYPE_F32, shape)
              : nn_tensor_new (NN_DTYPE_F32, shape);
}

/* "[2, 3]" for messages; (transfer full). */
static inline char *
nn_lu_shape_str (const NnShape *s)
{
  return nn_shape_to_string (s);
}

/* Sets an NN_SHAPE_ERROR_MISMATCH "expected @what, found [shape]". */
static inline void
nn_lu_shape_error (GError **error, const char *what, const NnShape *found)
{
  g_autofree char *f = nn_shape_to_string (found);
  g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
               "expected %s, found %s", what, f);
}

/* Adds the float32 parameter "weight" of shape @weight and, when @bias,
 * "bias" of @n_bias elements, as the weighted layers' create does; FALSE
 * with NN_MODULE_ERROR_FAILED when either cannot be allocated. */
static inline gboolean
nn_lu_add_weight_bias (NnModule *self, const NnShape *weight, gboolean bias,
                       gint64 n_bias, GError **error)
{
  NnShape bs = { 1, { n_bias } };
  if (nn_module_add_parameter (self, "weight", NN_DTYPE_F32, weight)
      && (!bias || nn_module_add_parameter (self, "bias", NN_DTYPE_F32, &bs)))
    return TRUE;
  g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
               "cannot allocate the weights");
  return FALSE;
}

/* Sets an NN_SHAPE_ERROR_MISMATCH with a printf-style message; returns
 * FALSE, for `return nn_lu_shape_fail (error, ...)`. */
static inline gboolean nn_lu_shape_fail (GError **error, const char *fmt, ...)
  G_GNUC_PRINTF (2, 3);

static inline gboolean
nn_lu_shape_fail (GError **error, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error_literal (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH, msg);
  g_free (msg);
  return FALSE;
}

/* Wraps @dim (negative counts from the end) into [0, ndim), with
 * PyTorch's IndexError wording; a 0-d tensor counts as 1-d. */
static inline gboolean
nn_lu_wrap_dim (gint64 dim, guint ndim, guint *out, GError **error)
{
  gint64 n = MAX ((gint64) ndim, 1);
  if (dim < -n || dim >= n) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "Dimension out of range (expected to be in range of "
                 "[%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "], but got "
                 "%" G_GINT64_FORMAT ")", -n, n - 1, dim);
    return FALSE;
  }
  *out = (guint) (dim < 0 ? dim + n : dim);
  return TRUE;
}

/* Product of dims [from, to). */
static inline gint64
nn_lu_prod (const NnShape *s, guint from, guint to)
{
  gint64 p = 1;
  for (guint i = from; i < to && i < s->ndim; i++)
    p *= s->dims[i];
  return p;
}

/* The first tensor leaf of @v (transfer none), or NULL. */
static inline NnTensor *
nn_lu_first_tensor (const NnValue *v)
{
  if (!v)
    return NULL;
  if (nn_value_kind (v) == NN_VALUE_TENSOR)
    return nn_value_get_tensor (v);
  NnValueKind k = nn_value_kind (v);
  if (k == NN_VALUE_TUPLE || k == NN_VALUE_LIST || k == NN_VALUE_DICT)
    for (guint i = 0; i < nn_value_n_items (v); i++) {
      NnTensor *t = nn_lu_first_tensor (nn_value_item (v, i));
      if (t)
        return t;
    }
  return NULL;
}

/* torchinfo's Mult-Adds for a module's own parameters: "weight" and "bias"
 * count output_size[0] * numel (ConvNd: numel * prod(output_size without
 * dim 1)); other names containing weight or bias (RNN's weight_ih_l0)
 * count prod(output_size[:2]) * numel.  output_size is that of the first
 * tensor of the result, as torchinfo records it. */
static inline guint64
nn_lu_count_macs_params (NnModule *self, const NnValue *out, gboolean conv)
{
  NnTensor *o = nn_lu_first_tensor (out);
  if (!o || o->shape.ndim == 0)
    return 0;
  const NnShape *s = &o->shape;
  guint64 macs = 0;
  for (guint i = 0; i < nn_module_n_parameters (self); i++) {
    const char *name = NULL;
    NnTensor *p = nn_module_parameter_at (self, i, &name);
    guint64 n = (guint64) nn_tensor_numel (p);
    if (g_str_equal (name, "weight") || g_str_equal (name, "bias")) {
      if (conv)
        macs += n * (guint64) (s->dims[0] * nn_lu_prod (s, 2, s->ndim));
      else
        macs += n * (guint64) s->dims[0];
    } else if (strstr (name, "weight") || strstr (name, "bias")) {
      macs += n * (guint64) nn_lu_prod (s, 0, 2);
    }
  }
  return macs;
}

/* Fills own F32 tensor @name (absent: nothing) with @v. */
static inline void
nn_lu_fill (NnModule *self, const char *name, float v)
{
  NnTensor *t = nn_module_get_parameter (self, name);
  if (!t)
    t = nn_module_get_buffer (self, name);
  float *d = t ? nn_tensor_f32 (t) : NULL;
  if (!d)
    return;
  for (gint64 i = 0, n = nn_tensor_numel (t); i < n; i++)
    d[i] = v;
}

/* A standard normal draw (Box-Muller), for init.normal_. */
static inline double
nn_lu_randn (GRand *rng)
{
  double u1 = g_rand_double (rng), u2 = g_rand_double (rng);
  if (u1 < 1e-300)
    u1 = 1e-300;
  return sqrt (-2.0 * log (u1)) * cos (2.0 * G_PI * u2);
}

/* Python's repr of a bool. */
static inline const char *
nn_lu_py_bool (gboolean b)
{
  return b ? "True" : "False";
}

#endif
