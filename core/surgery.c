/* nnkit core: atomic model surgery.  Each edit changes one slot, then
 * re-checks the whole tree (graph targets, shapes); on failure the slot is
 * restored, so the tree, weights, hooks and indices are as before. */
#include "nn-private.h"

#include <string.h>

static const NnSurgeryOptions default_opts = { sizeof (NnSurgeryOptions), 0, NULL };

static const NnSurgeryOptions *
opts_or_default (const NnSurgeryOptions *opts)
{
  return opts ? opts : &default_opts;
}

gboolean
nn_surgery_check_shapes (NnModule *root, const NnSurgeryOptions *opts,
                         GError **error)
{
  opts = opts_or_default (opts);
  if (!nn_module_check_tree (root, "", error))
    return FALSE;
  if (opts->flags & NN_SURGERY_NO_SHAPE_CHECK)
    return TRUE;
  g_autoptr (NnValue) args = NULL;
  if (opts->input_shape) {
    NnTensor *x = nn_tensor_new_meta (NN_DTYPE_F32, opts->input_shape);
    if (!x) {
      g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_INVALID,
                   "the input shape given for the check is not a valid shape");
      return FALSE;
    }
    args = nn_value_new_tuple ();
    nn_value_append (args, nn_value_take_tensor (x));
  } else if (!(args = nn_module_input_spec_args (root))) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_NO_SHAPE,
                 "no input shape to check the change against: give one, or "
                 "record \"inputs\" (or \"input_shape\") in the model's "
                 "descriptor");
    return FALSE;
  }
  /* Every recorded input, several for a multi-input Graph. */
  g_autoptr (NnValue) out = nn_module_infer (root, args, NULL, error);
  if (!out) {
    g_autofree char *s = nn_value_to_string (args);
    /* One input reads as before: "input [1, 3, 8, 8]". */
    NnShape in;
    if (nn_value_n_items (args) == 1
        && nn_value_get_tensor (nn_value_item (args, 0))->dtype == NN_DTYPE_F32) {
      in = nn_value_get_tensor (nn_value_item (args, 0))->shape;
      g_autofree char *shape = nn_shape_to_string (&in);
      g_prefix_error (error, "shape check for input %s failed: ", shape);
    } else {
      g_prefix_error (error, "shape check for inputs %s failed: ", s);
    }
    return FALSE;
  }
  return TRUE;
}

/* Position of segment @seg in @parent, read as a lookup reads it: a child
 * name, else a position in an indexable container; -1 if neither. */
static gint64
slot_of (NnModule *parent, const char *seg)
{
  for (guint i = 0; i < parent->children->len; i++)
    if (strcmp (g_array_index (parent->children, NnChild, i).name, seg) == 0)
      return i;
  gint64 idx, n = parent->children->len;
  char *end = NULL;
  if (!(parent->type->flags & NN_LAYER_INDEXABLE) || !*seg)
    return -1;
  idx = g_ascii_strtoll (seg, &end, 10);
  if (*end || (!g_ascii_isdigit (*seg) && *seg != '-'))
    return -1;
  idx = idx < 0 ? n + idx : idx;
  return idx >= 0 && idx < n ? idx : -1;
}

/* The parent of @ref and the position of @ref in it.  The slot comes from
 * @ref's own last segment, not from a search for the module, so that a
 * module sitting twice in one container is edited where @ref points. */
static NnModule *
locate (NnModule *root, const char *ref, guint *pos_out, char **path_out,
        GError **error)
{
  g_autofree char *path = NULL;
  NnModule *target = nn_module_lookup_ref (root, ref, &path, error);
  if (!target)
    return NULL;
  if (*path == '\0') {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_BAD_REFERENCE,
                 "'%s' is the root module; surgery changes modules inside it", ref);
    return NULL;
  }
  /* "#N" gives a canonical path whose segments are all real names. */
  const char *r = ref[0] == '#' ? path : ref;
  const char *dot = strrchr (r, '.');
  g_autofree char *parent_ref = dot ? g_strndup (r, dot - r) : g_strdup ("");
  const char *seg = dot ? dot + 1 : r;
  g_autofree char *parent_path = NULL;
  NnModule *parent = nn_module_lookup_ref (root, parent_ref, &parent_path, error);
  if (!parent)
    return NULL;
  gint64 pos = slot_of (parent, seg);
  if (pos < 0 || g_array_index (parent->children, NnChild, pos).module != target) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_NOT_FOUND,
                 "'%s' not found under '%s'", seg, parent_path);
    return NULL;
  }
  *pos_out = (guint) pos;
  if (path_out) {
    const char *name = g_array_index (parent->children, NnChild, pos).name;
    *path_out = *parent_path ? g_strconcat (parent_path, ".", name, NULL) : g_strdup (name);
  }
  return parent;
}

/* TRUE if @m is @target or contains it: placing @m under @target would
 * make a cycle, and every traversal endless. */
static gboolean
contains_module (NnModule *m, NnModule *target)
{
  if (m == target)
    return TRUE;
  for (guint i = 0; i < m->children->len; i++)
    if (contains_module (g_array_index (m->children, NnChild, i).module, target))
      return TRUE;
  return FALSE;
}

static gboolean
is_editable (NnModule *m)
{
  return (m->type->flags & NN_LAYER_CONTAINER) &&
         (m->type->flags & (NN_LAYER_INDEXABLE | NN_LAYER_KEYED));
}

static void
not_editable (GError **error, const char *what, const char *path, NnModule *m)
{
  g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_NOT_CONTAINER,
               "cannot %s in %s%s%s: it is %s (%s), not a Sequential, ModuleList "
               "or ModuleDict; use replace instead", what, *path ? "'" : "the root",
               path, *path ? "'" : "", nn_module_get_class_name (m), m->type->name);
}

/* Replace, with @verb naming the user's operation in errors. */
static gboolean
replace_slot (NnModule *root, const char *ref, NnModule *new_module,
              const NnSurgeryOptions *opts, const char *verb, GError **error)
{
  opts = opts_or_default (opts);
  guint pos;
  g_autofree char *path = NULL;
  NnModule *parent = locate (root, ref, &pos, &path, error);
  if (!parent)
    return FALSE;
  g_autoptr (NnModule) old = nn_module_ref (g_array_index (parent->children, NnChild, pos).module);
  if (old == new_module)
    return nn_surgery_check_shapes (root, opts, error);
  if (contains_module (new_module, parent)) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_BAD_REFERENCE,
                 "%s '%s' refused, model unchanged: the new module (%s) contains "
                 "the parent of '%s', so the tree would contain itself", verb,
                 path, nn_module_get_class_name (new_module), path);
    return FALSE;
  }
  gboolean move = (opts->flags & NN_SURGERY_MOVE_HOOKS) && nn_hooks_module_has_any (old);
  if (move && nn_hooks_module_has_any (new_module)) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_BAD_REFERENCE,
                 "cannot move the hooks of '%s' to a new module that has hooks "
                 "of its own", path);
    return FALSE;
  }
  nn_module_set_child_at (parent, pos, new_module);
  if (move)
    nn_hooks_move (old, new_module);
  if (nn_surgery_check_shapes (root, opts, error))
    return TRUE;
  if (move)
    nn_hooks_move (new_module, old);
  nn_module_set_child_at (parent, pos, old);
  g_prefix_error (error, "%s '%s' refused, model unchanged: ", verb, path);
  return FALSE;
}

gboolean
nn_surgery_replace (NnModule *root, const char *ref, NnModule *new_module,
                    const NnSurgeryOptions *opts, GError **error)
{
  g_return_val_if_fail (root && ref && new_module, FALSE);
  return replace_slot (root, ref, new_module, opts, "replace", error);
}

/* The naming rule in surgery.h: one more than the largest integer key. */
static char *
next_int_name (NnModule *c)
{
  gint64 best = -1;
  for (guint i = 0; i < c->children->len; i++) {
    const char *n = g_array_index (c->children, NnChild, i).name;
    guint64 v;
    if (g_ascii_string_to_unsigned (n, 10, 0, G_MAXINT32, &v, NULL))
      best = MAX (best, (gint64) v);
  }
  return g_strdup_printf ("%" G_GINT64_FORMAT, best + 1);
}

gboolean
nn_surgery_insert (NnModule *root, const char *container_ref, gint64 index,
                   const char *name, NnModule *new_module,
                   const NnSurgeryOptions *opts, GError **error)
{
  g_return_val_if_fail (root && container_ref && new_module, FALSE);
  g_autofree char *path = NULL;
  NnModule *c = nn_module_lookup_ref (root, container_ref, &path, error);
  if (!c)
    return FALSE;
  if (!is_editable (c)) {
    not_editable (error, "insert", path, c);
    return FALSE;
  }
  gint64 n = c->children->len;
  gint64 pos = index < 0 ? n + index : index;
  if (pos < 0 || pos > n) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_NOT_FOUND,
                 "insert position %" G_GINT64_FORMAT " is out of range for %s%s%s "
                 "(%s with %" G_GINT64_FORMAT " children: use -%" G_GINT64_FORMAT
                 " to %" G_GINT64_FORMAT ")", index, *path ? "'" : "the root",
                 path, *path ? "'" : "", nn_module_get_class_name (c), n, n, n);
    return FALSE;
  }
  g_autofree char *auto_name = NULL;
  if (!name) {
    if (!(c->type->flags & NN_LAYER_INDEXABLE)) {
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_BAD_REFERENCE,
                   "insert into %s '%s' needs a key", c->type->name, path);
      return FALSE;
    }
    name = auto_name = next_int_name (c);
  }
  if (!nn_module_insert_child (c, (guint) pos, name, new_module, error)) {
    g_prefix_error (error, "insert into '%s': ", path);
    return FALSE;
  }
  if (nn_surgery_check_shapes (root, opts, error))
    return TRUE;
  nn_module_remove_child_at (c, (guint) pos);
  g_prefix_error (error, "insert into '%s' refused, model unchanged: ", path);
  return FALSE;
}

gboolean
nn_surgery_append (NnModule *root, const char *container_ref, const char *name,
                   NnModule *new_module, const NnSurgeryOptions *opts,
                   GError **error)
{
  g_autofree char *path = NULL;
  NnModule *c = nn_module_lookup_ref (root, container_ref, &path, error);
  if (!c)
    return FALSE;
  return nn_surgery_insert (root, container_ref, c->children->len, name,
                            new_module, opts, error);
}

NnModule *
nn_surgery_pop (NnModule *root, const char *ref, const NnSurgeryOptions *opts,
                GError **error)
{
  g_return_val_if_fail (root && ref, NULL);
  guint pos;
  g_autofree char *path = NULL;
  NnModule *parent = locate (root, ref, &pos, &path, error);
  if (!parent)
    return NULL;
  if (!is_editable (parent)) {
    const char *dot = strrchr (path, '.');
    g_autofree char *pp = dot ? g_strndup (path, dot - path) : g_strdup ("");
    not_editable (error, "delete", pp, parent);
    return NULL;
  }
  NnChild *c = &g_array_index (parent->children, NnChild, pos);
  NnModule *removed = nn_module_ref (c->module);
  g_autofree char *name = g_strdup (c->name);
  nn_module_remove_child_at (parent, pos);
  if (nn_surgery_check_shapes (root, opts, error))
    return removed;
  /* Put it back where it was, under the same name. */
  nn_module_insert_child (parent, pos, name, removed, NULL);
  nn_module_unref (removed);
  g_prefix_error (error, "delete '%s' refused, model unchanged: ", path);
  return NULL;
}

gboolean
nn_surgery_delete (NnModule *root, const char *ref, const NnSurgeryOptions *opts,
                   GError **error)
{
  NnModule *m = nn_surgery_pop (root, ref, opts, error);
  if (!m)
    return FALSE;
  nn_module_unref (m);
  return TRUE;
}

gboolean
nn_surgery_wrap (NnModule *root, const char *ref, NnModule *other,
                 gboolean before, const NnSurgeryOptions *opts, GError **error)
{
  g_return_val_if_fail (root && ref && other, FALSE);
  g_autofree char *path = NULL;
  NnModule *x = nn_module_lookup_ref (root, ref, &path, error);
  if (!x)
    return FALSE;
  if (*path == '\0') {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_BAD_REFERENCE,
                 "'%s' is the root module; wrap the model in a new Sequential "
                 "rather than in itself", ref);
    return FALSE;
  }
  NnRegistry *reg = nn_module_get_registry (x);
  if (!reg) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "wrap '%s': the registry that created it is gone", path);
    return FALSE;
  }
  g_autoptr (NnModule) seq = nn_module_new_from_type (reg, "Sequential", NULL, path, error);
  if (!seq)
    return FALSE;
  NnModule *first = before ? other : x, *second = before ? x : other;
  if (!nn_module_add_child (seq, "0", first, error) ||
      !nn_module_add_child (seq, "1", second, error))
    return FALSE;
  /* X's hooks stay on X, which still runs inside the new Sequential. */
  NnSurgeryOptions o = *opts_or_default (opts);
  o.flags &= ~(guint) NN_SURGERY_MOVE_HOOKS;
  return replace_slot (root, ref, seq, &o, "wrap", error);
}
