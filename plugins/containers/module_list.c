/* ModuleList: an indexable list of modules with no forward of its own, as
 * in PyTorch.  Its repr folds runs of identical consecutive items. */
#include "containers.h"

#include <string.h>

/* Python's _addindent(s, 2): every line after the first gets 2 spaces. */
static void
append_indented (GString *out, const char *s)
{
  for (const char *p = s; *p; p++)
    {
      g_string_append_c (out, *p);
      if (*p == '\n')
        g_string_append (out, "  ");
    }
}

/* Parses a canonical non-negative integer key ("0", "17", not "007"). */
static gboolean
key_as_index (const char *key, guint64 *out)
{
  if (key[0] == '\0' || (key[0] == '0' && key[1] != '\0'))
    return FALSE;
  for (const char *p = key; *p; p++)
    if (!g_ascii_isdigit (*p))
      return FALSE;
  *out = g_ascii_strtoull (key, NULL, 10);
  return TRUE;
}

/* A run continues while the repr is identical and the key is the previous
 * key plus one.  PyTorch folds by position and always renumbers its keys;
 * nnkit never renumbers (see surgery.h), so a gap left by a deletion ends
 * the run rather than printing a range that names missing keys.  With
 * contiguous keys the text is PyTorch's exactly. */
static gboolean
continues_run (const char *prev_key, const char *key)
{
  guint64 a, b;
  return key_as_index (prev_key, &a) && key_as_index (key, &b) && b == a + 1;
}

static char *
module_list_repr (NnModule *self)
{
  guint n = nn_module_n_children (self);
  GString *out = g_string_new (nn_module_get_class_name (self));

  g_string_append_c (out, '(');
  if (n == 0)
    {
      g_string_append_c (out, ')');
      return g_string_free (out, FALSE);
    }

  char **reprs = g_new0 (char *, n + 1);
  const char **keys = g_new0 (const char *, n);
  for (guint i = 0; i < n; i++)
    reprs[i] = nn_module_to_string (nn_module_child_at (self, i, &keys[i]));

  guint start = 0;
  while (start < n)
    {
      guint end = start;
      while (end + 1 < n && strcmp (reprs[end + 1], reprs[start]) == 0
             && continues_run (keys[end], keys[end + 1]))
        end++;

      g_string_append (out, "\n  ");
      if (end == start)
        g_string_append_printf (out, "(%s): ", keys[start]);
      else
        g_string_append_printf (out, "(%s-%s): %u x ", keys[start], keys[end],
                                end - start + 1);
      append_indented (out, reprs[start]);
      start = end + 1;
    }
  g_string_append (out, "\n)");

  g_strfreev (reprs);
  g_free (keys);
  return g_string_free (out, FALSE);
}

static gboolean
module_list_create (NnModule *self, GError **error)
{
  return TRUE;
}

const NnLayerType nn_module_list_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "ModuleList",
  .doc = "Holds modules in an indexable list; has no forward",
  .schema = NULL,
  .n_schema = 0,
  .flags = NN_LAYER_INDEXABLE | NN_LAYER_CONTAINER,
  .create = module_list_create,
  /* No forward, as in PyTorch: the core reports NN_MODULE_ERROR_NO_FORWARD
   * for calls and shape inference alike. */
  .forward = NULL,
  .repr = module_list_repr,
};
