/* nnkit core: tied tensors.  A tie is two slots (parameter or buffer of
 * two modules, or two names of one module) holding the same NnTensor, as
 * PyTorch's `model.lm_head.weight = model.wte.weight`.  Nothing records a
 * tie apart from that sharing: state_dict() lists the tensor under every
 * key, named_parameters() once, and replacing either slot or module
 * unties them. */
#include "nn-private.h"

#include <string.h>

/* Splits "a.b.weight" into its module (transfer none) and slot name. */
static NnModule *
resolve_slot (NnModule *root, const char *key, const char **leaf_out,
              gboolean *param_out, GError **error)
{
  const char *dot = strrchr (key, '.');
  g_autofree char *path = dot ? g_strndup (key, (gsize) (dot - key))
                              : g_strdup ("");
  const char *leaf = dot ? dot + 1 : key;
  GError *tmp = NULL;
  NnModule *m = nn_module_lookup_path (root, path, &tmp);
  if (m == NULL) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_NOT_FOUND,
                 "tied key '%s': %s", key, tmp->message);
    g_error_free (tmp);
    return NULL;
  }
  gboolean param = nn_module_get_parameter (m, leaf) != NULL;
  if (!param && nn_module_get_buffer (m, leaf) == NULL) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_NOT_FOUND,
                 "tied key '%s': %s at '%s' has no parameter or buffer '%s'",
                 key, nn_module_get_class_name (m), path, leaf);
    return NULL;
  }
  *leaf_out = leaf;
  *param_out = param;
  return m;
}

gboolean
nn_module_tie (NnModule *root, const char *alias_key, const char *first_key,
               GError **error)
{
  g_return_val_if_fail (root && alias_key && first_key, FALSE);
  const char *aleaf, *fleaf;
  gboolean aparam, fparam;
  NnModule *am = resolve_slot (root, alias_key, &aleaf, &aparam, error);
  if (am == NULL)
    return FALSE;
  NnModule *fm = resolve_slot (root, first_key, &fleaf, &fparam, error);
  if (fm == NULL)
    return FALSE;
  if (aparam != fparam) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_BAD_REFERENCE,
                 "cannot tie '%s' (a %s) to '%s' (a %s): both must be "
                 "parameters or both buffers", alias_key,
                 aparam ? "parameter" : "buffer", first_key,
                 fparam ? "parameter" : "buffer");
    return FALSE;
  }
  NnTensor *first = fparam ? nn_module_get_parameter (fm, fleaf)
                           : nn_module_get_buffer (fm, fleaf);
  /* set_tensor checks dtype and shape and names both. */
  if (!nn_module_set_tensor (am, aleaf, first, error)) {
    g_prefix_error (error, "cannot tie '%s' to '%s': ", alias_key, first_key);
    return FALSE;
  }
  return TRUE;
}

/* Is the second key the same slot as the first, seen through a module
 * shared by two parents?  Such keys are not ties of their own. */
static gboolean
same_slot (const NnNamedItem *a, const NnNamedItem *b)
{
  const char *la = strrchr (a->name, '.'), *lb = strrchr (b->name, '.');
  la = la ? la + 1 : a->name;
  lb = lb ? lb + 1 : b->name;
  return a->module == b->module && strcmp (la, lb) == 0;
}

GPtrArray *
nn_module_tied_keys (NnModule *root)
{
  g_return_val_if_fail (root != NULL, NULL);
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GPtrArray) sd = nn_module_state_dict (root);
  g_autoptr (GHashTable) first = g_hash_table_new (NULL, NULL);
  for (guint i = 0; i < sd->len; i++) {
    NnNamedItem *it = sd->pdata[i];
    NnNamedItem *f = g_hash_table_lookup (first, it->tensor);
    if (f == NULL) {
      g_hash_table_insert (first, it->tensor, it);
    } else if (!same_slot (f, it)) {
      g_ptr_array_add (out, g_strdup (it->name));
      g_ptr_array_add (out, g_strdup (f->name));
    }
  }
  return out;
}
