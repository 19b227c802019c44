/* ops plugin: operator.concat, Python's `+` on two sequences, which the
 * exporter writes for `x.size()[:-1] + (heads, head_dim)` (Hugging Face's
 * transpose_for_scores): sizes computed in the graph stay a tuple. */
#include "ops.h"

static NnValue *
concat_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnValue *a = nn_args_get (args, 0), *b = nn_args_get (args, 1);
  NnValueKind ka = nn_value_kind (a), kb = nn_value_kind (b);
  if (ka != kb)
    {
      nn_ops_fail (error, "can only concatenate %s (not \"%s\") to %s",
                   nn_value_kind_name (ka), nn_value_kind_name (kb),
                   nn_value_kind_name (ka));
      return NULL;
    }
  NnValue *out = ka == NN_VALUE_LIST ? nn_value_new_list () : nn_value_new_tuple ();
  for (guint i = 0; i < nn_value_n_items (a); i++)
    nn_value_append (out, nn_value_ref (nn_value_item (a, i)));
  for (guint i = 0; i < nn_value_n_items (b); i++)
    nn_value_append (out, nn_value_ref (nn_value_item (b, i)));
  return out;
}

static const NnArgSpec concat_args[] = {
  { "a", NN_ARG_SEQ, NN_OPS_ALL, 0, NULL, "a tuple or list" },
  { "b", NN_ARG_SEQ, NN_OPS_ALL, 0, NULL, "a sequence of a's kind" },
};
static const char *const concat_aliases[] = { "operator.concat", NULL };
static NN_OPS_TYPE (concat_type, "concat", "a + b of two tuples or two lists, as Python",
                    concat_args, concat_aliases, concat_fn);

const NnLayerType *const nn_ops_concat_types[] = { &concat_type, NULL };
