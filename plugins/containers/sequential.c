/* Sequential: runs its children in registration order, each through the
 * core so that hooks and replacements are always seen.  Like PyTorch's,
 * each child gets the previous result as its one positional argument,
 * whatever kind of value it is. */
#include "containers.h"

static NnValue *
sequential_forward (NnModule *self, NnCall *call, const NnArgs *args,
                    GError **error)
{
  NnValue *x = nn_value_ref (nn_args_get (args, 0));
  guint n = nn_module_n_children (self);

  for (guint i = 0; i < n; i++)
    {
      const char *name = NULL;
      nn_module_child_at (self, i, &name);
      NnValue *tuple = nn_value_new_tuple ();
      nn_value_append (tuple, x);
      /* Given up: an input only this call holds may be reused in place. */
      NnValue *y = nn_call_module_take (call, self, name, tuple, NULL, error);
      if (y == NULL)
        return NULL;
      x = y;
    }
  /* An empty Sequential is the identity, as in PyTorch. */
  return x;
}

static gboolean
sequential_create (NnModule *self, GError **error)
{
  return TRUE;
}

/* forward(self, input): any value, passed on to the first child. */
static const NnArgSpec sequential_args[] = {
  { .name = "input", .kinds = NN_ARG_ANY, .dtypes = NN_DTYPES_ALL,
    .doc = "passed to the first child" },
};

const NnLayerType nn_sequential_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "Sequential",
  .doc = "Runs its children in order, feeding each one's output to the next",
  .schema = NULL,
  .n_schema = 0,
  .flags = NN_LAYER_INDEXABLE | NN_LAYER_CONTAINER | NN_LAYER_ROUTES_ONLY
           | NN_LAYER_FIXED_DATAFLOW,
  .args = sequential_args,
  .n_args = G_N_ELEMENTS (sequential_args),
  .create = sequential_create,
  .forward = sequential_forward,
};
