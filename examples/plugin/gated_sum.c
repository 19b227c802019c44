/* GatedSum: a leaf with several inputs and a tuple result,
 *   forward(x, y, gate=None, *, scale=1.0) -> (out, g)
 *   g   = sigmoid(gate), or 0.5 everywhere when gate is None
 *   out = scale * (g * x + (1 - g) * y)
 * It shows an ABI 2 signature: two required tensors, an optional tensor
 * that may be None, a keyword-only float, and a tuple of two tensors
 * returned, as a PyTorch module returning (out, g) would. */
#include "example.h"

#include <math.h>

/* Python's order: positional x, y, gate, then keyword-only scale.  The core
 * binds positional and keyword arguments to these names, fills defaults
 * and checks kinds and dtypes before forward or infer runs. */
static const NnArgSpec gated_sum_args[] = {
  { "x", NN_ARG_TENSOR, NN_DTYPE_BIT (NN_DTYPE_F32), 0, NULL,
    "first float32 tensor" },
  { "y", NN_ARG_TENSOR, NN_DTYPE_BIT (NN_DTYPE_F32), 0, NULL,
    "second float32 tensor, shaped like x" },
  { "gate", NN_ARG_TENSOR | NN_ARG_NONE, NN_DTYPE_BIT (NN_DTYPE_F32),
    NN_ARG_OPTIONAL, "null", "gate logits shaped like x; None: an even mix" },
  { "scale", NN_ARG_FLOAT, 0, NN_ARG_OPTIONAL | NN_ARG_KW_ONLY, "1.0",
    "factor applied to the mix" },
};

static gboolean
gated_sum_create (NnModule *self, GError **error)
{
  return TRUE;
}

static gboolean
same_shape (const char *name, const NnTensor *t, const NnTensor *x,
            GError **error)
{
  if (nn_shape_equal (&t->shape, &x->shape))
    return TRUE;
  g_autofree char *want = nn_shape_to_string (&x->shape);
  g_autofree char *found = nn_shape_to_string (&t->shape);
  g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
               "expected %s shaped like x %s, found %s", name, want, found);
  return FALSE;
}

/* Checks the shapes; @gate_out is the gate tensor or NULL for None. */
static gboolean
gated_sum_check (const NnArgs *args, NnTensor **gate_out, GError **error)
{
  NnTensor *x = nn_args_tensor (args, 0), *y = nn_args_tensor (args, 1);
  NnValue *gate = nn_args_get (args, 2);
  *gate_out = nn_value_is_none (gate) ? NULL : nn_value_get_tensor (gate);
  return same_shape ("y", y, x, error)
         && (!*gate_out || same_shape ("gate", *gate_out, x, error));
}

/* (out, g) as a tuple value: (transfer full) of both tensors. */
static NnValue *
pair (NnTensor *out, NnTensor *g)
{
  NnValue *t = nn_value_new_tuple ();
  nn_value_append (t, nn_value_take_tensor (out));
  nn_value_append (t, nn_value_take_tensor (g));
  return t;
}

static NnValue *
gated_sum_infer (NnModule *self, NnCall *call, const NnArgs *args,
                 GError **error)
{
  NnTensor *gate;
  if (!gated_sum_check (args, &gate, error))
    return NULL;
  const NnShape *s = &nn_args_tensor (args, 0)->shape;
  return pair (nn_tensor_new_meta (NN_DTYPE_F32, s),
               nn_tensor_new_meta (NN_DTYPE_F32, s));
}

static NnValue *
gated_sum_forward (NnModule *self, NnCall *call, const NnArgs *args,
                   GError **error)
{
  NnTensor *gate;
  if (!gated_sum_check (args, &gate, error))
    return NULL;
  NnTensor *xt = nn_args_tensor (args, 0);
  const float *x = nn_tensor_f32 (xt);
  const float *y = nn_tensor_f32 (nn_args_tensor (args, 1));
  const float *gl = gate ? nn_tensor_f32 (gate) : NULL;
  const float scale = (float) nn_args_float (args, 3);

  NnTensor *out = nn_tensor_new (NN_DTYPE_F32, &xt->shape);
  NnTensor *g = nn_tensor_new (NN_DTYPE_F32, &xt->shape);
  if (!out || !g) {
    g_clear_pointer (&out, nn_tensor_unref);
    g_clear_pointer (&g, nn_tensor_unref);
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "cannot allocate the outputs");
    return NULL;
  }
  float *o = nn_tensor_f32 (out), *gv = nn_tensor_f32 (g);
  for (gint64 i = 0, n = nn_tensor_numel (xt); i < n; i++) {
    gv[i] = gl ? 1.0f / (1.0f + expf (-gl[i])) : 0.5f;
    o[i] = scale * (gv[i] * x[i] + (1.0f - gv[i]) * y[i]);
  }
  return pair (out, g);
}

const NnLayerType nn_example_gated_sum_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "GatedSum",
  .doc = "(scale * (g * x + (1 - g) * y), g) with g = sigmoid(gate) or 0.5",
  .schema = NULL,
  .n_schema = 0,
  .args = gated_sum_args,
  .n_args = G_N_ELEMENTS (gated_sum_args),
  .create = gated_sum_create,
  .infer = gated_sum_infer,
  .forward = gated_sum_forward,
};
