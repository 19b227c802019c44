/* Helpers of the attention plugin: projections, calls into children
 * through the core, and the elementwise steps of the Transformer layers. */
#include "attention.h"
#include "../common/nn-layer-util.h"

#include <string.h>

#include <cblas.h>
#include "nn-blas.h"

const char *const nn_att_activations[] = { "relu", "gelu", NULL };

void
nn_att_linear (const float *x, gint64 rows, gint64 in, const float *w,
               const float *b, gint64 out, float *y)
{
  nn_blas_prepare_work (rows * in * out);
  if (rows > 0 && out > 0)
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, (int) rows, (int) out,
                 (int) in, 1.0f, x, (int) in, w, (int) in, 0.0f, y, (int) out);
  if (b)
    for (gint64 r = 0; r < rows; r++)
      for (gint64 j = 0; j < out; j++)
        y[r * out + j] += b[j];
}

gboolean
nn_att_require_child (NnModule *self, const char *name, const char *what,
                      GError **error)
{
  if (nn_module_get_child (self, name))
    return TRUE;
  g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_NOT_FOUND,
               "expected a child '%s' (%s), found none", name, what);
  return FALSE;
}

NnValue *
nn_att_call (NnCall *call, NnModule *self, const char *path, NnValue *args,
             NnValue *kwargs, GError **error)
{
  NnValue *out = nn_call_module (call, self, path, args, kwargs, error);
  nn_value_unref (args);
  if (kwargs)
    nn_value_unref (kwargs);
  return out;
}

/* A tensor value, or None for NULL (transfer none of @t). */
NnValue *
nn_att_tensor_or_none (NnTensor *t)
{
  return t ? nn_value_new_tensor (t) : nn_value_new_none ();
}

NnTensor *
nn_att_call_tensor (NnCall *call, NnModule *self, const char *path,
                    NnTensor *x, GError **error)
{
  return nn_call_child (call, self, path, x, error);
}

NnTensor *
nn_att_first (NnValue *v, const char *path, GError **error)
{
  if (!v)
    return NULL;
  NnValue *item = nn_value_kind (v) == NN_VALUE_TUPLE && nn_value_n_items (v) > 0
                      ? nn_value_item (v, 0) : NULL;
  NnTensor *t = item ? nn_value_get_tensor (item) : NULL;
  if (t)
    nn_tensor_ref (t);
  else
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "%s: expected a tuple (tensor, ...) result", path);
  nn_value_unref (v);
  return t;
}

NnTensor *
nn_att_add (NnTensor *a, NnTensor *b, GError **error)
{
  if (!nn_shape_equal (&a->shape, &b->shape)) {
    g_autofree char *sa = nn_shape_to_string (&a->shape);
    g_autofree char *sb = nn_shape_to_string (&b->shape);
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "residual connection: expected the branch to keep shape %s, "
                 "found %s", sa, sb);
    return NULL;
  }
  gboolean meta = nn_tensor_is_meta (a) || nn_tensor_is_meta (b);
  NnTensor *y = nn_lu_new_f32 (&a->shape, meta);
  if (y && !meta) {
    const float *pa = nn_tensor_f32 (a), *pb = nn_tensor_f32 (b);
    float *py = nn_tensor_f32 (y);
    for (gint64 i = 0, n = nn_tensor_numel (a); i < n; i++)
      py[i] = pa[i] + pb[i];
  }
  if (!y)
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "cannot allocate a tensor");
  return y;
}

NnTensor *
nn_att_activation (NnTensor *x, gboolean gelu)
{
  gboolean meta = nn_tensor_is_meta (x);
  NnTensor *y = nn_lu_new_f32 (&x->shape, meta);
  if (y && !meta) {
    const float *restrict px = nn_tensor_f32 (x);
    float *restrict py = nn_tensor_f32 (y);
    gint64 n = nn_tensor_numel (x);
    /* One loop per form, and relu without a branch (a random sign
     * mispredicts half the time): the sign bit clears the value. */
    if (gelu)
      for (gint64 i = 0; i < n; i++)
        py[i] = (float) (0.5 * px[i] * (1.0 + erf (px[i] / G_SQRT2)));
    else
      for (gint64 i = 0; i < n; i++) {
        gint32 bits;
        memcpy (&bits, px + i, sizeof bits);
        bits &= ~(bits >> 31);
        memcpy (py + i, &bits, sizeof bits);
      }
  }
  return y;
}
