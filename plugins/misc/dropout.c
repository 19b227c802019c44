/* Dropout: the identity in eval mode, as torch.nn.Dropout after .eval(),
 * and F.dropout with training=False; in training mode (nn_module_train)
 * it zeroes elements with probability p and scales the rest. */
#include "misc.h"

#include <nnkit/train.h>

static const NnSchemaKey dropout_schema[] = {
  { "p", NN_KIND_FLOAT, 0, NN_KEY_OPTIONAL | NN_KEY_HAS_MIN | NN_KEY_HAS_MAX,
    "0.5", 0, 1, NULL, "probability of an element to be zeroed (training only)" },
  { "inplace", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "false", 0, 0, NULL,
    "in PyTorch, zero the input in place (repr only here)" },
};

/* F.dropout(input, p=0.5, training=True, inplace=False).  None takes the
 * module's: its config's p and its mode (nn_module_train). */
static const NnArgSpec dropout_args[] = {
  NN_MISC_INPUT_ARG,
  { "p", NN_ARG_FLOAT | NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null",
    "drop probability (None: the config's p)" },
  { "training", NN_ARG_BOOL | NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null",
    "drop elements (None: the module's mode, eval by default)" },
  { "inplace", NN_ARG_BOOL | NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null",
    "ignored: a new tensor is returned" },
};

static const char *const dropout_aliases[] = {
  "dropout", "torch.nn.functional.dropout", "torch.dropout", NULL
};

static gboolean
dropout_params (NnModule *self, const NnArgs *args, double *p,
                gboolean *training, GError **error)
{
  NnValue *pv = nn_args_get (args, 1), *tv = nn_args_get (args, 2);
  *p = nn_value_is_none (pv) ? nn_module_config_float (self, "p")
                             : nn_value_get_float (pv);
  *training = nn_value_is_none (tv) ? nn_module_is_training (self)
                                    : nn_value_get_bool (tv);
  if (!(*p >= 0.0 && *p <= 1.0)) {
    g_autofree char *t = nn_format_py_float (*p);
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "dropout probability has to be between 0 and 1, but got %s", t);
    return FALSE;
  }
  return TRUE;
}

static NnValue *
dropout_infer (NnModule *self, NnCall *call, const NnArgs *args,
               GError **error)
{
  double p;
  gboolean training;
  if (!dropout_params (self, args, &p, &training, error))
    return NULL;
  return nn_value_ref (nn_args_get (args, 0));
}

/* In training, each element is kept with probability 1 - p (a draw from
 * the call's generator, seeded by the tape) and scaled by 1 / (1 - p);
 * otherwise, and for p = 0, the input itself is returned. */
static NnValue *
dropout_forward (NnModule *self, NnCall *call, const NnArgs *args,
                 GError **error)
{
  double p;
  gboolean training;
  if (!dropout_params (self, args, &p, &training, error))
    return NULL;
  NnTensor *x = nn_args_tensor (args, 0);
  if (!training || p == 0.0)
    return nn_value_ref (nn_args_get (args, 0));
  if (x->dtype != NN_DTYPE_F32) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "dropout in training mode needs a float32 input, found %s",
                 nn_dtype_name (x->dtype));
    return NULL;
  }
  if (!nn_tensor_make_plain (x, error))
    return NULL;
  NnTensor *y = nn_tensor_new (NN_DTYPE_F32, &x->shape);
  if (!y) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "cannot allocate the output");
    return NULL;
  }
  GRand *rng = nn_call_get_rng (call);
  const float scale = p < 1.0 ? (float) (1.0 / (1.0 - p)) : 0.0f;
  const float *xd = nn_tensor_f32 (x);
  float *yd = nn_tensor_f32 (y);
  for (gint64 i = 0, n = nn_tensor_numel (x); i < n; i++)
    yd[i] = g_rand_double (rng) >= p ? xd[i] * scale : 0.0f;
  return nn_value_take_tensor (y);
}

/* The mask is read back from the output: a zero output of a non-zero
 * input was dropped.  A zero input counts as kept (its drop is not
 * visible), a measure-zero difference documented in docs/TRAINING.md. */
static NnValue *
dropout_backward (NnModule *self, NnCall *call, const NnArgs *args,
                  const NnValue *out, const NnValue *grad_out, GError **error)
{
  NnTensor *x = nn_args_tensor (args, 0), *y = nn_value_get_tensor (out);
  NnTensor *g = nn_value_get_tensor (grad_out);
  NnValue *res = nn_value_new_tuple ();
  if (y == x) {
    nn_value_append (res, nn_value_new_tensor (g));
    return res;
  }
  double p;
  gboolean training;
  if (!dropout_params (self, args, &p, &training, error)) {
    nn_value_unref (res);
    return NULL;
  }
  const float scale = p < 1.0 ? (float) (1.0 / (1.0 - p)) : 0.0f;
  NnTensor *dx = nn_tensor_new (NN_DTYPE_F32, &x->shape);
  const float *xd = nn_tensor_f32 (x), *yd = nn_tensor_f32 (y);
  const float *gd = nn_tensor_f32 (g);
  float *d = nn_tensor_f32 (dx);
  for (gint64 i = 0, n = nn_tensor_numel (x); i < n; i++)
    d[i] = (yd[i] == 0.0f && xd[i] != 0.0f) ? 0.0f : gd[i] * scale;
  nn_value_append (res, nn_value_take_tensor (dx));
  return res;
}

static char *
dropout_extra_repr (NnModule *self)
{
  g_autofree char *p = nn_module_config_repr (self, "p");
  g_autofree char *inplace = nn_module_config_repr (self, "inplace");
  return g_strdup_printf ("p=%s, inplace=%s", p, inplace);
}

const NnLayerType nn_dropout_type = {
  .struct_size = sizeof (NnLayerType),
  /* Returns its input in eval mode, a laid-out one included; training
   * mode reads the values (dropout_forward makes them plain). */
  .flags = NN_LAYER_ALIASES | NN_LAYER_LAYOUT_AWARE,
  .name = "Dropout",
  .doc = "randomly zeroes elements in training; the identity in eval mode",
  .schema = dropout_schema,
  .n_schema = G_N_ELEMENTS (dropout_schema),
  .args = dropout_args,
  .n_args = G_N_ELEMENTS (dropout_args),
  .aliases = dropout_aliases,
  .create = nn_misc_create_nothing,
  .forward = dropout_forward,
  .infer = dropout_infer,
  .backward = dropout_backward,
  .extra_repr = dropout_extra_repr,
};
