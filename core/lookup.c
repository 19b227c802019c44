/* nnkit core: finding modules and tensors by dotted path, flattened index
 * ("#17", PyTorch's named_modules numbering) and full tensor name. */
#include "nn-private.h"

#include <pthread.h>

#include <string.h>

static char *
children_list (NnModule *m)
{
  if (m->children->len == 0)
    return g_strdup ("it has no children");
  GString *s = g_string_new ("children: ");
  for (guint i = 0; i < m->children->len; i++)
    g_string_append_printf (s, "%s%s", i ? ", " : "",
                            g_array_index (m->children, NnChild, i).name);
  return g_string_free (s, FALSE);
}

static gboolean
parse_int (const char *s, gint64 *out)
{
  char *end = NULL;
  if (!*s || (!g_ascii_isdigit (*s) && !(*s == '-' && g_ascii_isdigit (s[1]))))
    return FALSE;
  gint64 v = g_ascii_strtoll (s, &end, 10);
  if (*end)
    return FALSE;
  *out = v;
  return TRUE;
}

/* One path segment below @m: a child name, else an integer position in an
 * indexable container (negative from the end), as seq[i] in Python. */
static NnModule *
step (NnModule *m, const char *seg, const char *prefix, const char *full,
      GError **error)
{
  NnModule *c = nn_module_get_child (m, seg);
  if (c)
    return c;
  gint64 idx;
  if ((m->type->flags & NN_LAYER_INDEXABLE) && parse_int (seg, &idx)) {
    gint64 n = m->children->len;
    gint64 pos = idx < 0 ? n + idx : idx;
    if (pos >= 0 && pos < n)
      return g_array_index (m->children, NnChild, pos).module;
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_NOT_FOUND,
                 "no module '%s': index %" G_GINT64_FORMAT " is out of range "
                 "for %s%s%s (%s with %" G_GINT64_FORMAT " children)",
                 full, idx, *prefix ? "'" : "the root", prefix,
                 *prefix ? "'" : "", nn_module_get_class_name (m), n);
    return NULL;
  }
  g_autofree char *kids = children_list (m);
  if (*prefix)
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_NOT_FOUND,
                 "no module '%s': '%s' (%s) has no child '%s'; %s", full,
                 prefix, nn_module_get_class_name (m), seg, kids);
  else
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_NOT_FOUND,
                 "no module '%s': %s has no child '%s'; %s", full,
                 nn_module_get_class_name (m), seg, kids);
  return NULL;
}

/* Resolves @path and, when @canon is non-NULL, the canonical path with
 * positions turned into child names. */
static NnModule *
resolve_path (NnModule *root, const char *path, GString *canon, GError **error)
{
  if (*path == '\0')
    return root;
  g_auto (GStrv) segs = g_strsplit (path, ".", -1);
  g_autoptr (GString) prefix = g_string_new (NULL);
  NnModule *m = root;
  for (guint i = 0; segs[i]; i++) {
    if (*segs[i] == '\0') {
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_BAD_REFERENCE,
                   "bad module path '%s': empty segment", path);
      return NULL;
    }
    NnModule *next = step (m, segs[i], prefix->str, path, error);
    if (!next)
      return NULL;
    /* The canonical name of a positional step is the child's real name. */
    const char *name = segs[i];
    gint64 idx;
    /* A module may sit twice in one container: use the slot's own name. */
    if (!nn_module_get_child (m, segs[i]) && parse_int (segs[i], &idx)) {
      gint64 n = m->children->len;
      name = g_array_index (m->children, NnChild, idx < 0 ? n + idx : idx).name;
    }
    if (prefix->len)
      g_string_append_c (prefix, '.');
    g_string_append (prefix, name);
    m = next;
  }
  if (canon)
    g_string_assign (canon, prefix->str);
  return m;
}

NnModule *
nn_module_lookup_path (NnModule *root, const char *path, GError **error)
{
  g_return_val_if_fail (root != NULL && path != NULL, NULL);
  return resolve_path (root, path, NULL, error);
}

/* Guards every root's index cache.  A pthread mutex rather than a GMutex,
 * whose futex fast path ThreadSanitizer cannot see. */
static pthread_mutex_t index_lock = PTHREAD_MUTEX_INITIALIZER;

static gboolean
same_index (GPtrArray *a, GPtrArray *b)
{
  if (a->len != b->len)
    return FALSE;
  for (guint i = 0; i < a->len; i++) {
    NnNamedItem *x = a->pdata[i], *y = b->pdata[i];
    if (x->module != y->module || strcmp (x->name, y->name) != 0)
      return FALSE;
  }
  return TRUE;
}

/* Rebuilds the flattened index when any tree changed since last time;
 * call with index_lock held.  An unchanged index is kept, so the paths
 * handed out stay valid while this tree is not edited, even as readers in
 * other threads rebuild it after edits elsewhere. */
static void
ensure_index_locked (NnModule *root)
{
  guint64 gen = nn_tree_generation_get ();
  if (root->index_paths && root->index_gen == gen)
    return;
  GPtrArray *paths = nn_module_named_modules (root);
  /* The cache must not keep the root alive through its own list. */
  for (guint i = 0; i < paths->len; i++) {
    NnNamedItem *it = paths->pdata[i];
    if (it->module == root) {
      nn_module_unref (it->module);
      it->module = NULL;
    }
  }
  if (root->index_paths && same_index (root->index_paths, paths)) {
    g_ptr_array_unref (paths);
    root->index_gen = gen;
    return;
  }
  if (root->index_paths)
    g_ptr_array_unref (root->index_paths);
  if (root->index_of)
    g_hash_table_unref (root->index_of);
  root->index_paths = paths;
  root->index_of = g_hash_table_new (NULL, NULL);
  for (guint i = 0; i < paths->len; i++) {
    NnNamedItem *it = paths->pdata[i];
    g_hash_table_insert (root->index_of, it->module ? it->module : root,
                         GUINT_TO_POINTER (i + 1));
  }
  root->index_gen = gen;
}

NnModule *
nn_module_lookup_index (NnModule *root, gint64 index, const char **path_out,
                        GError **error)
{
  pthread_mutex_lock (&index_lock);
  ensure_index_locked (root);
  gint64 n = root->index_paths->len;
  NnNamedItem *it = index >= 0 && index < n ? root->index_paths->pdata[index]
                                            : NULL;
  pthread_mutex_unlock (&index_lock);
  if (it == NULL) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_NOT_FOUND,
                 "flattened index #%" G_GINT64_FORMAT " is out of range: %s has %"
                 G_GINT64_FORMAT " modules (#0 to #%" G_GINT64_FORMAT ")",
                 index, nn_module_get_class_name (root), n, n - 1);
    return NULL;
  }
  if (path_out)
    *path_out = it->name;
  return it->module ? it->module : root;
}

gint64
nn_module_index_of (NnModule *root, NnModule *m)
{
  pthread_mutex_lock (&index_lock);
  ensure_index_locked (root);
  gpointer v = g_hash_table_lookup (root->index_of, m);
  pthread_mutex_unlock (&index_lock);
  return v ? (gint64) GPOINTER_TO_UINT (v) - 1 : -1;
}

NnModule *
nn_module_lookup_ref (NnModule *root, const char *ref, char **path_out,
                      GError **error)
{
  g_return_val_if_fail (root != NULL && ref != NULL, NULL);
  if (ref[0] == '#') {
    gint64 idx;
    if (!parse_int (ref + 1, &idx)) {
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_BAD_REFERENCE,
                   "bad module reference '%s': expected '#' followed by a "
                   "flattened index such as #17", ref);
      return NULL;
    }
    const char *path = NULL;
    NnModule *m = nn_module_lookup_index (root, idx, &path, error);
    if (m && path_out)
      *path_out = g_strdup (path);
    return m;
  }
  g_autoptr (GString) canon = g_string_new (NULL);
  NnModule *m = resolve_path (root, ref, canon, error);
  if (m && path_out)
    *path_out = g_strdup (canon->str);
  return m;
}

NnTensor *
nn_module_lookup_tensor (NnModule *root, const char *name, GError **error)
{
  g_return_val_if_fail (root != NULL && name != NULL, NULL);
  const char *dot = strrchr (name, '.');
  g_autofree char *prefix = dot ? g_strndup (name, dot - name) : g_strdup ("");
  const char *leaf = dot ? dot + 1 : name;
  NnModule *m = resolve_path (root, prefix, NULL, error);
  if (!m) {
    g_prefix_error (error, "no tensor '%s': ", name);
    return NULL;
  }
  NnTensor *t = nn_module_get_parameter (m, leaf);
  if (!t)
    t = nn_module_get_buffer (m, leaf);
  if (t)
    return t;
  GString *have = g_string_new (NULL);
  for (guint i = 0; i < m->params->len; i++)
    g_string_append_printf (have, "%s%s", have->len ? ", " : "",
                            g_array_index (m->params, NnSlot, i).name);
  for (guint i = 0; i < m->buffers->len; i++)
    g_string_append_printf (have, "%s%s", have->len ? ", " : "",
                            g_array_index (m->buffers, NnSlot, i).name);
  g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_NOT_FOUND,
               "no tensor '%s': %s%s%s (%s) has no parameter or buffer '%s'; %s%s",
               name, *prefix ? "'" : "", *prefix ? prefix : "the root",
               *prefix ? "'" : "", nn_module_get_class_name (m), leaf,
               have->len ? "it has: " : "it has none", have->str);
  g_string_free (have, TRUE);
  return NULL;
}
