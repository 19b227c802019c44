/* nnkit core: training mode, frozen parameters and gradients, kept on
 * the module beside its parameters (include/nnkit/train.h). */
#include "nn-private.h"

#include <nnkit/train.h>
#include <string.h>

void
nn_module_clear_training (NnModule *m)
{
  g_clear_pointer (&m->frozen, g_hash_table_unref);
  g_clear_pointer (&m->grads, g_hash_table_unref);
}

void
nn_module_train (NnModule *m, gboolean mode)
{
  g_return_if_fail (m != NULL);
  m->training = mode ? TRUE : FALSE;
  for (guint i = 0; i < m->children->len; i++)
    nn_module_train (g_array_index (m->children, NnChild, i).module, mode);
}

gboolean
nn_module_is_training (NnModule *m)
{
  g_return_val_if_fail (m != NULL, FALSE);
  return m->training;
}

/* The last segment of a full parameter name is the owner's own name. */
static const char *
own_name (const char *full)
{
  const char *dot = strrchr (full, '.');
  return dot ? dot + 1 : full;
}

gboolean
nn_module_param_requires_grad (NnModule *m, const char *name)
{
  g_return_val_if_fail (m != NULL && name != NULL, FALSE);
  return !(m->frozen && g_hash_table_contains (m->frozen, name));
}

static void
set_one (NnModule *owner, const char *name, gboolean requires_grad)
{
  if (requires_grad) {
    if (owner->frozen)
      g_hash_table_remove (owner->frozen, name);
    return;
  }
  if (!owner->frozen)
    owner->frozen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                           NULL);
  g_hash_table_add (owner->frozen, g_strdup (name));
  /* A frozen parameter has no gradient, as after requires_grad_(False)
   * and zero_grad. */
  if (owner->grads)
    g_hash_table_remove (owner->grads, name);
}

gboolean
nn_module_set_requires_grad (NnModule *root, const char *pattern,
                             gboolean requires_grad, guint *n_out,
                             GError **error)
{
  g_return_val_if_fail (root != NULL && pattern != NULL, FALSE);
  g_autoptr (GPtrArray) hits = nn_module_glob (root, pattern, "parameters",
                                               error);
  if (!hits)
    return FALSE;
  /* "features" or "features.*" written for modules: select the
   * parameters below the matching module paths too. */
  if (hits->len == 0) {
    g_autofree char *below = g_strconcat (pattern, ".*", NULL);
    g_ptr_array_unref (hits);
    hits = nn_module_glob (root, below, "parameters", error);
    if (!hits)
      return FALSE;
  }
  if (hits->len == 0) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_BAD_REFERENCE,
                 "'%s' matches no parameter of this %s (parameters are "
                 "named like 'fc.weight'; '*' crosses dots)", pattern,
                 nn_module_get_class_name (root));
    return FALSE;
  }
  for (guint i = 0; i < hits->len; i++) {
    NnNamedItem *it = hits->pdata[i];
    set_one (it->module, own_name (it->name), requires_grad);
  }
  if (n_out)
    *n_out = hits->len;
  return TRUE;
}

void
nn_module_count_trainable (NnModule *m, gint64 *trainable, gint64 *frozen)
{
  g_autoptr (GPtrArray) ps = nn_module_named_parameters (m);
  gint64 t = 0, f = 0;
  for (guint i = 0; i < ps->len; i++) {
    NnNamedItem *it = ps->pdata[i];
    if (nn_module_param_requires_grad (it->module, own_name (it->name)))
      t += nn_tensor_numel (it->tensor);
    else
      f += nn_tensor_numel (it->tensor);
  }
  if (trainable)
    *trainable = t;
  if (frozen)
    *frozen = f;
}

char **
nn_module_frozen_names (NnModule *root)
{
  g_autoptr (GPtrArray) ps = nn_module_named_parameters (root);
  GPtrArray *out = g_ptr_array_new ();
  for (guint i = 0; i < ps->len; i++) {
    NnNamedItem *it = ps->pdata[i];
    if (!nn_module_param_requires_grad (it->module, own_name (it->name)))
      g_ptr_array_add (out, g_strdup (it->name));
  }
  g_ptr_array_add (out, NULL);
  return (char **) g_ptr_array_free (out, FALSE);
}

float *
nn_module_grad_f32 (NnModule *self, const char *name)
{
  g_return_val_if_fail (self != NULL && name != NULL, NULL);
  NnTensor *p = nn_module_get_parameter (self, name);
  if (!p || p->dtype != NN_DTYPE_F32
      || !nn_module_param_requires_grad (self, name))
    return NULL;
  if (!self->grads)
    self->grads = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                         (GDestroyNotify) nn_tensor_unref);
  NnTensor *g = g_hash_table_lookup (self->grads, name);
  if (!g || !nn_shape_equal (&g->shape, &p->shape)) {
    g = nn_tensor_new (NN_DTYPE_F32, &p->shape); /* zero-filled */
    if (!g)
      return NULL;
    g_hash_table_replace (self->grads, g_strdup (name), g);
  }
  return nn_tensor_f32 (g);
}

NnTensor *
nn_module_lookup_grad (NnModule *root, const char *name, GError **error)
{
  g_return_val_if_fail (root != NULL && name != NULL, NULL);
  const char *dot = strrchr (name, '.');
  g_autofree char *path = dot ? g_strndup (name, (gsize) (dot - name))
                              : g_strdup ("");
  NnModule *owner = nn_module_lookup_path (root, path, error);
  if (!owner)
    return NULL;
  const char *own = own_name (name);
  if (!nn_module_get_parameter (owner, own)) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_BAD_REFERENCE,
                 "'%s' is not a parameter of this %s", name,
                 nn_module_get_class_name (root));
    return NULL;
  }
  return owner->grads ? g_hash_table_lookup (owner->grads, own) : NULL;
}

void
nn_module_zero_grad (NnModule *m)
{
  g_return_if_fail (m != NULL);
  g_clear_pointer (&m->grads, g_hash_table_unref);
  for (guint i = 0; i < m->children->len; i++)
    nn_module_zero_grad (g_array_index (m->children, NnChild, i).module);
}
