/* nnkit core: PyTorch's print(model) text (Module.__repr__). */
#include "nn-private.h"

#include <string.h>

/* PyTorch's _addindent: every line but the first gains @n spaces. */
static void
append_indented (GString *out, const char *s, guint n)
{
  for (const char *p = s; *p; p++) {
    g_string_append_c (out, *p);
    if (*p == '\n')
      for (guint i = 0; i < n; i++)
        g_string_append_c (out, ' ');
  }
}

static char *repr_depth (NnModule *m, int depth_left);

static char *
generic_repr (NnModule *m, int depth_left)
{
  const char *name = nn_module_get_class_name (m);
  g_autofree char *extra = m->type->extra_repr ? m->type->extra_repr (m) : NULL;
  gboolean has_extra = extra && *extra;
  GString *s = g_string_new (name);
  g_string_append_c (s, '(');
  if (depth_left == 0 && m->children->len > 0) {
    g_string_append (s, "...)");
    return g_string_free (s, FALSE);
  }
  if (has_extra && m->children->len == 0 && !strchr (extra, '\n')) {
    g_string_append (s, extra);
  } else if (has_extra || m->children->len > 0) {
    if (has_extra) {
      g_string_append (s, "\n  ");
      append_indented (s, extra, 2);
    }
    for (guint i = 0; i < m->children->len; i++) {
      NnChild *c = &g_array_index (m->children, NnChild, i);
      g_autofree char *sub = repr_depth (c->module, depth_left < 0 ? -1 : depth_left - 1);
      g_string_append_printf (s, "\n  (%s): ", c->name);
      append_indented (s, sub, 2);
    }
    g_string_append_c (s, '\n');
  }
  g_string_append_c (s, ')');
  return g_string_free (s, FALSE);
}

static char *
repr_depth (NnModule *m, int depth_left)
{
  /* A type's own repr (ModuleList folding) applies at unlimited depth. */
  if (m->type->repr && depth_left < 0)
    return m->type->repr (m);
  return generic_repr (m, depth_left);
}

char *
nn_module_to_string (NnModule *m)
{
  return repr_depth (m, -1);
}

char *
nn_module_to_string_depth (NnModule *m, int max_depth)
{
  return repr_depth (m, max_depth < 0 ? -1 : max_depth);
}
