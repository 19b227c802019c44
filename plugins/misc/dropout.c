/* Dropout: the identity in eval mode, as torch.nn.Dropout after .eval(),
 * and F.dropout with training=False. */
#include "misc.h"

static const NnSchemaKey dropout_schema[] = {
  { "p", NN_KIND_FLOAT, 0, NN_KEY_OPTIONAL | NN_KEY_HAS_MIN | NN_KEY_HAS_MAX,
    "0.5", 0, 1, NULL, "probability of an element to be zeroed (training only)" },
  { "inplace", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "false", 0, 0, NULL,
    "in PyTorch, zero the input in place (repr only here)" },
};

/* F.dropout(input, p=0.5, training=True, inplace=False).  None takes the
 * module's behaviour (eval mode); nnkit only runs inference, so an
 * explicit training=True with p > 0 is refused rather than ignored. */
static const NnArgSpec dropout_args[] = {
  NN_MISC_INPUT_ARG,
  { "p", NN_ARG_FLOAT | NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null",
    "drop probability (None: the config's p)" },
  { "training", NN_ARG_BOOL | NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null",
    "must be False or None: nnkit runs in eval mode" },
  { "inplace", NN_ARG_BOOL | NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null",
    "ignored: the input is returned" },
};

static const char *const dropout_aliases[] = {
  "dropout", "torch.nn.functional.dropout", "torch.dropout", NULL
};

static NnValue *
dropout_forward (NnModule *self, NnCall *call, const NnArgs *args,
                 GError **error)
{
  NnValue *p = nn_args_get (args, 1), *training = nn_args_get (args, 2);
  double pv = nn_value_is_none (p) ? nn_module_config_float (self, "p")
                                   : nn_value_get_float (p);
  if (!(pv >= 0.0 && pv <= 1.0)) {
    g_autofree char *t = nn_format_py_float (pv);
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "dropout probability has to be between 0 and 1, but got %s", t);
    return NULL;
  }
  if (!nn_value_is_none (training) && nn_value_get_bool (training) && pv > 0.0) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "dropout with training=True is not supported: nnkit runs "
                 "in eval mode (pass training=False)");
    return NULL;
  }
  return nn_value_ref (nn_args_get (args, 0));
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
  .flags = NN_LAYER_ALIASES, /* returns its input or a view of it */
  .name = "Dropout",
  .doc = "randomly zeroes elements in training; the identity in eval mode",
  .schema = dropout_schema,
  .n_schema = G_N_ELEMENTS (dropout_schema),
  .args = dropout_args,
  .n_args = G_N_ELEMENTS (dropout_args),
  .aliases = dropout_aliases,
  .create = nn_misc_create_nothing,
  .forward = dropout_forward,
  .infer = dropout_forward,
  .extra_repr = dropout_extra_repr,
};
