/* nnkit core: running modules.  Every module call goes through
 * run_module(), which binds the arguments, fires hooks and prefixes errors
 * with the module path; composites reach descendants only through
 * nn_call_module(). */
#include "nn-private.h"
#include "check-private.h"

#include <nnkit/train.h>
#include <malloc.h>
#include <stdlib.h>

/* Errors from a type's code carry no location: the innermost call adds
 * "path: Class: ", outer calls see the flag and leave it alone. */
static void
locate_error (NnCall *call, NnModule *m, GError **error)
{
  if (call->located)
    return;
  if (error && !*error)
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "failed without a reason");
  nn_error_prefix (error, call->path->str, nn_module_get_class_name (m));
  call->located = TRUE;
}

static gboolean
no_forward (NnModule *m, GError **error)
{
  if (m->type->forward)
    return FALSE;
  g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_NO_FORWARD,
               "%s has no forward(): it is a container, not a layer; call its "
               "children instead", m->type->name);
  return TRUE;
}

static NnTensor *
zero_filled (NnTensor *t, gpointer user_data, GError **error)
{
  if (!nn_tensor_is_meta (t))
    return nn_tensor_ref (t);
  NnTensor *z = nn_tensor_new (t->dtype, &t->shape);
  if (!z) {
    char *s = nn_shape_to_string (&t->shape);
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "cannot allocate a zero-filled %s tensor of shape %s to "
                 "infer the result's shape", nn_dtype_name (t->dtype), s);
    g_free (s);
  }
  return z;
}

static NnTensor *
as_meta (NnTensor *t, gpointer user_data, GError **error)
{
  if (nn_tensor_is_meta (t))
    return nn_tensor_ref (t);
  return nn_tensor_new_meta (t->dtype, &t->shape);
}

static NnValue *
value_as_meta (const NnValue *v)
{
  return v ? nn_value_map_tensors (v, as_meta, NULL, NULL) : NULL;
}

static gint64 inplace_count;

guint64
nn_engine_get_inplace_count (void)
{
  return (guint64) __atomic_load_n (&inplace_count, __ATOMIC_RELAXED);
}

/* Whether @b's shape broadcasts to @a's (numpy's rules, from the right). */
static gboolean
broadcasts_to (const NnShape *b, const NnShape *a)
{
  if (b->ndim > a->ndim)
    return FALSE;
  for (guint i = 1; i <= b->ndim; i++) {
    gint64 db = b->dims[b->ndim - i], da = a->dims[a->ndim - i];
    if (db != da && db != 1)
      return FALSE;
  }
  return TRUE;
}

/* The tensor a type declaring inplace_arg may write its result into:
 * positional argument k, when it dies at this step.  It dies when nothing
 * but this call reaches it: the caller's argument tuple is referenced
 * once (no hook holds it), its item k only by that tuple and the binding,
 * and the tensor only by that item, with storage of its own; and the
 * caller gave the tuple up (nn_call_*_take), so it cannot read it after.  Every other
 * tensor argument must have its dtype and broadcast to its shape, so the
 * result has exactly its shape.  Never in shape inference or while a tape
 * records (backward reads the inputs).  Returns: (transfer none). */
static NnTensor *
inplace_target (NnCall *call, const NnLayerType *t, const NnValue *args,
                const NnArgs *bound, gboolean given)
{
  if (!given || t->inplace_arg <= 0 || !t->forward_into || call->meta
      || call->tape)
    return NULL;
  guint k = (guint) t->inplace_arg - 1;
  if (k >= nn_args_n (bound) || k >= nn_value_n_items (args)
      || nn_value_get_ref_count (args) != 1)
    return NULL;
  NnValue *v = nn_args_get (bound, k);
  NnTensor *x = nn_value_get_tensor (v);
  if (!x || nn_value_item (args, k) != v || nn_value_get_ref_count (v) != 2
      || g_atomic_int_get (&x->ref_count) != 1 || !nn_tensor_owns_storage (x))
    return NULL;
  for (guint i = 0; i < nn_args_n (bound); i++) {
    NnValue *o = nn_args_get (bound, i);
    if (i == k || nn_value_kind (o) != NN_VALUE_TENSOR)
      continue;
    NnTensor *y = nn_value_get_tensor (o);
    if (y == x || y->dtype != x->dtype || !broadcasts_to (&y->shape, &x->shape))
      return NULL;
  }
  return x;
}

/* Binds and runs @m's forward (or, in inference, infer), enforcing the
 * slot's contract: NULL exactly when an error is set. */
static NnValue *
invoke (NnCall *call, NnModule *m, const NnValue *args, const NnValue *kwargs,
        GError **error)
{
  const NnLayerType *t = m->type;
  NnValue *(*fn) (NnModule *, NnCall *, const NnArgs *, GError **) = t->forward;
  /* Only the outermost invoke of a taken call may work in place. */
  gboolean given = call->args_given;
  call->args_given = FALSE;
  /* A fused producer's epilogue (fuse.c) is for this invoke alone. */
  const NnEpilogue *ep = NULL;
  if (call->epilogue && call->epilogue_for == m && !call->meta) {
    ep = call->epilogue;
    call->epilogue = NULL;
  }
  /* Likewise the plan step whose check result is remembered. */
  const NnPlanStep *cstep = NULL;
  if (call->check_step && call->check_for == m) {
    cstep = call->check_step;
    call->check_step = NULL;
  }
  call->n_invokes++;
  gboolean zero = FALSE;
  g_autoptr (NnValue) zargs = NULL;
  g_autoptr (NnValue) zkwargs = NULL;

  if (call->meta) {
    if (t->infer)
      fn = t->infer;
    else if (!(t->flags & NN_LAYER_ROUTES_ONLY))
      zero = TRUE;
  }
  if (zero) {
    /* Correct for any forward, at the price of computing once. */
    zargs = nn_value_map_tensors (args, zero_filled, NULL, error);
    if (!zargs)
      return NULL;
    if (kwargs && !(zkwargs = nn_value_map_tensors (kwargs, zero_filled, NULL,
                                                    error)))
      return NULL;
    args = zargs;
    kwargs = zkwargs;
  }

  /* Only a type that reads laid-out tensors itself ever sees one; the tape
   * keeps the inputs for backward, so they are plain there too (layout.c,
   * docs/ENGINE.md "Memory").  The checked mode snapshots plain inputs
   * only (check.c). */
  if (!call->meta && (!nn_type_takes_layouts (t) || call->tape)
      && (!nn_value_make_plain (args, error)
          || !nn_value_make_plain (kwargs, error)
          || (ep && ep->residual
              && !nn_tensor_make_plain (ep->residual, error))))
    return NULL;

  NnArgs *bound = nn_args_bind (t, args, kwargs, error);
  if (!bound)
    return NULL;
  GError *local = NULL;
  gboolean saved_meta = call->meta;
  if (zero)
    call->meta = FALSE;
  NnCheck *check = call->meta || zero ? NULL : nn_check_begin (m, bound);
  /* A recorded leaf: what it calls inside is its own backward's concern. */
  gboolean record = nn_tape_wants (call, m, bound);
  call->tape_inside += record;
  NnTensor *into = ep ? NULL : inplace_target (call, t, args, bound, given);
  NnValue *out = NULL;
  /* The caller of the functional ops it runs (their plan steps). */
  NnModule *saved_current = call->current;
  call->current = m;
  NnModule *saved_running = call->running;
  call->running = m;
  if (ep) {
    out = t->fuse->forward_fused (m, call, bound, ep, &local);
  } else if (into) {
    /* The result reuses the dying input's storage (docs/ENGINE.md). */
    __atomic_add_fetch (&inplace_count, 1, __ATOMIC_RELAXED);
    if (t->forward_into (m, call, bound, into, NULL,
                         nn_call_get_thread_pool (call), &local) && !local)
      out = nn_value_new_tensor (into);
    else if (!local)
      g_set_error (&local, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                   "bug in layer type %s: its forward_into() failed without "
                   "setting an error", t->name);
  } else {
    out = fn (m, call, bound, &local);
  }
  call->current = saved_current;
  call->tape_inside -= record;
  call->meta = saved_meta;
  call->running = saved_running;
  /* A laid-out result where none may be (a tape records, layouts off) is
   * made plain here, so nothing after this point sees one. */
  if (out && !local && !call->meta && !nn_call_may_lay_out (call)
      && nn_value_has_layout (out) && !nn_value_make_plain (out, &local))
    g_clear_pointer (&out, nn_value_unref);
  /* Checked before recording: a refused result never reaches the tape. */
  if (!call->meta && !zero)
    nn_check_end (check, call, m, args, kwargs, &out, cstep, &local);
  if (record && out && !local)
    nn_tape_record (call, m, bound, out);
  else
    nn_args_free (bound);

  const char *slot = fn == t->infer ? "infer" : "forward";
  if (out && local) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "bug in layer type %s: its %s() set an error and returned "
                 "a value (error: %s)", t->name, slot, local->message);
    g_error_free (local);
    nn_value_unref (out);
    return NULL;
  }
  if (!out && !local) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "bug in layer type %s: its %s() returned NULL without "
                 "setting an error", t->name, slot);
    return NULL;
  }
  if (local) {
    g_propagate_error (error, local);
    return NULL;
  }
  if (zero) {
    NnValue *meta = value_as_meta (out);
    nn_value_unref (out);
    out = meta;
  }
  return out;
}

static void
event_clear (gpointer p)
{
  NnCallEvent *ev = p;
  g_free (ev->path);
  g_clear_pointer (&ev->args, nn_value_unref);
  g_clear_pointer (&ev->kwargs, nn_value_unref);
  g_clear_pointer (&ev->out, nn_value_unref);
}

static NnValue *
run_module (NnCall *call, NnModule *m, const NnValue *args,
            const NnValue *kwargs, GError **error)
{
  if (no_forward (m, error)) {
    locate_error (call, m, error);
    return NULL;
  }
  guint slot = G_MAXUINT;
  if (call->events) {
    NnCallEvent ev = { m, g_strdup (call->path->str), call->depth,
                       value_as_meta (args), value_as_meta (kwargs), NULL };
    g_array_append_val (call->events, ev);
    slot = call->events->len - 1;
  }

  NnValue *out = NULL;
  if (call->meta || !nn_hooks_any (m)) {
    out = invoke (call, m, args, kwargs, error);
  } else {
    NnValue *a = nn_value_ref ((NnValue *) args);
    NnValue *k = kwargs ? nn_value_ref ((NnValue *) kwargs) : NULL;
    /* Hooks see plain values only, as PyTorch's hooks see tensors. */
    if (nn_value_detach_layouts (a, error) && nn_value_detach_layouts (k, error)
        && nn_hooks_fire_pre (m, call, &a, &k, error)) {
      out = invoke (call, m, a, k, error);
      if (out && (!nn_value_detach_layouts (out, error)
                  || !nn_hooks_fire_forward (m, call, a, k, &out, error)))
        g_clear_pointer (&out, nn_value_unref);
    }
    nn_value_unref (a);
    if (k)
      nn_value_unref (k);
  }
  if (!out) {
    locate_error (call, m, error);
    return NULL;
  }
  if (slot != G_MAXUINT)
    g_array_index (call->events, NnCallEvent, slot).out = value_as_meta (out);
  return out;
}

static gboolean
check_call_values (const NnValue *args, const NnValue *kwargs, GError **error)
{
  if (args && nn_value_kind (args) != NN_VALUE_TUPLE) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_BAD_ARGUMENTS,
                 "positional arguments must be a tuple, found %s",
                 nn_value_kind_name (nn_value_kind (args)));
    return FALSE;
  }
  if (kwargs && nn_value_kind (kwargs) != NN_VALUE_DICT) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_BAD_ARGUMENTS,
                 "keyword arguments must be a dict, found %s",
                 nn_value_kind_name (nn_value_kind (kwargs)));
    return FALSE;
  }
  return TRUE;
}

/* A result goes back to the composite whose forward called: plain unless
 * that type reads laid-out tensors itself (a routing Sequential or Graph
 * passes them on to the next step); a backward's calls have no running
 * forward and get plain results.  Returns (transfer full) @out, or
 * NULL with @error after dropping it. */
static NnValue *
to_caller (NnCall *call, NnValue *out, GError **error)
{
  if (out && (!call->running || !nn_type_takes_layouts (call->running->type))
      && !nn_value_make_plain (out, error))
    g_clear_pointer (&out, nn_value_unref);
  return out;
}

/* Whether a fused producer before this step did its work (fuse.c); then
 * @out is the value passed on to the caller, or NULL with @error. */
static gboolean
absorbed (NnCall *call, const NnPlanStep *st, const NnValue *args,
          const NnValue *kwargs, NnValue **out, GError **error)
{
  GError *absorb_error = NULL;
  *out = nn_fuse_absorbed (call, st, args, kwargs, &absorb_error);
  if (absorb_error) {
    g_propagate_error (error, absorb_error);
    g_clear_pointer (out, nn_value_unref);
    return TRUE;
  }
  if (!*out)
    return FALSE;
  *out = to_caller (call, *out, error);
  return TRUE;
}

NnValue *
nn_call_module (NnCall *call, NnModule *self, const char *path,
                const NnValue *args, const NnValue *kwargs, GError **error)
{
  g_return_val_if_fail (call != NULL && self != NULL && path != NULL, NULL);
  if (!check_call_values (args, kwargs, error))
    return NULL;
  if (path[0] == '\0' || path[0] == '#') {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_BAD_REFERENCE,
                 "cannot call '%s': expected the dotted path of a "
                 "descendant", path);
    return NULL;
  }
  /* Resolved through the root's plan: a step is reused only while the
   * modules it passes through are unedited, so a replacement is seen at
   * once (plan.c).  Unplanned runs (inference, NN_PLAN=off) look it up. */
  g_autofree char *canon = NULL;
  NnModule *target;
  const char *where;
  guint depth_add;
  const NnPlanStep *st = NULL;
  guint idx = 0;
  gboolean fresh = FALSE;
  NnEpilogue ep = { 0 };
  if (call->plan_on) {
    st = nn_plan_resolve (call, self, path, error);
    if (!st)
      return NULL;
    target = st->chain[st->n_chain - 1];
    where = st->canon;
    depth_add = st->depth_add;
    idx = call->cursor - 1;
    fresh = call->step_fresh;
    /* A fused producer before it did this call's work (fuse.c). */
    NnValue *passed;
    if (absorbed (call, st, args, kwargs, &passed, error))
      return passed;
    nn_fuse_begin (call, st, idx, fresh, target, args, kwargs, &ep);
  } else {
    target = nn_module_lookup_ref (self, path, &canon, error);
    if (!target)
      return NULL;
    where = canon;
    depth_add = 1;
    for (const char *p = canon; *p; p++)
      depth_add += *p == '.';
  }
  g_autoptr (NnValue) empty = args ? NULL : nn_value_new_tuple ();
  gsize saved = call->path->len;
  guint saved_depth = call->depth;
  if (call->path->len)
    g_string_append_c (call->path, '.');
  g_string_append (call->path, where);
  call->depth += depth_add;
  call->check_step = st;
  call->check_for = target;
  NnValue *out = run_module (call, target, args ? args : empty, kwargs, error);
  call->check_step = NULL;
  if (st)
    nn_fuse_end (call, st, idx, fresh, out, &ep);
  g_string_truncate (call->path, saved);
  call->depth = saved_depth;
  return to_caller (call, out, error);
}

NnValue *
nn_call_module_take (NnCall *call, NnModule *self, const char *path,
                     NnValue *args, NnValue *kwargs, GError **error)
{
  g_return_val_if_fail (call != NULL, NULL);
  call->args_given = TRUE;
  NnValue *out = nn_call_module (call, self, path, args, kwargs, error);
  call->args_given = FALSE;
  if (args)
    nn_value_unref (args);
  if (kwargs)
    nn_value_unref (kwargs);
  return out;
}

NnValue *
nn_call_functional_take (NnCall *call, NnModule *fn, NnValue *args,
                         NnValue *kwargs, GError **error)
{
  g_return_val_if_fail (call != NULL, NULL);
  call->args_given = TRUE;
  NnValue *out = nn_call_functional (call, fn, args, kwargs, error);
  call->args_given = FALSE;
  if (args)
    nn_value_unref (args);
  if (kwargs)
    nn_value_unref (kwargs);
  return out;
}

NnTensor *
nn_call_child (NnCall *call, NnModule *self, const char *path,
               NnTensor *input, GError **error)
{
  g_return_val_if_fail (input != NULL, NULL);
  g_autoptr (NnValue) args = nn_value_new_tuple ();
  nn_value_append (args, nn_value_new_tensor (input));
  g_autoptr (NnValue) out = nn_call_module (call, self, path, args, NULL,
                                            error);
  if (!out)
    return NULL;
  NnTensor *t = nn_value_get_tensor (out);
  if (!t) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "'%s' returned %s where a Tensor was expected", path,
                 nn_value_kind_name (nn_value_kind (out)));
    return NULL;
  }
  return nn_tensor_ref (t);
}

NnValue *
nn_call_functional (NnCall *call, NnModule *fn, const NnValue *args,
                    const NnValue *kwargs, GError **error)
{
  g_return_val_if_fail (call != NULL && fn != NULL, NULL);
  if (!check_call_values (args, kwargs, error))
    return NULL;
  if (!fn->type->forward) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_NO_FORWARD,
                 "functional %s has no forward()", fn->type->name);
    return NULL;
  }
  g_autoptr (NnValue) empty = args ? NULL : nn_value_new_tuple ();
  /* A plan step too, so that fusion sees a residual add (fuse.c). */
  const NnPlanStep *st = NULL;
  guint idx = 0;
  gboolean fresh = FALSE;
  NnEpilogue ep = { 0 };
  if (call->plan_on && call->current) {
    st = nn_plan_resolve_functional (call, call->current, fn, error);
    if (!st)
      return NULL;
    idx = call->cursor - 1;
    fresh = call->step_fresh;
    NnValue *passed;
    if (absorbed (call, st, args, kwargs, &passed, error))
      return passed;
    nn_fuse_begin (call, st, idx, fresh, fn, args ? args : empty, kwargs, &ep);
  }
  /* Functional ops are not modules in PyTorch: no hooks, the caller's
   * path. */
  call->check_step = st;
  call->check_for = fn;
  NnValue *out = invoke (call, fn, args ? args : empty, kwargs, error);
  call->check_step = NULL;
  if (st)
    nn_fuse_end (call, st, idx, fresh, out, &ep);
  return to_caller (call, out, error);
}

NnTensor *
nn_call_get_tensor (NnCall *call, NnModule *self, const char *name,
                    GError **error)
{
  g_return_val_if_fail (call != NULL && self != NULL && name != NULL, NULL);
  NnTensor *t = nn_module_lookup_tensor (self, name, error);
  if (!t || !call->meta)
    return t;
  NnTensor *meta = nn_tensor_new_meta (t->dtype, &t->shape);
  g_ptr_array_add (call->keep, meta);
  return meta;
}

gboolean
nn_call_is_meta (NnCall *call)
{
  return call->meta;
}

const char *
nn_call_get_path (NnCall *call)
{
  return call->path->str;
}

/* Runs @m as a root; *@published (nullable): whether the run published a
 * new plan for it. */
static NnValue *
run_root_call (NnModule *m, const NnValue *args, const NnValue *kwargs,
               gboolean meta, gboolean plan_ahead, GArray *events,
               NnTape *tape, gboolean *published, GError **error)
{
  NnCall call = { 0 };
  call.path = g_string_new (NULL);
  call.meta = meta;
  call.plan_ahead = plan_ahead;
  call.events = events;
  call.tape = tape;
  call.keep = g_ptr_array_new_with_free_func ((GDestroyNotify) nn_tensor_unref);
  g_autoptr (NnValue) empty = args ? NULL : nn_value_new_tuple ();
  nn_plan_begin (&call, m);
  NnValue *out = run_module (&call, m, args ? args : empty, kwargs, error);
  /* The caller of a root forward gets plain tensors only. */
  if (out && !nn_value_detach_layouts (out, error))
    g_clear_pointer (&out, nn_value_unref);
  gboolean made = nn_plan_end (&call, m, out != NULL);
  if (published)
    *published = made;
  g_ptr_array_unref (call.keep);
  g_string_free (call.path, TRUE);
  if (call.rng)
    g_rand_free (call.rng);
  return out;
}

/* A root's first forward would record its plan while running every step
 * apart (plan.c), and fuse only from the second.  A shape-only run records
 * it first, so the first forward already follows the plan fused: no
 * unfused primitives to build, no second set-up at the next forward
 * (docs/ENGINE.md, "Planning ahead").  Its failure is the forward's to
 * report: the forward then records the plan itself, as before.  Returns
 * whether it published the plan. */
static gboolean
plan_ahead (NnModule *m, const NnValue *args, const NnValue *kwargs)
{
  g_autoptr (NnValue) margs = value_as_meta (args);
  g_autoptr (NnValue) mkwargs = value_as_meta (kwargs);
  GError *ignored = NULL;
  gboolean published = FALSE;
  NnValue *out = run_root_call (m, margs, mkwargs, TRUE, TRUE, NULL, NULL,
                                &published, &ignored);
  g_clear_error (&ignored);
  if (out)
    nn_value_unref (out);
  return published;
}

static NnValue *
run_root (NnModule *m, const NnValue *args, const NnValue *kwargs,
          gboolean meta, GArray *events, NnTape *tape, GError **error)
{
  g_return_val_if_fail (m != NULL, NULL);
  if (!check_call_values (args, kwargs, error))
    return NULL;
  if (!meta)
    nn_get_num_threads (); /* settles the thread count before BLAS runs */
  gboolean plain = !meta && !events && !tape;
  /* Only forwards of a built plan pool their blocks: the one that builds
   * it also sets up weights and primitives, whose temporary blocks no
   * later forward asks for again (left to glibc, with the trim below). */
  gboolean pooled = !meta && nn_plan_is_built (m);
  gboolean ahead = plain && nn_plan_wants_ahead (m) && plan_ahead (m, args,
                                                                   kwargs);
  gboolean recorded = FALSE;
  if (pooled)
    nn_tensor_pool_forward_begin ();
  NnValue *out = run_root_call (m, args, kwargs, meta, FALSE, events, tape,
                                &recorded, error);
  /* A forward that set up a new plan (the providers' primitives, weight
   * reorders, the plan itself) left the heap holding what that work freed;
   * the steady forwards after it need none of it.  Given back once here,
   * it no longer adds to every later forward's resident set. */
  if (plain && out && (ahead || recorded))
    malloc_trim (0);
  if (pooled)
    nn_tensor_pool_forward_end ();
  return out;
}

NnValue *
nn_module_call (NnModule *m, const NnValue *args, const NnValue *kwargs,
                GError **error)
{
  return run_root (m, args, kwargs, FALSE, NULL, NULL, error);
}

NnValue *
nn_tape_call (NnTape *tape, NnModule *m, const NnValue *args,
              const NnValue *kwargs, GError **error)
{
  g_return_val_if_fail (tape != NULL, NULL);
  return run_root (m, args, kwargs, FALSE, NULL, tape, error);
}

NnTensor *
nn_module_forward (NnModule *m, NnTensor *input, GError **error)
{
  g_return_val_if_fail (m != NULL && input != NULL, NULL);
  g_autoptr (NnValue) args = nn_value_new_tuple ();
  nn_value_append (args, nn_value_new_tensor (input));
  g_autoptr (NnValue) out = nn_module_call (m, args, NULL, error);
  if (!out)
    return NULL;
  NnTensor *t = nn_value_get_tensor (out);
  if (!t) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "%s: returned %s, not a Tensor; use nn_module_call() for "
                 "results of other kinds", nn_module_get_class_name (m),
                 nn_value_kind_name (nn_value_kind (out)));
    return NULL;
  }
  return nn_tensor_ref (t);
}

NnValue *
nn_module_infer_observed (NnModule *m, const NnValue *args,
                          const NnValue *kwargs, NnCallObserver observer,
                          gpointer user_data, GError **error)
{
  g_return_val_if_fail (m != NULL, NULL);
  if (!check_call_values (args, kwargs, error))
    return NULL;
  g_autoptr (NnValue) margs = value_as_meta (args);
  g_autoptr (NnValue) mkwargs = value_as_meta (kwargs);
  GArray *events = NULL;
  if (observer) {
    events = g_array_new (FALSE, TRUE, sizeof (NnCallEvent));
    g_array_set_clear_func (events, event_clear);
  }
  NnValue *out = run_root (m, margs, mkwargs, TRUE, events, NULL, error);
  /* Reported in call-entry order, as torchinfo lists layers. */
  if (out && observer)
    for (guint i = 0; i < events->len; i++) {
      NnCallEvent *ev = &g_array_index (events, NnCallEvent, i);
      observer (ev->module, ev->path, ev->depth, ev->args, ev->kwargs,
                ev->out, user_data);
    }
  if (events)
    g_array_unref (events);
  return out;
}

NnValue *
nn_module_infer (NnModule *m, const NnValue *args, const NnValue *kwargs,
                 GError **error)
{
  return nn_module_infer_observed (m, args, kwargs, NULL, NULL, error);
}

/* The shape of @v's first tensor leaf, or a 0-d shape. */
static NnShape
first_shape (const NnValue *v)
{
  NnTensor *t = nn_value_first_tensor (v);
  NnShape none = { 0 };
  return t ? t->shape : none;
}

typedef struct {
  NnShapeObserver func;
  gpointer user_data;
} ShapeObs;

static void
shape_observer (NnModule *m, const char *path, guint depth,
                const NnValue *args, const NnValue *kwargs,
                const NnValue *out, gpointer user_data)
{
  ShapeObs *o = user_data;
  NnShape in = first_shape (args), res = first_shape (out);
  o->func (m, path, depth, &in, &res, o->user_data);
}

gboolean
nn_module_infer_shape_observed (NnModule *m, const NnShape *in, NnShape *out,
                                NnShapeObserver observer, gpointer user_data,
                                GError **error)
{
  g_return_val_if_fail (m != NULL && in != NULL && out != NULL, FALSE);
  NnTensor *x = nn_tensor_new_meta (NN_DTYPE_F32, in);
  if (!x) {
    char *s = nn_shape_to_string (in);
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_INVALID,
                 "input shape %s is not a valid tensor shape", s);
    g_free (s);
    return FALSE;
  }
  g_autoptr (NnValue) args = nn_value_new_tuple ();
  nn_value_append (args, nn_value_take_tensor (x));
  ShapeObs o = { observer, user_data };
  g_autoptr (NnValue) res = nn_module_infer_observed (
      m, args, NULL, observer ? shape_observer : NULL, &o, error);
  if (!res)
    return FALSE;
  if (nn_value_count_tensors (res) == 0) {
    char *s = nn_value_to_string (res);
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "%s: returned %s, which holds no tensor",
                 nn_module_get_class_name (m), s);
    g_free (s);
    return FALSE;
  }
  *out = first_shape (res);
  return TRUE;
}

gboolean
nn_module_infer_shape (NnModule *m, const NnShape *in, NnShape *out,
                       GError **error)
{
  return nn_module_infer_shape_observed (m, in, out, NULL, NULL, error);
}
