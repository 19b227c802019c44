/* Dropout: the identity in eval mode, as torch.nn.Dropout after .eval(). */
#include "misc.h"

static const NnSchemaKey dropout_schema[] = {
  { "p", NN_KIND_FLOAT, 0, NN_KEY_OPTIONAL | NN_KEY_HAS_MIN | NN_KEY_HAS_MAX,
    "0.5", 0, 1, NULL, "probability of an element to be zeroed (training only)" },
  { "inplace", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "false", 0, 0, NULL,
    "in PyTorch, zero the input in place (repr only here)" },
};

static char *
dropout_extra_repr (NnModule *self)
{
  g_autofree char *p = nn_module_config_repr (self, "p");
  g_autofree char *inplace = nn_module_config_repr (self, "inplace");
  return g_strdup_printf ("p=%s, inplace=%s", p, inplace);
}

const NnLayerType nn_dropout_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "Dropout",
  .doc = "randomly zeroes elements in training; the identity in eval mode",
  .schema = dropout_schema,
  .n_schema = G_N_ELEMENTS (dropout_schema),
  .create = nn_misc_create_nothing,
  .forward = nn_misc_forward_identity,
  .extra_repr = dropout_extra_repr,
};
