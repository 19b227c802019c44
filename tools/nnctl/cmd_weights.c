/* nnctl: weights files that are not models (a .pth, a sharded index, a
 * plain safetensors state_dict): opening them with a note of what was
 * detected, and the params and diff views over their tensors. */
#include "nnctl.h"

#include <math.h>
#include <string.h>

gboolean
nnctl_is_weights_file (const char *path)
{
  NnWeightsFormat f = nn_weights_detect_format (path, NULL);
  if (f != NN_WEIGHTS_FORMAT_SAFETENSORS)
    return f != NN_WEIGHTS_FORMAT_UNKNOWN;
  g_autoptr (NnSafetensors) st = nn_safetensors_open (path, NULL);
  return st && !nn_safetensors_get_metadata (st, NNCTL_DESCRIPTOR_KEY);
}

NnSafetensors *
nnctl_open_weights (NnctlGlobal *g, const char *path,
                    const NnWeightsOpenOptions *opts, gboolean json,
                    GError **error)
{
  NnSafetensors *st = nn_weights_open (path, opts, error);
  if (st == NULL || json)
    return st;
  const char *key = nn_safetensors_get_metadata (st, NN_WEIGHTS_META_KEY);
  const char *strip = nn_safetensors_get_metadata (st,
                                                   NN_WEIGHTS_META_STRIPPED);
  if (key && !(opts && opts->key))
    nnctl_info (g, "note: %s: using checkpoint entry '%s' (the only dict "
                "of tensors)\n", path, key);
  if (strip)
    nnctl_info (g, "note: %s: every key started with '%s'; stripped it\n",
                path, strip);
  return st;
}

/* Bytes per element of a file dtype name ("F16"). */
static gint64
dtype_bytes (const char *dt)
{
  NnDType d;
  return nn_dtype_parse (dt, &d) ? (gint64) nn_dtype_size (d) : 0;
}

/* The tensor in the dtype the file stores it in. */
static NnTensor *
get_as_stored (NnSafetensors *st, const char *name, GError **error)
{
  NnDType d = NN_DTYPE_F32;
  nn_dtype_parse (nn_safetensors_get_info (st, name, NULL), &d);
  return nn_safetensors_get (st, name, d, error);
}

int
nnctl_params_weights (NnctlGlobal *g, const char *path, const char *key,
                      const char *glob, gboolean json)
{
  GError *err = NULL;
  NnWeightsOpenOptions o = { sizeof o, 0, key, NULL, NULL };
  g_autoptr (NnSafetensors) st = nnctl_open_weights (g, path, &o, json, &err);
  if (st == NULL)
    return nnctl_fail ("params", err);
  g_autoptr (GPatternSpec) pat = glob ? g_pattern_spec_new (glob) : NULL;
  static const char *const headers[] = { "NAME", "KIND", "SHAPE", "DTYPE",
                                         "NUMEL" };
  g_autoptr (NnctlTable) table = json ? NULL : nnctl_table_new (5, headers);
  g_autoptr (JsonBuilder) b = json ? json_builder_new () : NULL;
  gint64 count = 0, numel = 0, bytes = 0;

  if (b) {
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "tensors");
    json_builder_begin_array (b);
  }
  for (guint i = 0; i < nn_safetensors_n_tensors (st); i++) {
    const char *name = nn_safetensors_name_at (st, i);
    NnShape s;
    const char *dt = nn_safetensors_get_info (st, name, &s);
    if (pat && !g_pattern_spec_match_string (pat, name))
      continue;
    gint64 n = nn_shape_numel (&s);
    count++;
    numel += n;
    bytes += n * dtype_bytes (dt);
    if (b) {
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "name");
      json_builder_add_string_value (b, name);
      json_builder_set_member_name (b, "kind");
      json_builder_add_string_value (b, "tensor");
      json_builder_set_member_name (b, "shape");
      nnctl_json_add_shape (b, &s);
      json_builder_set_member_name (b, "dtype");
      json_builder_add_string_value (b, dt);
      json_builder_set_member_name (b, "numel");
      json_builder_add_int_value (b, n);
      json_builder_end_object (b);
    } else {
      g_autofree char *shape = nnctl_shape_str (&s);
      g_autofree char *cnt = nnctl_count_str (n);
      nnctl_table_add (table, name, "tensor", shape, dt, cnt);
    }
  }
  if (b) {
    json_builder_end_array (b);
    json_builder_set_member_name (b, "count");
    json_builder_add_int_value (b, count);
    json_builder_set_member_name (b, "numel");
    json_builder_add_int_value (b, numel);
    json_builder_set_member_name (b, "bytes");
    json_builder_add_int_value (b, bytes);
    json_builder_end_object (b);
    nnctl_json_print (b);
  } else {
    g_autofree char *n = nnctl_count_str (numel);
    nnctl_table_print (table, stdout, 1u << 4);
    printf ("\n%" G_GINT64_FORMAT " tensor%s, %s elements, %.2f MB\n", count,
            count == 1 ? "" : "s", n, bytes / 1e6);
  }
  return NNCTL_EXIT_OK;
}

/* Over float64 copies, so every dtype compares the same way. */
static double
max_abs_diff (NnTensor *a, NnTensor *b)
{
  g_autoptr (NnTensor) x = nn_tensor_to_dtype (a, NN_DTYPE_F64);
  g_autoptr (NnTensor) y = nn_tensor_to_dtype (b, NN_DTYPE_F64);
  const double *p = x->data, *q = y->data;
  double m = 0;
  gint64 n = nn_tensor_numel (x);
  for (gint64 i = 0; i < n; i++) {
    double d = isnan (p[i]) || isnan (q[i])
               ? (isnan (p[i]) && isnan (q[i]) ? 0 : INFINITY)
               : fabs (p[i] - q[i]);
    m = MAX (m, d);
  }
  return m;
}

typedef struct {
  gboolean json, all;
  double atol;
  JsonBuilder *b;
  guint added, removed, reshaped, changed, same;
} WDiff;

static void
wdiff_entry (WDiff *d, const char *name, const char *change,
             const NnShape *sa, const char *da, const NnShape *sb,
             const char *db, double diff)
{
  if (d->json) {
    json_builder_begin_object (d->b);
    json_builder_set_member_name (d->b, "name");
    json_builder_add_string_value (d->b, name);
    json_builder_set_member_name (d->b, "change");
    json_builder_add_string_value (d->b, change);
    if (sa) {
      json_builder_set_member_name (d->b, "a_shape");
      nnctl_json_add_shape (d->b, sa);
    }
    if (sb) {
      json_builder_set_member_name (d->b, "b_shape");
      nnctl_json_add_shape (d->b, sb);
    }
    if (diff >= 0) {
      json_builder_set_member_name (d->b, "max_abs_diff");
      json_builder_add_double_value (d->b, isinf (diff) ? G_MAXDOUBLE : diff);
    }
    json_builder_end_object (d->b);
    return;
  }
  g_autofree char *ta = sa ? nnctl_shape_str (sa) : NULL;
  g_autofree char *tb = sb ? nnctl_shape_str (sb) : NULL;
  if (!sb)
    printf ("  - %-40s %s\n", name, ta);
  else if (!sa)
    printf ("  + %-40s %s\n", name, tb);
  else if (diff < 0)
    printf ("  ~ %-40s shape %s %s -> %s %s\n", name, ta, da, tb, db);
  else
    printf ("  %c %-40s max abs diff %.6g\n", diff > d->atol ? '~' : '=',
            name, diff);
}

static gboolean
wdiff_pair (WDiff *d, NnSafetensors *a, NnSafetensors *b, const char *name,
            GError **error)
{
  NnShape sa, sb;
  const char *da = nn_safetensors_get_info (a, name, &sa);
  const char *db = nn_safetensors_get_info (b, name, &sb);
  if (!nn_shape_equal (&sa, &sb) || g_strcmp0 (da, db) != 0) {
    d->reshaped++;
    wdiff_entry (d, name, "shape", &sa, da, &sb, db, -1);
    return TRUE;
  }
  g_autoptr (NnTensor) ta = get_as_stored (a, name, error);
  g_autoptr (NnTensor) tb = ta ? get_as_stored (b, name, error) : NULL;
  if (tb == NULL)
    return FALSE;
  double diff = max_abs_diff (ta, tb);
  gboolean changed = diff > d->atol;
  if (changed)
    d->changed++;
  else
    d->same++;
  if (changed || d->all)
    wdiff_entry (d, name, changed ? "changed" : "same", &sa, da, &sb, db,
                 diff);
  return TRUE;
}

int
nnctl_diff_weights (NnctlGlobal *g, const char *pa, const char *pb,
                    gboolean all, double atol, gboolean json)
{
  GError *err = NULL;
  NnWeightsOpenOptions o = { sizeof o, 0, g->weights_key, NULL, NULL };
  g_autoptr (NnSafetensors) a = nnctl_open_weights (g, pa, &o, json, &err);
  if (a == NULL)
    return nnctl_fail ("diff", err);
  g_autoptr (NnSafetensors) b = nnctl_open_weights (g, pb, &o, json, &err);
  if (b == NULL)
    return nnctl_fail ("diff", err);
  g_autoptr (JsonBuilder) jb = json ? json_builder_new () : NULL;
  WDiff d = { .json = json, .all = all, .atol = atol, .b = jb };

  if (jb) {
    json_builder_begin_object (jb);
    json_builder_set_member_name (jb, "a");
    json_builder_add_string_value (jb, pa);
    json_builder_set_member_name (jb, "b");
    json_builder_add_string_value (jb, pb);
    json_builder_set_member_name (jb, "tensors");
    json_builder_begin_array (jb);
  } else {
    printf ("--- %s\n+++ %s\ntensors:\n", pa, pb);
  }
  for (guint i = 0; i < nn_safetensors_n_tensors (a); i++) {
    const char *name = nn_safetensors_name_at (a, i);
    NnShape s;
    if (!nn_safetensors_get_info (b, name, NULL)) {
      const char *dt = nn_safetensors_get_info (a, name, &s);
      d.removed++;
      wdiff_entry (&d, name, "removed", &s, dt, NULL, NULL, -1);
    } else if (!wdiff_pair (&d, a, b, name, &err)) {
      return nnctl_fail ("diff", err);
    }
  }
  for (guint i = 0; i < nn_safetensors_n_tensors (b); i++) {
    const char *name = nn_safetensors_name_at (b, i);
    NnShape s;
    if (nn_safetensors_get_info (a, name, NULL))
      continue;
    const char *dt = nn_safetensors_get_info (b, name, &s);
    d.added++;
    wdiff_entry (&d, name, "added", NULL, NULL, &s, dt, -1);
  }
  if (jb) {
    json_builder_end_array (jb);
    json_builder_set_member_name (jb, "identical_tensors");
    json_builder_add_int_value (jb, d.same);
    json_builder_set_member_name (jb, "same");
    json_builder_add_boolean_value (jb, d.added + d.removed + d.reshaped +
                                        d.changed == 0);
    json_builder_end_object (jb);
    nnctl_json_print (jb);
  } else {
    printf ("summary: tensors %u added, %u removed, %u reshaped, %u "
            "changed, %u identical\n", d.added, d.removed, d.reshaped,
            d.changed, d.same);
  }
  return NNCTL_EXIT_OK;
}
