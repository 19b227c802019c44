/* nnkit core: the checked mode (NN_CHECK=1).  Around every forward it
 * keeps a copy of each input tensor leaf and compares after the call, so a
 * type that writes into its input, which would silently change captured
 * activations and Graph values, is caught at the culprit; it also refuses
 * results sharing an input's storage.  (Reference counts are not checked:
 * other threads may hold and drop references to the same input.)  The
 * forward-versus-infer comparison lives in check_shapes.c. */
#include "check-private.h"
#include "check-shapes-private.h"

#include <string.h>

typedef struct {
  char *name;        /* "input", "tensors.1": the argument and leaf */
  guint arg;         /* index in the signature */
  NnTensor *tensor;  /* borrowed: the bound args hold it until nn_check_end,
                      * and a reference here would stop in-place reuse */
  gpointer copy;     /* its bytes before the call */
} Leaf;

struct _NnCheck {
  GArray *leaves;    /* Leaf */
  guint cur_arg;
};

/* NN_CHECK: unset (or empty), forward-versus-infer only; "0", nothing;
 * anything else, everything. */
static int
check_level (void)
{
  static gsize once = 0;
  static int level = 1;
  if (g_once_init_enter (&once)) {
    const char *v = g_getenv ("NN_CHECK");
    if (v && *v)
      level = strcmp (v, "0") == 0 ? 0 : 2;
    g_once_init_leave (&once, 1);
  }
  return level;
}

gboolean
nn_check_enabled (void)
{
  return check_level () == 2;
}

static void
leaf_clear (gpointer p)
{
  Leaf *l = p;
  g_free (l->name);
  g_free (l->copy);
}

static void
snapshot_leaf (const char *name, NnTensor *t, gpointer user_data)
{
  NnCheck *c = user_data;
  /* A laid-out input not made plain reaches only the provider that made
   * it (NN_LAYER_LAYOUT_AWARE): it has no plain bytes to compare. */
  if (nn_tensor_is_meta (t) || !nn_tensor_is_plain (t))
    return;
  Leaf l = { g_strdup (name), c->cur_arg, t,
             g_memdup2 (t->data, nn_tensor_nbytes (t)) };
  g_array_append_val (c->leaves, l);
}

static const char *
arg_name (const NnLayerType *t, guint i)
{
  return t->args && i < t->n_args ? t->args[i].name : "input";
}

NnCheck *
nn_check_begin (NnModule *m, const NnArgs *bound)
{
  if (!nn_check_enabled ())
    return NULL;
  NnCheck *c = g_new0 (NnCheck, 1);
  c->leaves = g_array_new (FALSE, TRUE, sizeof (Leaf));
  g_array_set_clear_func (c->leaves, leaf_clear);
  for (guint i = 0; i < nn_args_n (bound); i++) {
    c->cur_arg = i;
    nn_value_foreach_tensor (nn_args_get (bound, i), arg_name (m->type, i),
                             snapshot_leaf, c);
  }
  return c;
}

static void
check_free (NnCheck *c)
{
  g_array_unref (c->leaves);
  g_free (c);
}


/* Whether argument @arg may be written and aliased: the type's declared
 * in-place argument (inplace_arg is 1 + its index). */
static gboolean
declared_inplace (const NnLayerType *t, guint arg)
{
  return t->inplace_arg > 0 && (guint) (t->inplace_arg - 1) == arg;
}

static gboolean
check_writes (NnCheck *c, NnModule *m, GError **error)
{
  gboolean written = FALSE;
  for (guint i = 0; i < c->leaves->len; i++) {
    Leaf *l = &g_array_index (c->leaves, Leaf, i);
    gsize n = nn_tensor_nbytes (l->tensor);
    if (n == 0 || declared_inplace (m->type, l->arg)
        || !memcmp (l->copy, l->tensor->data, n))
      continue;
    if (!written) {
      g_autofree char *shape = nn_shape_to_string (&l->tensor->shape);
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                   "forward wrote into its input '%s' (Tensor%s %s), "
                   "which the type does not declare in-place (inplace_arg); "
                   "captured activations and Graph values would change "
                   "silently; the input is restored (a bug in plugin '%s')",
                   l->name, shape,
                   nn_dtype_name (l->tensor->dtype), nn_check_plugin_name (m));
    }
    /* The caller and any capture still hold the tensor: give it back its
     * bytes, so the failed call loses nothing. */
    memcpy (l->tensor->data, l->copy, n);
    written = TRUE;
  }
  return !written;
}

typedef struct {
  NnCheck *check;
  NnModule *module;
  GError **error;
  gboolean failed;
} AliasScan;

static gboolean
overlaps (const NnTensor *a, const NnTensor *b)
{
  const guint8 *pa = a->data, *pb = b->data;
  gsize na = nn_tensor_nbytes (a), nb = nn_tensor_nbytes (b);
  if (a == b)
    return TRUE;
  if (!pa || !pb || !na || !nb)
    return FALSE;
  return pa < pb + nb && pb < pa + na;
}

static void
alias_leaf (const char *name, NnTensor *t, gpointer user_data)
{
  AliasScan *s = user_data;
  if (s->failed || nn_tensor_is_meta (t))
    return;
  for (guint i = 0; i < s->check->leaves->len; i++) {
    Leaf *l = &g_array_index (s->check->leaves, Leaf, i);
    if (declared_inplace (s->module->type, l->arg) || !overlaps (t, l->tensor))
      continue;
    g_set_error (s->error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "forward returned %s%s%s, which %s its input '%s', but "
                 "the type declares neither an in-place argument (inplace_arg) "
                 "nor NN_LAYER_ALIASES (a bug in plugin '%s')",
                 *name ? "result '" : "the result",
                 name, *name ? "'" : "",
                 t == l->tensor ? "is the very tensor object of"
                                : "shares storage with",
                 l->name, nn_check_plugin_name (s->module));
    s->failed = TRUE;
    return;
  }
}

static gboolean
check_aliases (NnCheck *c, NnModule *m, const NnValue *out, GError **error)
{
  /* Routing types hand values on (Sequential, Graph, getitem), views
   * share storage by design: neither makes a new tensor. */
  if (m->type->flags & (NN_LAYER_ROUTES_ONLY | NN_LAYER_ALIASES))
    return TRUE;
  AliasScan s = { c, m, error, FALSE };
  nn_value_foreach_tensor (out, "", alias_leaf, &s);
  return !s.failed;
}

gboolean
nn_check_end (NnCheck *check, NnCall *call, NnModule *m, const NnValue *args,
              const NnValue *kwargs, NnValue **out, const NnPlanStep *step,
              GError **error)
{
  gboolean ok = TRUE;
  if (*out && !(error && *error)) {
    if (check)
      ok = check_writes (check, m, error) && check_aliases (check, m, *out,
                                                            error);
    if (ok && check_level () > 0)
      ok = nn_check_shapes (call, m, args, kwargs, *out, step, error);
    if (!ok)
      g_clear_pointer (out, nn_value_unref);
  }
  if (check)
    check_free (check);
  return ok;
}
