/* nnkit core: the tape of a recorded forward and its reverse walk.
 *
 * Only leaf calls are recorded (a type that is not NN_LAYER_ROUTES_ONLY,
 * reached through nn_module_call, nn_call_module or nn_call_functional):
 * composites route values between leaves and need no backward.  A call is
 * recorded when one of its input tensors is "live" (produced by a recorded
 * call) or its module has a trainable parameter, so a frozen prefix costs
 * nothing.  Gradients are keyed by tensor identity: the tape holds a
 * reference to every recorded input and output, so no address is reused
 * while it lives. */
#include "nn-private.h"

#include <nnkit/train.h>
#include <string.h>

typedef struct {
  NnModule *module; /* holds a reference */
  char *path;       /* dotted path of the call, for errors */
  NnArgs *args;     /* bound arguments (owned) */
  NnValue *out;     /* the result (a reference) */
} TapeEntry;

struct _NnTape {
  GArray *entries;  /* TapeEntry, call order */
  GHashTable *live; /* NnTensor* set: outputs of recorded calls */
  GRand *rng;
  gboolean walked;
  GPtrArray *watched; /* tensors marked by nn_tape_watch (references) */
  GHashTable *grads;  /* (nullable) after the walk: NnTensor* -> gradient */
};

static void
entry_clear (gpointer p)
{
  TapeEntry *e = p;
  nn_module_unref (e->module);
  g_free (e->path);
  nn_args_free (e->args);
  nn_value_unref (e->out);
}

NnTape *
nn_tape_new (guint32 seed)
{
  NnTape *t = g_new0 (NnTape, 1);
  t->entries = g_array_new (FALSE, TRUE, sizeof (TapeEntry));
  g_array_set_clear_func (t->entries, entry_clear);
  t->live = g_hash_table_new (g_direct_hash, g_direct_equal);
  t->rng = g_rand_new_with_seed (seed);
  t->watched = g_ptr_array_new_with_free_func ((GDestroyNotify) nn_tensor_unref);
  nn_tensor_pool_training_begin ();
  return t;
}

void
nn_tape_free (NnTape *tape)
{
  if (!tape)
    return;
  /* The set holds no references; the entries do, so it goes first. */
  g_hash_table_unref (tape->live);
  if (tape->grads)
    g_hash_table_unref (tape->grads);
  g_array_unref (tape->entries);
  g_ptr_array_unref (tape->watched);
  g_rand_free (tape->rng);
  g_free (tape);
  /* After the entries: the step's blocks go back to the pool first. */
  nn_tensor_pool_training_end ();
}

guint
nn_tape_n_entries (NnTape *tape)
{
  g_return_val_if_fail (tape != NULL, 0);
  return tape->entries->len;
}

void
nn_tape_watch (NnTape *tape, NnTensor *t)
{
  g_return_if_fail (tape != NULL && t != NULL);
  g_ptr_array_add (tape->watched, nn_tensor_ref (t));
  g_hash_table_add (tape->live, t);
}

NnTensor *
nn_tape_grad (NnTape *tape, NnTensor *t)
{
  g_return_val_if_fail (tape != NULL && t != NULL, NULL);
  return tape->grads ? g_hash_table_lookup (tape->grads, t) : NULL;
}

GRand *
nn_tape_rng (NnTape *tape)
{
  return tape->rng;
}

/* Whether @m or a descendant owns a trainable parameter. */
static gboolean
has_trainable (NnModule *m)
{
  for (guint i = 0; i < m->params->len; i++) {
    NnSlot *s = &g_array_index (m->params, NnSlot, i);
    if (nn_module_param_requires_grad (m, s->name))
      return TRUE;
  }
  for (guint i = 0; i < m->children->len; i++)
    if (has_trainable (g_array_index (m->children, NnChild, i).module))
      return TRUE;
  return FALSE;
}

typedef struct {
  GHashTable *live;
  gboolean hit;
} LiveScan;

static void
scan_live (const char *name, NnTensor *t, gpointer user_data)
{
  LiveScan *s = user_data;
  if (g_hash_table_contains (s->live, t))
    s->hit = TRUE;
}

gboolean
nn_tape_wants (NnCall *call, NnModule *m, const NnArgs *bound)
{
  if (!call->tape || call->meta || call->tape_inside
      || (m->type->flags & NN_LAYER_ROUTES_ONLY))
    return FALSE;
  if (has_trainable (m))
    return TRUE;
  LiveScan s = { call->tape->live, FALSE };
  for (guint i = 0; i < nn_args_n (bound) && !s.hit; i++)
    nn_value_foreach_tensor (nn_args_get (bound, i), "", scan_live, &s);
  return s.hit;
}

static void
mark_live (const char *name, NnTensor *t, gpointer user_data)
{
  g_hash_table_add (user_data, t);
}

void
nn_tape_record (NnCall *call, NnModule *m, NnArgs *bound, const NnValue *out)
{
  NnTape *tape = call->tape;
  TapeEntry e = { nn_module_ref (m), g_strdup (call->path->str), bound,
                  nn_value_ref ((NnValue *) out) };
  g_array_append_val (tape->entries, e);
  nn_value_foreach_tensor (out, "", mark_live, tape->live);
}

/* --- the reverse walk ---------------------------------------------------- */

typedef struct {
  GHashTable *grads; /* NnTensor* -> NnTensor* gradient (owned) */
  gboolean any;
} GradScan;

/* The gradient of one output leaf: the accumulated one (taken from the
 * map), or zeros when none reached it while another leaf has one. */
static NnTensor *
take_grad (NnTensor *t, gpointer user_data, GError **error)
{
  GradScan *s = user_data;
  gpointer g = NULL;
  if (g_hash_table_steal_extended (s->grads, t, NULL, &g)) {
    s->any = TRUE;
    return g;
  }
  return nn_tensor_new (t->dtype, &t->shape);
}

static void
probe_grad (const char *name, NnTensor *t, gpointer user_data)
{
  GradScan *s = user_data;
  if (g_hash_table_contains (s->grads, t))
    s->any = TRUE;
}

typedef struct {
  float *d;
  const float *a, *b;
} AddJob;

static void
add_range (gsize begin, gsize end, gpointer data)
{
  const AddJob *j = data;
  float *d = j->d;
  const float *a = j->a, *b = j->b;
  for (gsize i = begin; i < end; i++)
    d[i] = a[i] + b[i];
}

/* Adds @g (transfer none) to the gradient of @t; never writes into a
 * stored tensor, which a backward may have returned by reference. */
static gboolean
accumulate (NnTape *tape, GHashTable *grads, NnTensor *t, NnTensor *g,
            const TapeEntry *e, GError **error)
{
  if (!g_hash_table_contains (tape->live, t))
    return TRUE; /* an input no gradient is wanted for */
  if (g->dtype != NN_DTYPE_F32 || !nn_shape_equal (&g->shape, &t->shape)) {
    g_autofree char *want = nn_shape_to_string (&t->shape);
    g_autofree char *got = nn_shape_to_string (&g->shape);
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "bug in layer type %s at '%s': backward() returned a %s "
                 "gradient of shape %s for an input of shape %s",
                 e->module->type->name, e->path, nn_dtype_name (g->dtype),
                 got, want);
    return FALSE;
  }
  NnTensor *old = g_hash_table_lookup (grads, t);
  if (!old) {
    g_hash_table_insert (grads, t, nn_tensor_ref (g));
    return TRUE;
  }
  /* A sum held by the map alone (one made here, or a backward's result
   * nobody else kept) takes the addition in place: no new buffer per
   * residual branch.  Anything else may be a stored tensor. */
  gboolean in_place = g_atomic_int_get (&old->ref_count) == 1
                      && nn_tensor_owns_storage (old);
  NnTensor *sum = in_place ? nn_tensor_ref (old)
                           : nn_tensor_new_uninitialized (NN_DTYPE_F32, &t->shape);
  if (!sum) {
    g_autofree char *shape = nn_shape_to_string (&t->shape);
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "cannot allocate the gradient sum %s at '%s'", shape, e->path);
    return FALSE;
  }
  AddJob job = { nn_tensor_f32 (sum), nn_tensor_f32 (old), nn_tensor_f32 (g) };
  gint64 n = nn_tensor_numel (sum);
  if (n > 0)
    nn_thread_pool_parallel_for_work (nn_thread_pool_get_default (), (gsize) n, n,
                                      add_range, &job);
  g_hash_table_insert (grads, t, sum);
  return TRUE;
}

/* Pairs the gradient value @g with the argument value @a, structurally. */
static gboolean
distribute (NnTape *tape, GHashTable *grads, const NnValue *a,
            const NnValue *g, const TapeEntry *e, GError **error)
{
  if (!g || nn_value_is_none (g))
    return TRUE;
  NnTensor *at = nn_value_get_tensor (a), *gt = nn_value_get_tensor (g);
  if (at && gt)
    return accumulate (tape, grads, at, gt, e, error);
  NnValueKind ak = nn_value_kind (a), gk = nn_value_kind (g);
  if ((ak == NN_VALUE_TUPLE || ak == NN_VALUE_LIST)
      && (gk == NN_VALUE_TUPLE || gk == NN_VALUE_LIST)) {
    guint n = MIN (nn_value_n_items (a), nn_value_n_items (g));
    for (guint i = 0; i < n; i++)
      if (!distribute (tape, grads, nn_value_item (a, i),
                       nn_value_item (g, i), e, error))
        return FALSE;
  }
  return TRUE;
}

static gboolean
run_backward (NnTape *tape, GHashTable *grads, const TapeEntry *e,
              GError **error)
{
  GradScan s = { grads, FALSE };
  nn_value_foreach_tensor (e->out, "", probe_grad, &s);
  if (!s.any)
    return TRUE; /* no gradient reaches this call */
  const NnLayerType *t = e->module->type;
  if (!t->backward) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "%s%s%s: layer type %s has no backward(), and a gradient "
                 "must flow through it (freeze the parameters before it, or "
                 "use a type with backward)", *e->path ? "'" : "",
                 *e->path ? e->path : "the root", *e->path ? "'" : "",
                 t->name);
    return FALSE;
  }
  g_autoptr (NnValue) gout = nn_value_map_tensors (e->out, take_grad, &s,
                                                   error);
  if (!gout)
    return FALSE;
  NnCall call = { 0 };
  call.path = g_string_new (e->path);
  call.keep = g_ptr_array_new_with_free_func ((GDestroyNotify) nn_tensor_unref);
  call.walking = tape;
  GError *local = NULL;
  NnValue *gin = t->backward (e->module, &call, e->args, e->out, gout, &local);
  g_ptr_array_unref (call.keep);
  g_string_free (call.path, TRUE);
  if (call.rng)
    g_rand_free (call.rng);
  if (!gin || local) {
    if (gin)
      nn_value_unref (gin);
    if (!local)
      local = g_error_new (NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                           "bug in layer type %s: backward() returned NULL "
                           "without setting an error", t->name);
    nn_error_prefix (&local, e->path, nn_module_get_class_name (e->module));
    g_propagate_error (error, local);
    return FALSE;
  }
  gboolean ok = TRUE;
  if (nn_value_kind (gin) != NN_VALUE_TUPLE) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "bug in layer type %s: backward() returned %s, not a tuple",
                 t->name, nn_value_kind_name (nn_value_kind (gin)));
    ok = FALSE;
  }
  guint n = ok ? MIN (nn_value_n_items (gin), nn_args_n (e->args)) : 0;
  for (guint i = 0; i < n && ok; i++)
    ok = distribute (tape, grads, nn_args_get (e->args, i),
                     nn_value_item (gin, i), e, error);
  nn_value_unref (gin);
  return ok;
}

gboolean
nn_backward (NnTape *tape, NnTensor *output, NnTensor *grad, GError **error)
{
  g_return_val_if_fail (tape != NULL && output != NULL, FALSE);
  if (tape->walked) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "backward: this tape was already walked; record a new "
                 "forward");
    return FALSE;
  }
  if (!g_hash_table_contains (tape->live, output)) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "backward: the output was not computed by a recorded call "
                 "(no input needed a gradient and no module on its path has "
                 "a trainable parameter)");
    return FALSE;
  }
  g_autoptr (NnTensor) seed = NULL;
  if (grad) {
    if (!nn_shape_equal (&grad->shape, &output->shape)
        || grad->dtype != NN_DTYPE_F32) {
      g_autofree char *want = nn_shape_to_string (&output->shape);
      g_autofree char *got = nn_shape_to_string (&grad->shape);
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_BAD_ARGUMENTS,
                   "backward: the gradient must be float32 of the output's "
                   "shape %s, found %s %s", want, nn_dtype_name (grad->dtype),
                   got);
      return FALSE;
    }
    seed = nn_tensor_ref (grad);
  } else {
    if (nn_tensor_numel (output) != 1) {
      g_autofree char *s = nn_shape_to_string (&output->shape);
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_BAD_ARGUMENTS,
                   "backward: a gradient can be implied only for a "
                   "one-element output, found shape %s; pass one", s);
      return FALSE;
    }
    seed = nn_tensor_new (NN_DTYPE_F32, &output->shape);
    nn_tensor_f32 (seed)[0] = 1.0f;
  }
  tape->walked = TRUE;
  GHashTable *grads = g_hash_table_new_full (g_direct_hash, g_direct_equal,
                                             NULL,
                                             (GDestroyNotify) nn_tensor_unref);
  g_hash_table_insert (grads, output, g_steal_pointer (&seed));
  gboolean ok = TRUE;
  for (guint i = tape->entries->len; i-- > 0 && ok;)
    ok = run_backward (tape, grads, &g_array_index (tape->entries, TapeEntry, i),
                       error);
  /* What is left are the gradients of tensors no recorded call produced:
   * the watched inputs. */
  tape->grads = grads;
  return ok;
}

GRand *
nn_call_get_rng (NnCall *call)
{
  g_return_val_if_fail (call != NULL, NULL);
  if (call->tape)
    return nn_tape_rng (call->tape);
  if (!call->rng)
    call->rng = g_rand_new ();
  return call->rng;
}

gboolean
nn_call_input_needs_grad (NnCall *call, const NnArgs *args, guint i)
{
  g_return_val_if_fail (call != NULL && args != NULL, TRUE);
  if (!call->walking)
    return TRUE;
  if (i >= nn_args_n (args))
    return FALSE;
  LiveScan s = { call->walking->live, FALSE };
  nn_value_foreach_tensor (nn_args_get (args, i), "", scan_live, &s);
  return s.hit;
}

gboolean
nn_call_is_recording (NnCall *call)
{
  return call && call->tape && !call->meta && call->tape_inside > 0;
}
