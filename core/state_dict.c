/* nnkit core: load_state_dict and state_dict saving, with PyTorch's keys,
 * classification and error wording.
 *
 * A load runs in two phases: every file tensor is matched, checked and
 * converted first; only when nothing fails are the new tensors swapped
 * into the tree, so a refused load leaves every weight as it was. */
#include "nn-private.h"
#include "nn-weights-private.h"

#include <string.h>

void
nn_load_report_free (NnLoadReport *r)
{
  if (r == NULL)
    return;
  g_free (r->model_class);
  g_ptr_array_unref (r->loaded);
  g_ptr_array_unref (r->missing);
  g_ptr_array_unref (r->unexpected);
  g_ptr_array_unref (r->mismatched);
  g_free (r);
}

static void
size_mismatch_free (gpointer p)
{
  NnSizeMismatch *sm = p;
  g_free (sm->key);
  g_free (sm);
}

static NnLoadReport *
load_report_new (NnModule *m)
{
  NnLoadReport *r = g_new0 (NnLoadReport, 1);
  r->model_class = g_strdup (nn_module_get_class_name (m));
  r->loaded = g_ptr_array_new_with_free_func (g_free);
  r->missing = g_ptr_array_new_with_free_func (g_free);
  r->unexpected = g_ptr_array_new_with_free_func (g_free);
  r->mismatched = g_ptr_array_new_with_free_func (size_mismatch_free);
  return r;
}

gboolean
nn_load_report_is_clean (const NnLoadReport *r)
{
  g_return_val_if_fail (r != NULL, FALSE);
  return r->missing->len == 0 && r->unexpected->len == 0 &&
         r->mismatched->len == 0;
}

/* torch.Size([1000, 512]); a scalar is torch.Size([]). */
static void
append_torch_size (GString *out, const NnShape *s)
{
  g_string_append (out, "torch.Size([");
  for (guint i = 0; i < s->ndim; i++)
    g_string_append_printf (out, "%s%" G_GINT64_FORMAT, i ? ", " : "",
                            s->dims[i]);
  g_string_append (out, "])");
}

static void
append_key_list (GString *out, const char *what, GPtrArray *keys)
{
  g_string_append_printf (out, "\n\t%s key(s) in state_dict: ", what);
  for (guint i = 0; i < keys->len; i++)
    g_string_append_printf (out, "%s\"%s\"", i ? ", " : "",
                            (const char *) keys->pdata[i]);
  /* PyTorch's message has the trailing space too. */
  g_string_append (out, ". ");
}

/* Module.load_state_dict's RuntimeError text: missing keys, then
 * unexpected keys (both only when @strict), then one line per size
 * mismatch; "" when there is nothing to say. */
static char *
load_report_format (const NnLoadReport *r, gboolean strict)
{
  gboolean keys = strict && (r->missing->len || r->unexpected->len);
  if (!keys && r->mismatched->len == 0)
    return g_strdup ("");
  GString *out = g_string_new (NULL);
  g_string_append_printf (out, "Error(s) in loading state_dict for %s:",
                          r->model_class);
  if (strict && r->missing->len)
    append_key_list (out, "Missing", r->missing);
  if (strict && r->unexpected->len)
    append_key_list (out, "Unexpected", r->unexpected);
  for (guint i = 0; i < r->mismatched->len; i++) {
    const NnSizeMismatch *sm = r->mismatched->pdata[i];
    g_string_append_printf (out, "\n\tsize mismatch for %s: copying a param "
                            "with shape ", sm->key);
    append_torch_size (out, &sm->file_shape);
    g_string_append (out, " from checkpoint, the shape in current model is ");
    append_torch_size (out, &sm->model_shape);
    g_string_append_c (out, '.');
  }
  return g_string_free (out, FALSE);
}

char *
nn_load_report_to_string (const NnLoadReport *r)
{
  g_return_val_if_fail (r != NULL, NULL);
  return load_report_format (r, TRUE);
}

/* Non-persistent buffers (absent from state_dict) in state_dict's order
 * and naming: a model file carries them, since a Graph's declared ones
 * (a causal mask, position ids) are zeros until loaded. */
static GPtrArray *
non_persistent_buffers (NnModule *root)
{
  g_autoptr (GPtrArray) mods = nn_module_named_modules_all_paths (root);
  GPtrArray *out = nn_named_list_new ();
  for (guint i = 0; i < mods->len; i++) {
    NnNamedItem *it = mods->pdata[i];
    for (guint j = 0; j < it->module->buffers->len; j++) {
      NnSlot *s = &g_array_index (it->module->buffers, NnSlot, j);
      if (s->persistent)
        continue;
      g_autofree char *name = *it->name ? g_strconcat (it->name, ".", s->name, NULL)
                                        : g_strdup (s->name);
      nn_named_list_add (out, name, it->module, s->tensor, it->depth);
    }
  }
  return out;
}

/* --- matching ------------------------------------------------------------ */

typedef struct {
  const char *file_name;  /* (transfer none) key as stored in the file */
  guint order;            /* position in the file, by offset */
} FileKey;

/* Maps each file key through strip_prefix then add_prefix.  Two file keys
 * landing on the same model key would make the load ambiguous. */
static GHashTable *
map_file_keys (NnSafetensors *st, const char *strip, const char *add,
               GPtrArray *mapped_order, GError **error)
{
  GHashTable *map = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                           g_free);
  guint n = nn_safetensors_n_tensors (st);
  for (guint i = 0; i < n; i++) {
    const char *name = nn_safetensors_name_at (st, i);
    const char *rest = name;
    if (strip && *strip && g_str_has_prefix (name, strip))
      rest = name + strlen (strip);
    char *key = g_strconcat (add ? add : "", rest, NULL);
    FileKey *prev = g_hash_table_lookup (map, key);
    if (prev) {
      g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_LOAD,
                   "file keys '%s' and '%s' both become '%s' after the "
                   "prefix options (strip '%s', add '%s')", prev->file_name,
                   name, key, strip ? strip : "", add ? add : "");
      g_free (key);
      g_hash_table_unref (map);
      return NULL;
    }
    FileKey *fk = g_new (FileKey, 1);
    fk->file_name = name;
    fk->order = i;
    g_hash_table_insert (map, key, fk);
    g_ptr_array_add (mapped_order, key);
  }
  return map;
}

/* PyTorch's legacy rule: a 1-element-or-more 1-D checkpoint value loads
 * into a 0-D model tensor as its first element. */
static gboolean
is_legacy_scalar (const NnShape *file, const NnShape *model)
{
  return model->ndim == 0 && file->ndim == 1 && file->dims[0] >= 1;
}

static NnTensor *
first_element (NnTensor *t)
{
  NnShape scalar = { 0 };
  NnTensor *s = nn_tensor_new (t->dtype, &scalar);
  memcpy (s->data, t->data, nn_dtype_size (t->dtype));
  return s;
}

/* Where PyTorch reports an unexpected key: at the deepest module whose
 * path prefixes the key.  Returns that module's pre-order position. */
static guint
unexpected_position (GHashTable *module_pos, const char *key)
{
  guint pos = 0;
  for (const char *dot = strchr (key, '.'); dot; dot = strchr (dot + 1, '.')) {
    g_autofree char *prefix = g_strndup (key, (gsize) (dot - key));
    gpointer p;
    if (!g_hash_table_lookup_extended (module_pos, prefix, NULL, &p))
      break;
    pos = GPOINTER_TO_UINT (p);
  }
  return pos;
}

typedef struct {
  char *key;
  guint module_pos;
  guint file_order;
} Unexpected;

static gint
unexpected_cmp (gconstpointer a, gconstpointer b)
{
  const Unexpected *x = a, *y = b;
  if (x->module_pos != y->module_pos)
    return x->module_pos < y->module_pos ? -1 : 1;
  return x->file_order < y->file_order ? -1 : (x->file_order > y->file_order);
}

/* Unexpected keys in PyTorch's order: grouped by the module that reports
 * them (pre-order, every path), in file order within a module. */
static void
collect_unexpected (NnModule *m, GHashTable *model_keys, GHashTable *file_map,
                    GPtrArray *mapped_order, NnLoadReport *r)
{
  g_autoptr (GPtrArray) mods = nn_module_named_modules_all_paths (m);
  g_autoptr (GHashTable) module_pos = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = mods->len; i-- > 0;) /* first path wins */
    g_hash_table_insert (module_pos, ((NnNamedItem *) mods->pdata[i])->name,
                         GUINT_TO_POINTER (i));
  g_autoptr (GArray) found = g_array_new (FALSE, FALSE, sizeof (Unexpected));
  for (guint i = 0; i < mapped_order->len; i++) {
    const char *key = mapped_order->pdata[i];
    if (g_hash_table_contains (model_keys, key))
      continue;
    FileKey *fk = g_hash_table_lookup (file_map, key);
    Unexpected u = { (char *) key, unexpected_position (module_pos, key),
                     fk->order };
    g_array_append_val (found, u);
  }
  g_array_sort (found, unexpected_cmp);
  for (guint i = 0; i < found->len; i++)
    g_ptr_array_add (r->unexpected,
                     g_strdup (g_array_index (found, Unexpected, i).key));
}

/* A tensor ready to go in: its owning module and leaf name. */
typedef struct {
  NnModule *owner;   /* (transfer none; the state_dict list holds it) */
  const char *leaf;  /* (transfer none) */
  NnTensor *tensor;  /* (transfer full) */
} Pending;

static void
pending_clear (gpointer p)
{
  nn_tensor_unref (((Pending *) p)->tensor);
}

static const char *
leaf_name (const char *key)
{
  const char *dot = strrchr (key, '.');
  return dot ? dot + 1 : key;
}

/* Swaps every pending tensor in; on an unexpected refusal the ones
 * already swapped are put back, so the tree is never half loaded. */
static gboolean
apply_pending (GArray *pending, GError **error)
{
  g_autoptr (GPtrArray) old = g_ptr_array_new_with_free_func (
      (GDestroyNotify) nn_tensor_unref);
  for (guint i = 0; i < pending->len; i++) {
    Pending *p = &g_array_index (pending, Pending, i);
    NnTensor *cur = nn_module_get_parameter (p->owner, p->leaf);
    if (cur == NULL)
      cur = nn_module_get_buffer (p->owner, p->leaf);
    g_ptr_array_add (old, cur ? nn_tensor_ref (cur) : NULL);
    if (cur == NULL || !nn_module_set_tensor_half (p->owner, p->leaf, p->tensor, error)) {
      if (cur == NULL)
        g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_LOAD,
                     "%s has no tensor '%s'",
                     nn_module_get_class_name (p->owner), p->leaf);
      /* in reverse, so a slot listed twice (shared module) ends original */
      for (guint j = i; j-- > 0;) {
        Pending *q = &g_array_index (pending, Pending, j);
        nn_module_set_tensor_half (q->owner, q->leaf, old->pdata[j], NULL);
      }
      return FALSE;
    }
  }
  return TRUE;
}

/* Reads the options that fit in the caller's struct_size. */
static void
read_options (const NnLoadOptions *opts, guint *flags, const char **strip,
              const char **add)
{
  *flags = 0;
  *strip = *add = NULL;
  if (opts == NULL)
    return;
  gsize size = opts->struct_size;
  if (size >= G_STRUCT_OFFSET (NnLoadOptions, flags) + sizeof opts->flags)
    *flags = opts->flags;
  if (size >= G_STRUCT_OFFSET (NnLoadOptions, strip_prefix) + sizeof (char *))
    *strip = opts->strip_prefix;
  if (size >= G_STRUCT_OFFSET (NnLoadOptions, add_prefix) + sizeof (char *))
    *add = opts->add_prefix;
}

/* The first file tensor loaded for a model tensor: every other key holding
 * that model tensor (tied, or a module shared by two parents) gets it. */
typedef struct {
  NnNamedItem *item; /* (transfer none) its state_dict entry */
  NnTensor *tensor;  /* (transfer none; its Pending holds it) */
} Tied;

/* Replaces *@t (transfer full) by the tensor already chosen for the same
 * model tensor, after checking both files' values agree. */
static gboolean
share_tied (GHashTable *chosen, NnNamedItem *it, NnTensor **t,
            const char *model_class, GError **error)
{
  Tied *tie = g_hash_table_lookup (chosen, it->tensor);
  if (tie == NULL) {
    tie = g_new0 (Tied, 1);
    g_hash_table_insert (chosen, it->tensor, tie);
  }
  if (tie->item == NULL || (tie->item->module == it->module &&
                            strcmp (leaf_name (tie->item->name),
                                    leaf_name (it->name)) == 0)) {
    /* First key, or the same slot again through a shared module: the
     * last copy wins, as PyTorch's copy_ in key order. */
    tie->item = it;
    tie->tensor = *t;
    return TRUE;
  }
  const NnTensor *a = tie->tensor, *b = *t;
  if (a->dtype != b->dtype || !nn_shape_equal (&a->shape, &b->shape) ||
      memcmp (a->data, b->data, nn_tensor_nbytes (a)) != 0) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_LOAD,
                 "loading %s: '%s' and '%s' are one tied tensor in the model "
                 "but hold different values in the file (expected equal "
                 "values, or only one of the keys)", model_class, tie->item->name,
                 it->name);
    return FALSE;
  }
  nn_tensor_unref (*t);
  *t = nn_tensor_ref (tie->tensor);
  return TRUE;
}

static gboolean
is_half (NnDType d)
{
  return d == NN_DTYPE_F16 || d == NN_DTYPE_BF16;
}

/* The dtype a file tensor goes in as: the slot's, except that a type
 * converting per use (NN_LAYER_HALF_WEIGHTS) keeps F16/BF16 as stored
 * when @keep, and gets F32 back otherwise (its declared dtype). */
static NnDType
load_dtype (NnNamedItem *it, NnSafetensors *st, const char *file_name,
            gboolean keep)
{
  NnDType slot = it->tensor->dtype;
  if (!(nn_module_get_type (it->module)->flags & NN_LAYER_HALF_WEIGHTS) ||
      (slot != NN_DTYPE_F32 && !is_half (slot)))
    return slot;
  const char *fname = nn_safetensors_get_info (st, file_name, NULL);
  NnDType fdt;
  if (keep && fname && nn_dtype_parse (fname, &fdt) && is_half (fdt))
    return fdt;
  return NN_DTYPE_F32;
}

/* Matches file keys to @sd, fills @r and converts every tensor that will
 * go in into @pending.  FALSE only on a hard error: ambiguous keys after
 * the prefix options, or a tensor that cannot be converted. */
static gboolean
load_prepare (NnModule *m, NnSafetensors *st, const char *strip,
              const char *add, gboolean keep, GPtrArray *sd, guint n_required,
              NnLoadReport *r, GArray *pending, GError **error)
{
  g_autoptr (GPtrArray) mapped_order = g_ptr_array_new ();
  g_autoptr (GHashTable) file_map = map_file_keys (st, strip, add,
                                                   mapped_order, error);
  if (file_map == NULL)
    return FALSE;
  g_autoptr (GHashTable) model_keys = g_hash_table_new (g_str_hash, g_str_equal);
  /* model tensor -> the Tied chosen for it, so tied keys stay one tensor */
  g_autoptr (GHashTable) chosen = g_hash_table_new_full (NULL, NULL, NULL,
                                                         g_free);
  g_autoptr (GPtrArray) absent = g_ptr_array_new ();
  gboolean ok = TRUE;
  for (guint i = 0; i < sd->len; i++) {
    NnNamedItem *it = sd->pdata[i];
    g_hash_table_add (model_keys, it->name);
    FileKey *fk = g_hash_table_lookup (file_map, it->name);
    if (fk == NULL) {
      /* Entries after @n_required (non-persistent buffers) may be absent. */
      if (i < n_required)
        g_ptr_array_add (absent, it);
      continue;
    }
    NnShape fshape;
    nn_safetensors_get_info (st, fk->file_name, &fshape);
    gboolean legacy = is_legacy_scalar (&fshape, &it->tensor->shape);
    if (!legacy && !nn_shape_equal (&fshape, &it->tensor->shape)) {
      NnSizeMismatch *sm = g_new0 (NnSizeMismatch, 1);
      sm->key = g_strdup (it->name);
      sm->file_shape = fshape;
      sm->model_shape = it->tensor->shape;
      g_ptr_array_add (r->mismatched, sm);
      continue;
    }
    if (!ok)
      continue; /* keep classifying for the report; convert nothing more */
    NnTensor *t = nn_safetensors_get (st, fk->file_name,
                                      load_dtype (it, st, fk->file_name, keep),
                                      error);
    if (t == NULL) {
      g_prefix_error (error, "loading '%s' into %s: ", it->name,
                      r->model_class);
      ok = FALSE;
      continue;
    }
    if (legacy) {
      NnTensor *s = first_element (t);
      nn_tensor_unref (t);
      t = s;
    }
    if (!share_tied (chosen, it, &t, r->model_class, error)) {
      nn_tensor_unref (t);
      ok = FALSE;
      continue;
    }
    Pending p = { it->module, leaf_name (it->name), t };
    g_array_append_val (pending, p);
    if (i < n_required)
      g_ptr_array_add (r->loaded, g_strdup (it->name));
  }
  /* A key absent from the file is filled from a key tied to it (as
   * safetensors' save_file keeps one of them); else it is missing. */
  for (guint i = 0; i < absent->len; i++) {
    NnNamedItem *it = absent->pdata[i];
    Tied *tie = g_hash_table_lookup (chosen, it->tensor);
    if (tie == NULL) {
      g_ptr_array_add (r->missing, g_strdup (it->name));
      continue;
    }
    Pending p = { it->module, leaf_name (it->name), nn_tensor_ref (tie->tensor) };
    g_array_append_val (pending, p);
  }
  collect_unexpected (m, model_keys, file_map, mapped_order, r);
  return ok;
}

/* load_state_dict; with @non_persistent also the non-persistent buffers
 * the file holds (a model's weights file), which are then not unexpected
 * and, when absent, not missing. */
static gboolean
load_state_dict (NnModule *m, NnSafetensors *st, const NnLoadOptions *opts,
                 gboolean non_persistent, NnLoadReport **report_out,
                 GError **error)
{
  guint flags;
  const char *strip, *add;
  read_options (opts, &flags, &strip, &add);
  gboolean strict = !(flags & NN_LOAD_NON_STRICT);

  g_autoptr (NnLoadReport) r = load_report_new (m);
  g_autoptr (GPtrArray) sd = nn_module_state_dict (m);
  guint n_required = sd->len;
  if (non_persistent) {
    g_autoptr (GPtrArray) extra = non_persistent_buffers (m);
    /* sd owns its items: move extra's over without freeing them. */
    for (guint i = 0; i < extra->len; i++)
      g_ptr_array_add (sd, extra->pdata[i]);
    g_ptr_array_set_free_func (extra, NULL);
  }
  g_autoptr (GArray) pending = g_array_new (FALSE, FALSE, sizeof (Pending));
  g_array_set_clear_func (pending, pending_clear);

  gboolean ok = load_prepare (m, st, strip, add,
                              (flags & NN_LOAD_KEEP_DTYPE) != 0, sd, n_required,
                              r, pending, error);
  /* As PyTorch: a size mismatch fails even when not strict. */
  if (ok && (r->mismatched->len || (strict && !nn_load_report_is_clean (r)))) {
    g_autofree char *text = load_report_format (r, strict);
    g_set_error_literal (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_LOAD, text);
    ok = FALSE;
  }
  if (ok)
    ok = apply_pending (pending, error);
  if (!ok)
    g_ptr_array_set_size (r->loaded, 0); /* nothing was copied */
  if (report_out)
    *report_out = g_steal_pointer (&r);
  return ok;
}

gboolean
nn_module_load_state_dict (NnModule *m, NnSafetensors *st,
                           const NnLoadOptions *opts,
                           NnLoadReport **report_out, GError **error)
{
  g_return_val_if_fail (m != NULL && st != NULL, FALSE);
  return load_state_dict (m, st, opts, FALSE, report_out, error);
}

gboolean
nn_module_load_model_weights (NnModule *m, NnSafetensors *st,
                              const NnLoadOptions *opts, GError **error)
{
  g_return_val_if_fail (m != NULL && st != NULL, FALSE);
  return load_state_dict (m, st, opts, TRUE, NULL, error);
}

NnPendingFile *
nn_module_state_dict_pending (NnModule *m, const char *path,
                              GHashTable *metadata, gboolean non_persistent,
                              GError **error)
{
  /* Every key is written on its own, a tensor shared by two keys twice,
   * so that PyTorch loads the file with strict=True. */
  g_autoptr (GPtrArray) sd = nn_module_state_dict (m);
  if (non_persistent) {
    g_autoptr (GPtrArray) extra = non_persistent_buffers (m);
    for (guint i = 0; i < extra->len; i++)
      g_ptr_array_add (sd, extra->pdata[i]);
    g_ptr_array_set_free_func (extra, NULL);
  }
  g_autofree const char **names = g_new0 (const char *, sd->len + 1);
  g_autofree NnTensor **tensors = g_new0 (NnTensor *, sd->len + 1);
  for (guint i = 0; i < sd->len; i++) {
    NnNamedItem *it = sd->pdata[i];
    names[i] = it->name;
    tensors[i] = it->tensor;
  }
  return nn_pending_file_new_safetensors (path, names, tensors, sd->len,
                                          metadata, error);
}

gboolean
nn_module_save_state_dict (NnModule *m, const char *path,
                           GHashTable *metadata, GError **error)
{
  g_return_val_if_fail (m != NULL && path != NULL, FALSE);
  g_autoptr (NnPendingFile) pf = nn_module_state_dict_pending (m, path,
                                                              metadata, FALSE,
                                                              error);
  return pf && nn_pending_file_commit (pf, error);
}
