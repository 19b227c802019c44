/* nnkit core: the execution plan.  The first forward of a root records
 * the calls its composites make through nn_call_module(), in entry order,
 * each resolved to its module, and through nn_call_functional() (the
 * op and its caller, for fusion) (the trace); that list of steps becomes the
 * root's plan, and later forwards follow it instead of looking each path
 * up.  A step is used only when the same caller asks for the same path at
 * the same position and every module on the way still carries the stamp
 * it had when resolved (module.c renews a stamp on every edit of children
 * or own tensors), so surgery and load_state_dict are seen at once, and
 * edits of other trees change nothing here.  Hooks are not part of a
 * step: each call still asks its module for hooks.  Knows no type. */
#include "nn-private.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Guards every root's plan pointer; held only to take or swap a
 * reference.  A pthread mutex, which ThreadSanitizer sees. */
static pthread_mutex_t plan_lock = PTHREAD_MUTEX_INITIALIZER;

static int plan_disabled = -1;

/* NN_PLAN=off resolves every call as before the plan existed: what the
 * agreement tests compare against. */
static gboolean
plan_enabled (void)
{
  int d = __atomic_load_n (&plan_disabled, __ATOMIC_RELAXED);
  if (d < 0) {
    const char *env = g_getenv ("NN_PLAN");
    d = env && (g_ascii_strcasecmp (env, "off") == 0 || strcmp (env, "0") == 0);
    __atomic_store_n (&plan_disabled, d, __ATOMIC_RELAXED);
  }
  return !d;
}

static NnPlanStep *
step_ref (NnPlanStep *s)
{
  g_atomic_int_inc (&s->ref_count);
  return s;
}

static void
step_unref (gpointer p)
{
  NnPlanStep *s = p;
  if (!g_atomic_int_dec_and_test (&s->ref_count))
    return;
  g_free (s->path);
  g_free (s->canon);
  g_free (s->chain);
  g_free (s->stamps);
  g_free (s);
}

static NnPlan *
plan_ref (NnPlan *p)
{
  g_atomic_int_inc (&p->ref_count);
  return p;
}

static void
plan_unref (NnPlan *p)
{
  if (p && g_atomic_int_dec_and_test (&p->ref_count)) {
    nn_fuse_plan_free (p);
    g_ptr_array_unref (p->steps);
    g_free (p);
  }
}

static guint64
stamp_of (NnModule *m)
{
  return __atomic_load_n (&m->stamp, __ATOMIC_ACQUIRE);
}

void
nn_plan_clear (NnModule *m)
{
  plan_unref (m->plan);
  m->plan = NULL;
}

void
nn_plan_begin (NnCall *call, NnModule *root)
{
  call->cursor = 0;
  call->step_fresh = FALSE;
  call->trace = NULL;
  call->plan = NULL;
  call->plan_on = (!call->meta || call->plan_ahead) && plan_enabled ();
  call->step_out = NULL;
  call->held = NULL;
  call->n_held = 0;
  if (!call->plan_on)
    return;
  call->step_out = g_array_new (FALSE, TRUE, sizeof (gpointer));
  pthread_mutex_lock (&plan_lock);
  if (root->plan)
    call->plan = plan_ref (root->plan);
  pthread_mutex_unlock (&plan_lock);
  if (!call->plan)
    call->trace = g_ptr_array_new_with_free_func (step_unref);
  else if (call->plan->n_res)
    call->held = g_new0 (NnTensor *, call->n_held = call->plan->steps->len);
}

gboolean
nn_plan_end (NnCall *call, NnModule *root, gboolean ok)
{
  gboolean published = FALSE;
  /* A plan followed to its end is kept; a run that left it (a miss, or
   * fewer calls than planned) publishes what it did instead. */
  if (!call->plan_on)
    return FALSE;
  /* Residuals a left plan never reached (fuse.c). */
  for (guint i = 0; i < call->n_held; i++)
    if (call->held[i])
      nn_tensor_unref (call->held[i]);
  g_clear_pointer (&call->held, g_free);
  call->n_held = 0;
  g_clear_pointer (&call->step_out, g_array_unref);
  if (ok && !call->trace && call->plan
      && call->cursor < call->plan->steps->len) {
    call->trace = g_ptr_array_new_with_free_func (step_unref);
    for (guint i = 0; i < call->cursor; i++)
      g_ptr_array_add (call->trace, step_ref (call->plan->steps->pdata[i]));
  }
  if (ok && call->trace) {
    NnPlan *p = g_new0 (NnPlan, 1);
    p->ref_count = 1;
    p->steps = g_ptr_array_ref (call->trace);
    nn_fuse_annotate (p);
    pthread_mutex_lock (&plan_lock);
    NnPlan *old = root->plan;
    root->plan = p;
    root->plan_builds++;
    pthread_mutex_unlock (&plan_lock);
    plan_unref (old);
    published = TRUE;
  }
  g_clear_pointer (&call->trace, g_ptr_array_unref);
  plan_unref (call->plan);
  call->plan = NULL;
  return published;
}

/* The step still holds: the chain is walked from the caller, which is
 * alive, and each module's stamp is checked before the next one (its
 * child while the stamp is unchanged) is read. */
static gboolean
step_holds (const NnPlanStep *s, NnModule *self, const char *path)
{
  if (s->caller != self || s->fn || strcmp (s->path, path) != 0)
    return FALSE;
  for (guint i = 0; i < s->n_chain; i++)
    if (stamp_of (s->chain[i]) != s->stamps[i])
      return FALSE;
  return TRUE;
}

static NnPlanStep *
resolve_fresh (NnModule *self, const char *path, GError **error)
{
  g_autofree char *canon = NULL;
  NnModule *target = nn_module_lookup_ref (self, path, &canon, error);
  if (!target)
    return NULL;
  NnPlanStep *s = g_new0 (NnPlanStep, 1);
  s->ref_count = 1;
  s->caller = self;
  s->path = g_strdup (path);
  g_auto (GStrv) segs = g_strsplit (canon, ".", -1);
  guint n = g_strv_length (segs);
  s->depth_add = n;
  s->n_chain = n + 1;
  s->chain = g_new (NnModule *, n + 1);
  s->stamps = g_new (guint64, n + 1);
  NnModule *m = self;
  for (guint i = 0; i <= n; i++) {
    if (i > 0)
      m = nn_module_get_child (m, segs[i - 1]);
    g_assert (m != NULL); /* canon names existing child slots */
    s->chain[i] = m;
    s->stamps[i] = stamp_of (m);
  }
  g_assert (m == target);
  s->canon = g_steal_pointer (&canon);
  return s;
}

/* Appends @s (transfer full), resolved afresh, to the run's trace.  When
 * the plan no longer describes this run, recording starts here, keeping
 * the steps that matched. */
static const NnPlanStep *
record_fresh (NnCall *call, NnPlanStep *s)
{
  if (!call->trace) {
    call->trace = g_ptr_array_new_with_free_func (step_unref);
    if (call->plan)
      for (guint i = 0; i < call->cursor; i++)
        g_ptr_array_add (call->trace, step_ref (call->plan->steps->pdata[i]));
  }
  g_ptr_array_add (call->trace, s);
  call->cursor++;
  call->step_fresh = TRUE;
  return s;
}

const NnPlanStep *
nn_plan_resolve (NnCall *call, NnModule *self, const char *path,
                 GError **error)
{
  if (call->plan && !call->trace) {
    GPtrArray *steps = call->plan->steps;
    call->step_fresh = FALSE;
    if (call->cursor < steps->len
        && step_holds (steps->pdata[call->cursor], self, path))
      return steps->pdata[call->cursor++];
  }
  NnPlanStep *s = resolve_fresh (self, path, error);
  return s ? record_fresh (call, s) : NULL;
}

/* A functional op's step: the caller alone in the chain, the op (owned
 * by the caller, which is alive and unedited while its stamp holds)
 * compared by address. */
static NnPlanStep *
resolve_functional_fresh (NnModule *self, NnModule *fn)
{
  NnPlanStep *s = g_new0 (NnPlanStep, 1);
  s->ref_count = 1;
  s->caller = self;
  s->fn = fn;
  s->path = g_strconcat ("#", fn->type->name, NULL);
  /* Named in fusion groups as the op, in lower case: add, relu. */
  s->canon = g_ascii_strdown (fn->type->name, -1);
  s->depth_add = 0;
  s->n_chain = 1;
  s->chain = g_new (NnModule *, 1);
  s->stamps = g_new (guint64, 1);
  s->chain[0] = self;
  s->stamps[0] = stamp_of (self);
  return s;
}

const NnPlanStep *
nn_plan_resolve_functional (NnCall *call, NnModule *self, NnModule *fn,
                            GError **error)
{
  if (call->plan && !call->trace) {
    GPtrArray *steps = call->plan->steps;
    call->step_fresh = FALSE;
    if (call->cursor < steps->len) {
      const NnPlanStep *s = steps->pdata[call->cursor];
      if (s->fn == fn && s->caller == self && stamp_of (self) == s->stamps[0])
        return steps->pdata[call->cursor++];
    }
  }
  return record_fresh (call, resolve_functional_fresh (self, fn));
}

/* Whether shape inference of @m's subtree computes nothing: every type has
 * infer(), only routes or has no forward at all (a ModuleList, never
 * called itself; runtime.c runs a forward on zeros otherwise). */
static gboolean
infers_without_computing (NnModule *m)
{
  const NnLayerType *t = m->type;
  if (!t->infer && !(t->flags & NN_LAYER_ROUTES_ONLY) && t->forward)
    return FALSE;
  for (guint i = 0; m->children && i < m->children->len; i++)
    if (!infers_without_computing (g_array_index (m->children, NnChild, i).module))
      return FALSE;
  return TRUE;
}

gboolean
nn_plan_wants_ahead (NnModule *root)
{
  if (!plan_enabled () || !nn_fuse_enabled ())
    return FALSE;
  pthread_mutex_lock (&plan_lock);
  gboolean none = root->plan == NULL;
  pthread_mutex_unlock (&plan_lock);
  return none && infers_without_computing (root);
}

gboolean
nn_plan_is_built (NnModule *root)
{
  pthread_mutex_lock (&plan_lock);
  gboolean built = root->plan != NULL;
  pthread_mutex_unlock (&plan_lock);
  return built;
}

guint64
nn_module_get_plan_info (NnModule *root, guint *n_steps)
{
  g_return_val_if_fail (root != NULL, 0);
  pthread_mutex_lock (&plan_lock);
  if (n_steps)
    *n_steps = root->plan ? root->plan->steps->len : 0;
  guint64 builds = root->plan_builds;
  pthread_mutex_unlock (&plan_lock);
  return builds;
}

NnPlan *
nn_plan_ref_of (NnModule *root)
{
  pthread_mutex_lock (&plan_lock);
  NnPlan *p = root->plan ? plan_ref (root->plan) : NULL;
  pthread_mutex_unlock (&plan_lock);
  return p;
}

void
nn_plan_release (NnPlan *plan)
{
  plan_unref (plan);
}

void
nn_module_drop_plan (NnModule *root)
{
  g_return_if_fail (root != NULL);
  pthread_mutex_lock (&plan_lock);
  NnPlan *old = root->plan;
  root->plan = NULL;
  pthread_mutex_unlock (&plan_lock);
  plan_unref (old);
}
