/* ResidualBlock: a composite layer written in C,
 *   y = x + alpha * act(conv(x)).
 * Its children are whatever modules the descriptor (or a later surgery)
 * puts under the names "conv" and "act": it reaches them only through the
 * core, by name, on every call, so replacements and hooks are always seen.
 * It is not a container: its children can be replaced but not inserted or
 * deleted, because the forward needs exactly these two. */
#include "example.h"

#include <string.h>

static const char *const residual_children[] = { "conv", "act" };

static const NnSchemaKey residual_block_schema[] = {
  { "alpha", NN_KIND_FLOAT, 0, NN_KEY_OPTIONAL, "1.0", 0, 0, NULL,
    "scale of the residual branch: x + alpha * act(conv(x))" },
};

/* No parameters of its own: the children hold them. */
static gboolean
residual_block_create (NnModule *self, GError **error)
{
  return TRUE;
}

static gboolean
is_expected_child (const char *name)
{
  for (gsize i = 0; i < G_N_ELEMENTS (residual_children); i++)
    if (strcmp (name, residual_children[i]) == 0)
      return TRUE;
  return FALSE;
}

/* Runs once the tree is built and after every surgery, so a block missing
 * a child is refused before anything tries to run it. */
static gboolean
residual_block_check (NnModule *self, GError **error)
{
  for (gsize i = 0; i < G_N_ELEMENTS (residual_children); i++)
    if (!nn_module_get_child (self, residual_children[i])) {
      g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_INVALID,
                   "ResidualBlock needs a child named '%s' (children: 'conv', "
                   "'act')", residual_children[i]);
      return FALSE;
    }
  for (guint i = 0; i < nn_module_n_children (self); i++) {
    const char *name;
    nn_module_child_at (self, i, &name);
    if (!is_expected_child (name)) {
      g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_INVALID,
                   "ResidualBlock has an unexpected child '%s' (expected "
                   "'conv' and 'act')", name);
      return FALSE;
    }
  }
  return TRUE;
}

static gboolean
branch_fits (const NnShape *in, const NnShape *branch, GError **error)
{
  if (nn_shape_equal (in, branch))
    return TRUE;
  g_autofree char *want = nn_shape_to_string (in);
  g_autofree char *found = nn_shape_to_string (branch);
  g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
               "the residual add needs act(conv(x)) shaped like the input %s, "
               "found %s", want, found);
  return FALSE;
}

static const NnArgSpec residual_block_args[] = {
  { "input", NN_ARG_TENSOR, NN_DTYPE_BIT (NN_DTYPE_F32), 0, NULL,
    "float32, as conv expects it" },
};

/* act(conv(x)) through the core, by name: hooks fire, a replaced child is
 * seen, and a child's own error is already prefixed with its path
 * ("0.act: ScaledLeakyReLU: ...").  In shape inference the same calls
 * infer, so this serves forward and infer alike.  Returns (transfer full). */
static NnTensor *
residual_branch (NnModule *self, NnCall *call, NnTensor *input, GError **error)
{
  g_autoptr (NnTensor) mid = nn_call_child (call, self, "conv", input, error);
  if (!mid)
    return NULL;
  g_autoptr (NnTensor) branch = nn_call_child (call, self, "act", mid, error);
  if (!branch)
    return NULL;
  if (branch->dtype != NN_DTYPE_F32) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "expected act to return float32, found %s",
                 nn_dtype_name (branch->dtype));
    return NULL;
  }
  if (!branch_fits (&input->shape, &branch->shape, error))
    return NULL;
  return g_steal_pointer (&branch);
}

/* Shape inference: the children infer on meta tensors; nothing computes. */
static NnValue *
residual_block_infer (NnModule *self, NnCall *call, const NnArgs *args,
                      GError **error)
{
  NnTensor *input = nn_args_tensor (args, 0);
  g_autoptr (NnTensor) branch = residual_branch (self, call, input, error);
  if (!branch)
    return NULL;
  return nn_value_take_tensor (nn_tensor_new_meta (NN_DTYPE_F32, &input->shape));
}

/* @args are borrowed; every intermediate tensor returned by the core is
 * owned here and released before returning the new output. */
static NnValue *
residual_block_forward (NnModule *self, NnCall *call, const NnArgs *args,
                        GError **error)
{
  NnTensor *input = nn_args_tensor (args, 0);
  g_autoptr (NnTensor) branch = residual_branch (self, call, input, error);
  if (!branch)
    return NULL;

  const float alpha = (float) nn_module_config_float (self, "alpha");
  const float *x = nn_tensor_f32 (input), *b = nn_tensor_f32 (branch);
  NnTensor *out = nn_tensor_new (NN_DTYPE_F32, &input->shape);
  if (!out) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "cannot allocate the output");
    return NULL;
  }
  float *y = nn_tensor_f32 (out);
  for (gint64 i = 0, n = nn_tensor_numel (input); i < n; i++)
    y[i] = x[i] + alpha * b[i];
  return nn_value_take_tensor (out);
}

/* PyTorch prints only what differs from the default. */
static char *
residual_block_extra_repr (NnModule *self)
{
  if (nn_module_config_float (self, "alpha") == 1.0)
    return NULL;
  g_autofree char *alpha = nn_module_config_repr (self, "alpha");
  return g_strdup_printf ("alpha=%s", alpha);
}

const NnLayerType nn_example_residual_block_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "ResidualBlock",
  .doc = "x + alpha * act(conv(x)) over two named children, 'conv' and 'act'",
  .schema = residual_block_schema,
  .n_schema = G_N_ELEMENTS (residual_block_schema),
  .flags = 0,
  .create = residual_block_create,
  .args = residual_block_args,
  .n_args = G_N_ELEMENTS (residual_block_args),
  .check = residual_block_check,
  .infer = residual_block_infer,
  .forward = residual_block_forward,
  .extra_repr = residual_block_extra_repr,
};
