/* Sequential: runs its children in registration order, each through the
 * core so that hooks and replacements are always seen. */
#include "containers.h"

static NnTensor *
sequential_forward (NnModule *self, NnCall *call, NnTensor *input,
                    GError **error)
{
  NnTensor *x = nn_tensor_ref (input);
  guint n = nn_module_n_children (self);

  for (guint i = 0; i < n; i++)
    {
      const char *name = NULL;
      nn_module_child_at (self, i, &name);
      NnTensor *y = nn_call_child (call, self, name, x, error);
      nn_tensor_unref (x);
      if (y == NULL)
        return NULL;
      x = y;
    }
  /* An empty Sequential is the identity, as in PyTorch. */
  return x;
}

static gboolean
sequential_infer_shape (NnModule *self, NnCall *call, const NnShape *in,
                        NnShape *out, GError **error)
{
  NnShape cur = *in;
  guint n = nn_module_n_children (self);

  for (guint i = 0; i < n; i++)
    {
      const char *name = NULL;
      NnShape next;
      nn_module_child_at (self, i, &name);
      if (!nn_call_child_shape (call, self, name, &cur, &next, error))
        return FALSE;
      cur = next;
    }
  *out = cur;
  return TRUE;
}

static gboolean
sequential_create (NnModule *self, GError **error)
{
  return TRUE;
}

const NnLayerType nn_sequential_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "Sequential",
  .doc = "Runs its children in order, feeding each one's output to the next",
  .schema = NULL,
  .n_schema = 0,
  .flags = NN_LAYER_INDEXABLE | NN_LAYER_CONTAINER,
  .create = sequential_create,
  .infer_shape = sequential_infer_shape,
  .forward = sequential_forward,
};
