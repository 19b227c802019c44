/* nnctl diff A B: structural differences (modules added, removed or
 * changed, by path) and weight differences (max abs diff per tensor), to
 * confirm what a surgery did. */
#include "nnctl.h"

#include <math.h>
#include <string.h>

typedef struct {
  gboolean json;
  gboolean all;
  double atol;
  JsonBuilder *b;
  guint n_added, n_removed, n_changed;
  guint t_added, t_removed, t_shape, t_changed, t_same;
} Diff;

static GHashTable *
index_items (GPtrArray *items)
{
  GHashTable *h = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < items->len; i++) {
    NnNamedItem *it = items->pdata[i];
    if (!g_hash_table_contains (h, it->name))
      g_hash_table_insert (h, it->name, it);
  }
  return h;
}

static char *
module_label (NnModule *m)
{
  if (nn_module_n_children (m) == 0)
    return nn_module_to_string (m);
  return g_strdup (nn_module_get_class_name (m));
}

static char *
node_text (JsonNode *n)
{
  if (!n)
    return g_strdup ("(absent)");
  return nnctl_json_node_text (n, FALSE);
}

/* "out_features 1000 -> 10, bias true -> false" over the union of keys. */
static char *
config_delta (JsonObject *a, JsonObject *b)
{
  GString *s = g_string_new (NULL);
  g_autoptr (GList) ka = json_object_get_members (a);
  g_autoptr (GList) kb = json_object_get_members (b);

  for (GList *l = ka; l; l = l->next) {
    JsonNode *na = json_object_get_member (a, l->data);
    JsonNode *nb = json_object_get_member (b, l->data);
    if (nb && json_node_equal (na, nb))
      continue;
    g_autofree char *ta = node_text (na), *tb = node_text (nb);
    g_string_append_printf (s, "%s%s %s -> %s", s->len ? ", " : "",
                            (char *) l->data, ta, tb);
  }
  for (GList *l = kb; l; l = l->next) {
    if (json_object_has_member (a, l->data))
      continue;
    g_autofree char *tb = node_text (json_object_get_member (b, l->data));
    g_string_append_printf (s, "%s%s (absent) -> %s", s->len ? ", " : "",
                            (char *) l->data, tb);
  }
  return g_string_free (s, FALSE);
}

static void
json_module (JsonBuilder *b, NnModule *m)
{
  g_autoptr (JsonNode) cfg = json_node_new (JSON_NODE_OBJECT);
  json_node_set_object (cfg, nn_module_get_config (m));
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "class");
  json_builder_add_string_value (b, nn_module_get_class_name (m));
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, nn_module_get_type_name (m));
  json_builder_set_member_name (b, "config");
  json_builder_add_value (b, json_node_ref (cfg));
  json_builder_end_object (b);
}

static gboolean
module_changed (NnModule *a, NnModule *b)
{
  g_autoptr (JsonNode) ca = json_node_new (JSON_NODE_OBJECT);
  g_autoptr (JsonNode) cb = json_node_new (JSON_NODE_OBJECT);

  if (strcmp (nn_module_get_type_name (a), nn_module_get_type_name (b)) != 0
      || strcmp (nn_module_get_class_name (a), nn_module_get_class_name (b)))
    return TRUE;
  json_node_set_object (ca, nn_module_get_config (a));
  json_node_set_object (cb, nn_module_get_config (b));
  return !json_node_equal (ca, cb);
}

static void
diff_modules (NnModule *ma, NnModule *mb, Diff *d)
{
  g_autoptr (GPtrArray) la = nn_module_named_modules (ma);
  g_autoptr (GPtrArray) lb = nn_module_named_modules (mb);
  g_autoptr (GHashTable) ha = index_items (la);
  g_autoptr (GHashTable) hb = index_items (lb);

  if (d->json) {
    json_builder_set_member_name (d->b, "modules");
    json_builder_begin_array (d->b);
  } else {
    printf ("modules:\n");
  }
  for (guint i = 0; i < la->len; i++) {
    NnNamedItem *ia = la->pdata[i];
    NnNamedItem *ib = g_hash_table_lookup (hb, ia->name);
    if (ib && !module_changed (ia->module, ib->module))
      continue;
    if (d->json) {
      json_builder_begin_object (d->b);
      json_builder_set_member_name (d->b, "path");
      json_builder_add_string_value (d->b, ia->name);
      json_builder_set_member_name (d->b, "change");
      json_builder_add_string_value (d->b, ib ? "changed" : "removed");
      json_builder_set_member_name (d->b, "a");
      json_module (d->b, ia->module);
      if (ib) {
        json_builder_set_member_name (d->b, "b");
        json_module (d->b, ib->module);
      }
      json_builder_end_object (d->b);
    } else if (!ib) {
      g_autofree char *l = module_label (ia->module);
      printf ("  - %-28s %s\n", nnctl_path_display (ia->name), l);
    } else {
      const char *ca = nn_module_get_class_name (ia->module);
      const char *cb = nn_module_get_class_name (ib->module);
      g_autofree char *delta = config_delta (nn_module_get_config (ia->module),
                                             nn_module_get_config (ib->module));
      if (strcmp (ca, cb) || strcmp (nn_module_get_type_name (ia->module),
                                     nn_module_get_type_name (ib->module))) {
        g_autofree char *la_ = module_label (ia->module);
        g_autofree char *lb_ = module_label (ib->module);
        printf ("  ~ %-28s %s -> %s\n", nnctl_path_display (ia->name), la_,
                lb_);
      } else {
        printf ("  ~ %-28s %s: %s\n", nnctl_path_display (ia->name), ca,
                delta);
      }
    }
    if (ib)
      d->n_changed++;
    else
      d->n_removed++;
  }
  for (guint i = 0; i < lb->len; i++) {
    NnNamedItem *ib = lb->pdata[i];
    if (g_hash_table_contains (ha, ib->name))
      continue;
    d->n_added++;
    if (d->json) {
      json_builder_begin_object (d->b);
      json_builder_set_member_name (d->b, "path");
      json_builder_add_string_value (d->b, ib->name);
      json_builder_set_member_name (d->b, "change");
      json_builder_add_string_value (d->b, "added");
      json_builder_set_member_name (d->b, "b");
      json_module (d->b, ib->module);
      json_builder_end_object (d->b);
    } else {
      g_autofree char *l = module_label (ib->module);
      printf ("  + %-28s %s\n", nnctl_path_display (ib->name), l);
    }
  }
  if (d->json)
    json_builder_end_array (d->b);
  else if (d->n_added + d->n_removed + d->n_changed == 0)
    printf ("  (no structural change)\n");
}

static double
element (const NnTensor *t, gint64 i)
{
  return t->dtype == NN_DTYPE_F32 ? ((const float *) t->data)[i]
                                  : (double) ((const gint64 *) t->data)[i];
}

/* Max abs difference; NaN where exactly one side is NaN counts as inf. */
static double
max_abs_diff (const NnTensor *a, const NnTensor *b)
{
  double m = 0;
  gint64 n = nn_tensor_numel (a);
  for (gint64 i = 0; i < n; i++) {
    double x = element (a, i), y = element (b, i);
    double d = fabs (x - y);
    if (isnan (x) || isnan (y))
      d = isnan (x) && isnan (y) ? 0 : INFINITY;
    if (d > m)
      m = d;
  }
  return m;
}

static void
tensor_entry (Diff *d, const char *name, const char *change,
              const NnTensor *a, const NnTensor *b, double diff)
{
  if (d->json) {
    json_builder_begin_object (d->b);
    json_builder_set_member_name (d->b, "name");
    json_builder_add_string_value (d->b, name);
    json_builder_set_member_name (d->b, "change");
    json_builder_add_string_value (d->b, change);
    if (a) {
      json_builder_set_member_name (d->b, "a_shape");
      nnctl_json_add_shape (d->b, &a->shape);
    }
    if (b) {
      json_builder_set_member_name (d->b, "b_shape");
      nnctl_json_add_shape (d->b, &b->shape);
    }
    if (a && b && nn_shape_equal (&a->shape, &b->shape)) {
      json_builder_set_member_name (d->b, "max_abs_diff");
      json_builder_add_double_value (d->b, isinf (diff) ? G_MAXDOUBLE : diff);
    }
    json_builder_end_object (d->b);
    return;
  }
  g_autofree char *sa = a ? nnctl_shape_str (&a->shape) : NULL;
  g_autofree char *sb = b ? nnctl_shape_str (&b->shape) : NULL;
  if (!b)
    printf ("  - %-40s %s\n", name, sa);
  else if (!a)
    printf ("  + %-40s %s\n", name, sb);
  else if (!nn_shape_equal (&a->shape, &b->shape) || a->dtype != b->dtype)
    printf ("  ~ %-40s shape %s %s -> %s %s\n", name, sa,
            nn_dtype_name (a->dtype), sb, nn_dtype_name (b->dtype));
  else
    printf ("  %c %-40s max abs diff %.6g\n", diff > d->atol ? '~' : '=',
            name, diff);
}

static void
diff_tensors (NnModule *ma, NnModule *mb, Diff *d)
{
  g_autoptr (GPtrArray) la = nn_module_state_dict (ma);
  g_autoptr (GPtrArray) lb = nn_module_state_dict (mb);
  g_autoptr (GHashTable) ha = index_items (la);
  g_autoptr (GHashTable) hb = index_items (lb);

  if (d->json) {
    json_builder_set_member_name (d->b, "tensors");
    json_builder_begin_array (d->b);
  } else {
    printf ("tensors:\n");
  }
  for (guint i = 0; i < la->len; i++) {
    NnNamedItem *ia = la->pdata[i];
    NnNamedItem *ib = g_hash_table_lookup (hb, ia->name);
    if (!ib) {
      d->t_removed++;
      tensor_entry (d, ia->name, "removed", ia->tensor, NULL, 0);
    } else if (!nn_shape_equal (&ia->tensor->shape, &ib->tensor->shape)
               || ia->tensor->dtype != ib->tensor->dtype) {
      d->t_shape++;
      tensor_entry (d, ia->name, "shape", ia->tensor, ib->tensor, 0);
    } else {
      double diff = max_abs_diff (ia->tensor, ib->tensor);
      gboolean changed = diff > d->atol;
      if (changed)
        d->t_changed++;
      else
        d->t_same++;
      if (changed || d->all)
        tensor_entry (d, ia->name, changed ? "changed" : "same", ia->tensor,
                      ib->tensor, diff);
    }
  }
  for (guint i = 0; i < lb->len; i++) {
    NnNamedItem *ib = lb->pdata[i];
    if (g_hash_table_contains (ha, ib->name))
      continue;
    d->t_added++;
    tensor_entry (d, ib->name, "added", NULL, ib->tensor, 0);
  }
  if (d->json)
    json_builder_end_array (d->b);
}

int
nnctl_cmd_diff (NnctlGlobal *g, const NnctlCommand *cmd, int argc,
                char **argv)
{
  gboolean json = FALSE, all = FALSE;
  double atol = 0;
  GError *err = NULL;
  const GOptionEntry entries[] = {
    { "all", 'a', 0, G_OPTION_ARG_NONE, &all,
      "Also list tensors that are equal", NULL },
    { "atol", 0, 0, G_OPTION_ARG_DOUBLE, &atol,
      "Tensors whose max abs diff is <= X count as equal (default 0)", "X" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Machine-readable output",
      NULL },
    { NULL }
  };
  int rc = nnctl_parse (g, cmd, entries, NNCTL_TAKES_MODEL, &argc, &argv,
                        2, 2);
  g_autoptr (NnModule) a = NULL;
  g_autoptr (NnModule) b = NULL;
  g_autoptr (JsonBuilder) jb = NULL;
  Diff d = { 0 };

  if (rc != NNCTL_CONTINUE)
    return rc;
  if (g->weights)
    return nnctl_usage ("diff", "--weights is ambiguous with two models; "
                        "use single-file models or weights beside each");
  if (atol < 0 || isnan (atol))
    return nnctl_usage ("diff", "--atol: expected X >= 0");
  gboolean wa = nnctl_is_weights_file (argv[1]);
  gboolean wb = nnctl_is_weights_file (argv[2]);
  if (wa && wb)
    return nnctl_diff_weights (g, argv[1], argv[2], all, atol, json);
  if (wa || wb)
    return nnctl_usage ("diff", "%s is a weights file and %s a model: "
                        "compare two models or two weights files",
                        wa ? argv[1] : argv[2], wa ? argv[2] : argv[1]);
  a = nnctl_load_model (g, argv[1], &err);
  if (!a)
    return nnctl_fail ("diff", err);
  b = nnctl_load_model (g, argv[2], &err);
  if (!b)
    return nnctl_fail ("diff", err);

  d.json = json;
  d.all = all;
  d.atol = atol;
  if (json) {
    jb = json_builder_new ();
    d.b = jb;
    json_builder_begin_object (jb);
    json_builder_set_member_name (jb, "a");
    json_builder_add_string_value (jb, argv[1]);
    json_builder_set_member_name (jb, "b");
    json_builder_add_string_value (jb, argv[2]);
  } else {
    printf ("--- %s\n+++ %s\n", argv[1], argv[2]);
  }
  diff_modules (a, b, &d);
  diff_tensors (a, b, &d);
  if (json) {
    json_builder_set_member_name (jb, "identical_tensors");
    json_builder_add_int_value (jb, d.t_same);
    json_builder_set_member_name (jb, "same");
    json_builder_add_boolean_value (jb, d.n_added + d.n_removed + d.n_changed
                                        + d.t_added + d.t_removed + d.t_shape
                                        + d.t_changed == 0);
    json_builder_end_object (jb);
    nnctl_json_print (jb);
  } else {
    printf ("summary: modules %u added, %u removed, %u changed; tensors "
            "%u added, %u removed, %u reshaped, %u changed, %u identical\n",
            d.n_added, d.n_removed, d.n_changed, d.t_added, d.t_removed,
            d.t_shape, d.t_changed, d.t_same);
  }
  return NNCTL_EXIT_OK;
}
