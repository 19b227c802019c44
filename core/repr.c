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

static void repr_into (GString *s, NnModule *m, int depth_left, guint indent);

static void
newline (GString *s, guint indent)
{
  g_string_append_c (s, '\n');
  for (guint i = 0; i < indent; i++)
    g_string_append_c (s, ' ');
}

/* Writes at absolute @indent instead of re-indenting each child's text at
 * every level, which made deep trees cost the cube of their depth. */
static void
generic_repr (GString *s, NnModule *m, int depth_left, guint indent)
{
  const char *name = nn_module_get_class_name (m);
  g_autofree char *extra = m->type->extra_repr ? m->type->extra_repr (m)
                           : g_strdup (m->extra_repr);
  gboolean has_extra = extra && *extra;
  g_string_append (s, name);
  g_string_append_c (s, '(');
  if (depth_left == 0 && m->children->len > 0) {
    g_string_append (s, "...)");
    return;
  }
  if (has_extra && m->children->len == 0 && !strchr (extra, '\n')) {
    g_string_append (s, extra);
  } else if (has_extra || m->children->len > 0) {
    if (has_extra) {
      newline (s, indent + 2);
      append_indented (s, extra, indent + 2);
    }
    for (guint i = 0; i < m->children->len; i++) {
      NnChild *c = &g_array_index (m->children, NnChild, i);
      newline (s, indent + 2);
      g_string_append_printf (s, "(%s): ", c->name);
      repr_into (s, c->module, depth_left < 0 ? -1 : depth_left - 1, indent + 2);
    }
    newline (s, indent);
  }
  g_string_append_c (s, ')');
}

static void
repr_into (GString *s, NnModule *m, int depth_left, guint indent)
{
  /* A type's own repr applies at unlimited depth. */
  if (m->type->repr && depth_left < 0) {
    g_autofree char *own = m->type->repr (m);
    append_indented (s, own, indent);
    return;
  }
  generic_repr (s, m, depth_left, indent);
}

static char *
repr_depth (NnModule *m, int depth_left)
{
  GString *s = g_string_new (NULL);
  repr_into (s, m, depth_left, 0);
  return g_string_free (s, FALSE);
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
