/* nnkit core: fusion in the execution plan.  A producer step (a type
 * with NnFuseInfo.forward_fused) may absorb the steps right after it
 * when the recorded run showed each of them reading only the step
 * before's float32 result, which nothing else read, inside one
 * fixed-dataflow composite (NN_LAYER_FIXED_DATAFLOW).  Each forward then
 * re-checks what the plan cannot see: fusion on, no tape, no call
 * observer, eval mode, no hook on any module of the group, the absorbed
 * modules' present describe().  A folded per-channel affine (BatchNorm)
 * is cached per plan step and rebuilt when a tensor of the pair
 * changes.  Knows no type: everything comes from the declared
 * capabilities. */
#include "nn-private.h"

#include <string.h>

/* Groups are a producer, at most one affine, at most one residual add,
 * at most one activation, in that order. */
#define FUSE_MAX_ABSORB 3

static int fuse_state = -1;   /* -1: NN_FUSE not read yet */

gboolean
nn_fuse_enabled (void)
{
  int s = __atomic_load_n (&fuse_state, __ATOMIC_RELAXED);
  if (s < 0) {
    const char *env = g_getenv ("NN_FUSE");
    s = !(env && (g_ascii_strcasecmp (env, "off") == 0
                  || strcmp (env, "0") == 0));
    __atomic_store_n (&fuse_state, s, __ATOMIC_RELAXED);
  }
  return s;
}

void
nn_engine_set_fusion (gboolean enabled)
{
  __atomic_store_n (&fuse_state, enabled ? 1 : 0, __ATOMIC_RELAXED);
}

gboolean
nn_engine_get_fusion (void)
{
  return nn_fuse_enabled ();
}

/* --- the folded-weight cache ------------------------------------------- */

/* A tensor as seen when the fold was made: held by a reference, so its
 * address cannot come back as another tensor's. */
typedef struct {
  NnTensor *t;         /* (nullable) */
  gpointer data;
  guint64 version;
} Seen;

/* One fold of a (producer, affine) pair: the affine's scale and shift,
 * and the producer's weights with it folded in, made on first request
 * (a provider reordering the weights folds them itself, so the plain
 * folded copy is never made for it).  Shared by runs in flight. */
typedef struct {
  gint ref_count;
  guint64 id;
  gint64 c;
  float *scale, *shift;
  NnTensor *w_src, *b_src;       /* the producer's, at fold time */
  GMutex lock;                   /* guards the lazy copies */
  NnTensor *weight, *bias;       /* (nullable) until asked for */
} Fold;

struct _NnFoldCache {
  NnModule *absorbed;  /* compared by address only */
  guint64 stamp;
  GArray *seen;        /* Seen */
  Fold *fold;
};

static guint64 fold_counter;

static void
fold_unref (Fold *f)
{
  if (!f || !g_atomic_int_dec_and_test (&f->ref_count))
    return;
  g_free (f->scale);
  g_free (f->shift);
  if (f->w_src) nn_tensor_unref (f->w_src);
  if (f->b_src) nn_tensor_unref (f->b_src);
  if (f->weight) nn_tensor_unref (f->weight);
  if (f->bias) nn_tensor_unref (f->bias);
  g_mutex_clear (&f->lock);
  g_free (f);
}

static void
seen_clear (gpointer p)
{
  Seen *s = p;
  if (s->t)
    nn_tensor_unref (s->t);
}

static void
seen_add (GArray *a, NnTensor *t)
{
  Seen s = { t ? nn_tensor_ref (t) : NULL, t ? t->data : NULL,
             t ? nn_tensor_get_version (t) : 0 };
  g_array_append_val (a, s);
}

/* The producer's weight and bias, then every own tensor of the absorbed
 * module, in a fixed order. */
static GArray *
seen_now (NnModule *producer, const NnFuseInfo *fi, NnModule *absorbed)
{
  GArray *a = g_array_new (FALSE, TRUE, sizeof (Seen));
  g_array_set_clear_func (a, seen_clear);
  seen_add (a, nn_module_get_parameter (producer, fi->weight_name));
  seen_add (a, fi->bias_name ? nn_module_get_parameter (producer, fi->bias_name)
                             : NULL);
  for (guint i = 0; i < absorbed->params->len; i++)
    seen_add (a, g_array_index (absorbed->params, NnSlot, i).tensor);
  for (guint i = 0; i < absorbed->buffers->len; i++)
    seen_add (a, g_array_index (absorbed->buffers, NnSlot, i).tensor);
  return a;
}

static gboolean
seen_equal (GArray *a, GArray *b)
{
  if (a->len != b->len)
    return FALSE;
  for (guint i = 0; i < a->len; i++) {
    Seen *x = &g_array_index (a, Seen, i), *y = &g_array_index (b, Seen, i);
    if (x->t != y->t || x->data != y->data || x->version != y->version)
      return FALSE;
  }
  return TRUE;
}

static void
fold_cache_free (NnFoldCache *c)
{
  if (!c)
    return;
  if (c->seen)
    g_array_unref (c->seen);
  fold_unref (c->fold);
  g_free (c);
}

/* The affine of @absorbed over the producer's @c output channels, or
 * NULL when the tensors do not have the declared form (the group is then
 * not fused, and the unfused calls name the problem). */
static Fold *
fold_new (NnModule *producer, const NnFuseInfo *fi, NnModule *absorbed,
          gint64 c)
{
  NnTensor *wp = nn_module_get_parameter (producer, fi->weight_name);
  NnTensor *bp = fi->bias_name ? nn_module_get_parameter (producer,
                                                          fi->bias_name)
                               : NULL;
  if (c <= 0 || !wp || wp->shape.ndim < 1 || wp->shape.dims[0] != c
      || (bp && nn_tensor_numel (bp) != c))
    return NULL;
  Fold *f = g_new0 (Fold, 1);
  f->ref_count = 1;
  f->c = c;
  f->scale = g_new (float, c);
  f->shift = g_new (float, c);
  g_mutex_init (&f->lock);
  f->w_src = nn_tensor_ref (wp);
  f->b_src = bp ? nn_tensor_ref (bp) : NULL;
  if (!absorbed->type->fuse->fill_affine (absorbed, f->scale, f->shift)) {
    fold_unref (f);
    return NULL;
  }
  f->id = __atomic_add_fetch (&fold_counter, 1, __ATOMIC_RELAXED);
  return f;
}

/* The fold of step @idx (transfer full), made once and kept while every
 * tensor of the pair is unchanged. */
static Fold *
fold_get (NnPlan *plan, guint idx, NnModule *producer, const NnFuseInfo *fi,
          NnModule *absorbed, gint64 c)
{
  GArray *now = seen_now (producer, fi, absorbed);
  guint64 stamp = __atomic_load_n (&absorbed->stamp, __ATOMIC_ACQUIRE);
  Fold *f = NULL;

  g_mutex_lock (&plan->fuse_lock);
  NnFoldCache *fc = plan->folds[idx];
  if (!fc || fc->absorbed != absorbed || fc->stamp != stamp
      || !seen_equal (fc->seen, now)) {
    fold_cache_free (fc);
    plan->folds[idx] = fc = NULL;
    Fold *made = fold_new (producer, fi, absorbed, c);
    if (made) {
      fc = g_new0 (NnFoldCache, 1);
      fc->absorbed = absorbed;
      fc->stamp = stamp;
      fc->seen = g_steal_pointer (&now);
      fc->fold = made;
      plan->folds[idx] = fc;
    }
  }
  if (fc) {
    f = fc->fold;
    g_atomic_int_inc (&f->ref_count);
  }
  g_mutex_unlock (&plan->fuse_lock);
  if (now)
    g_array_unref (now);
  return f;
}

gboolean
nn_epilogue_get_folded (const NnEpilogue *ep, NnTensor **weight,
                        NnTensor **bias, GError **error)
{
  g_return_val_if_fail (ep != NULL && weight != NULL && bias != NULL, FALSE);
  Fold *f = ep->priv;
  if (!f || ep->n_channels <= 0) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "the epilogue folds no per-channel affine");
    return FALSE;
  }
  g_mutex_lock (&f->lock);
  if (!f->weight) {
    /* W'[c] = W[c] * scale[c], b'[c] = b[c] * scale[c] + shift[c]. */
    g_autoptr (NnTensor) w = nn_tensor_to_dtype (f->w_src, NN_DTYPE_F32);
    g_autoptr (NnTensor) b = f->b_src ? nn_tensor_to_dtype (f->b_src,
                                                            NN_DTYPE_F32)
                                      : NULL;
    NnShape bs = { 1, { f->c } };
    NnTensor *fw = w && nn_tensor_f32 (w) && (!f->b_src || (b && nn_tensor_f32 (b)))
                     ? nn_tensor_new (NN_DTYPE_F32, &w->shape) : NULL;
    NnTensor *fb = fw ? nn_tensor_new (NN_DTYPE_F32, &bs) : NULL;
    if (!fw || !fb) {
      if (fw)
        nn_tensor_unref (fw);
      g_mutex_unlock (&f->lock);
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                   "cannot make the folded float32 weights");
      return FALSE;
    }
    gint64 per = nn_tensor_numel (w) / f->c;
    const float *src = nn_tensor_f32 (w);
    float *dw = nn_tensor_f32 (fw), *db = nn_tensor_f32 (fb);
    for (gint64 o = 0; o < f->c; o++) {
      for (gint64 k = 0; k < per; k++)
        dw[o * per + k] = src[o * per + k] * f->scale[o];
      double bias0 = b ? nn_tensor_f32 (b)[o] : 0.0;
      db[o] = (float) (bias0 * f->scale[o] + f->shift[o]);
    }
    f->weight = fw;
    f->bias = fb;
  }
  *weight = f->weight;
  *bias = f->bias;
  g_mutex_unlock (&f->lock);
  return TRUE;
}

/* --- the plan's annotation --------------------------------------------- */

static NnModule *
step_target (const NnPlanStep *s)
{
  return s->fn ? s->fn : s->chain[s->n_chain - 1];
}

/* Marks the steps whose result a later add reads as its residual, when
 * every step from the source to the add runs in a fixed-dataflow
 * composite: then each run routes the same tensor from one to the other,
 * and a run may hold it from the source's end to give it to the group
 * absorbing the add. */
static void
annotate_residuals (NnPlan *plan)
{
  guint n = plan->steps->len;
  plan->res_last = g_new0 (guint, MAX (n, 1));
  for (guint i = 0; i < n; i++) {
    const NnPlanStep *a = plan->steps->pdata[i];
    const NnFuseInfo *ai = step_target (a)->type->fuse;
    if (!a->chained || a->res_src == 0 || a->res_src > i || !ai
        || !ai->describe)
      continue;
    gboolean fixed = TRUE;
    for (guint j = a->res_src - 1; j <= i && fixed; j++) {
      const NnPlanStep *s = plan->steps->pdata[j];
      fixed = (s->caller->type->flags & NN_LAYER_FIXED_DATAFLOW) != 0;
    }
    if (!fixed)
      continue;
    if (plan->res_last[a->res_src - 1] == 0)
      plan->n_res++;
    plan->res_last[a->res_src - 1] = i + 1;
  }
}

void
nn_fuse_annotate (NnPlan *plan)
{
  guint n = plan->steps->len;
  g_mutex_init (&plan->fuse_lock);
  plan->fuse_len = g_new0 (guint8, MAX (n, 1));
  plan->folds = g_new0 (NnFoldCache *, MAX (n, 1));
  plan->fused_names = g_new0 (char *, MAX (n, 1));
  plan->fused_n = g_new0 (guint8, MAX (n, 1));
  annotate_residuals (plan);
  for (guint i = 0; i < n; i++) {
    const NnPlanStep *h = plan->steps->pdata[i];
    const NnFuseInfo *fi = step_target (h)->type->fuse;
    if (!fi || !fi->forward_fused || !(h->caller->type->flags
                                       & NN_LAYER_FIXED_DATAFLOW))
      continue;
    guint k = 0;
    while (k < FUSE_MAX_ABSORB && i + k + 1 < n) {
      const NnPlanStep *s = plan->steps->pdata[i + k + 1];
      const NnFuseInfo *ai = step_target (s)->type->fuse;
      if (!s->chained || s->caller != h->caller || !ai || !ai->describe)
        break;
      k++;
    }
    plan->fuse_len[i] = (guint8) k;
  }
}

void
nn_fuse_plan_free (NnPlan *plan)
{
  if (!plan->fuse_len)
    return;
  for (guint i = 0; i < plan->steps->len; i++) {
    fold_cache_free (plan->folds[i]);
    g_free (plan->fused_names[i]);
  }
  g_free (plan->folds);
  g_free (plan->fused_names);
  g_free (plan->fused_n);
  g_free (plan->fuse_len);
  g_free (plan->res_last);
  g_mutex_clear (&plan->fuse_lock);
}

/* --- a run -------------------------------------------------------------- */

/* Whether @kwargs holds nothing but PyTorch's `inplace` flag, which
 * never changes a value (F.relu (x, inplace=False) as exported). */
static gboolean
no_kwargs (const NnValue *kwargs)
{
  guint n = kwargs ? nn_value_n_items (kwargs) : 0;
  return n == 0 || (n == 1 && strcmp (nn_value_dict_key (kwargs, 0),
                                      "inplace") == 0);
}

/* Whether recording may read @t's dataflow: a real tensor, or any in the
 * shape-only run that plans ahead (a meta tensor elsewhere is a nested
 * shape inference's, not this run's dataflow). */
static gboolean
recordable (const NnCall *call, const NnTensor *t)
{
  return !nn_tensor_is_meta (t) || call->plan_ahead;
}

/* The one positional float32 tensor of a call with no keywords, or NULL. */
static NnTensor *
sole_tensor (const NnCall *call, const NnValue *args, const NnValue *kwargs)
{
  if (!args || nn_value_n_items (args) != 1 || !no_kwargs (kwargs))
    return NULL;
  NnTensor *x = nn_value_get_tensor (nn_value_item (args, 0));
  return x && x->dtype == NN_DTYPE_F32 && recordable (call, x) ? x : NULL;
}

/* A producer's first positional tensor when every positional tensor is
 * float32 (an add's result is then float32 too), or NULL. */
static NnTensor *
producer_input (const NnValue *args)
{
  NnTensor *first = NULL;
  for (guint i = 0, n = args ? nn_value_n_items (args) : 0; i < n; i++) {
    NnTensor *t = nn_value_get_tensor (nn_value_item (args, i));
    if (!t)
      continue;
    if (t->dtype != NN_DTYPE_F32 || nn_tensor_is_meta (t))
      return NULL;
    if (!first)
      first = t;
  }
  return first;
}

static gboolean
stamps_hold (const NnPlanStep *s)
{
  for (guint i = 0; i < s->n_chain; i++)
    if (__atomic_load_n (&s->chain[i]->stamp, __ATOMIC_ACQUIRE)
        != s->stamps[i])
      return FALSE;
  return TRUE;
}

/* Where a later add may find step @idx's result @y as its residual: by
 * address when recording, held while following the plan with fusion
 * possible (also when the step was absorbed). */
static void
note_result (NnCall *call, guint idx, NnTensor *y)
{
  if (call->step_out) {
    if (call->step_out->len <= idx)
      g_array_set_size (call->step_out, idx + 1);
    g_array_index (call->step_out, gpointer, idx) = y;
  }
  if (y && call->held && idx < call->n_held && call->plan->res_last[idx]
      && !call->trace && !call->tape && !call->events && !call->held[idx]
      && nn_fuse_enabled ())
    call->held[idx] = nn_tensor_ref (y);
}

/* Drops the run's hold on the residual step @st reads, at its last
 * reader. */
static void
release_residual (NnCall *call, const NnPlanStep *st, guint idx)
{
  guint src = st->res_src;
  if (!call->held || src == 0 || src > call->n_held || !call->plan
      || call->plan->res_last[src - 1] != idx + 1)
    return;
  g_clear_pointer (&call->held[src - 1], nn_tensor_unref);
}

NnValue *
nn_fuse_absorbed (NnCall *call, const NnPlanStep *st, const NnValue *args,
                  const NnValue *kwargs, GError **error)
{
  guint idx = call->cursor - 1;
  if (call->absorb_left == 0) {
    release_residual (call, st, idx);
    return NULL;
  }
  /* The residual add: the chained operand and the residual the producer
   * added, in their recorded positions, and no keyword (alpha). */
  gboolean is_add = call->absorb_add == idx + 1;
  guint n_items = args ? nn_value_n_items (args) : 0;
  NnValue *item = NULL;
  if (is_add) {
    if (n_items == 2 && (!kwargs || nn_value_n_items (kwargs) == 0)
        && nn_value_get_tensor (nn_value_item (args, st->res_pos))
             == call->absorb_residual)
      item = nn_value_item (args, 1 - st->res_pos);
  } else if (n_items == 1) {
    item = nn_value_item (args, 0);
  }
  if (!call->plan || call->trace || idx != call->absorb_next || !item
      || nn_value_get_tensor (item) != call->absorb_tensor
      || call->plan->steps->pdata[idx] != st) {
    call->absorb_left = 0;
    release_residual (call, st, idx);
    if (call->absorb_add) {
      /* The producer already added a residual this call does not read:
       * its result cannot be given as anything's.  Cannot happen while
       * the fixed-dataflow composites route as recorded. */
      call->absorb_add = 0;
      call->absorb_residual = NULL;
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                   "fused residual add: step %u (%s) was not called with "
                   "the operands recorded in the plan; run with NN_FUSE=off "
                   "and report this", idx, st->canon);
      return NULL;
    }
    /* Not the call the producer absorbed (cannot happen in a
     * fixed-dataflow composite whose plan holds): run it. */
    return NULL;
  }
  if (is_add) {
    call->absorb_add = 0;
    call->absorb_residual = NULL;
  }
  release_residual (call, st, idx);
  note_result (call, idx, call->absorb_tensor);
  call->absorb_left--;
  call->absorb_next++;
  return nn_value_ref (item);
}

/* How many of the steps after producer step @idx the present states let
 * it absorb; fills @ep's activation and *@affine. */
static guint
group_size (NnCall *call, const NnPlanStep *st, guint idx, NnModule *target,
            NnTensor *x, NnEpilogue *ep, NnModule **affine, gint64 *channels,
            guint *add_step)
{
  NnPlan *plan = call->plan;
  const NnFuseInfo *fi = target->type->fuse;
  if (!plan || call->trace || call->meta || call->tape || call->events
      || !plan->fuse_len || plan->fuse_len[idx] == 0 || !x || !fi
      || !fi->forward_fused || x->shape.ndim != st->in_ndim
      || (st->fn ? st->caller : target)->training || nn_hooks_any (target)
      || !nn_fuse_enabled ())
    return 0;

  /* Only steps whose stamps hold are read (their modules are alive and
   * unedited: stamps_hold reads the chain from the caller, which runs).
   * A hook anywhere in the group un-fuses all of it, so that it sees
   * exactly the unfused values, not the folded ones' rounding. */
  guint limit = 0;
  while (limit < plan->fuse_len[idx]
         && stamps_hold (plan->steps->pdata[idx + limit + 1])) {
    if (nn_hooks_any (step_target (plan->steps->pdata[idx + limit + 1])))
      return 0;
    limit++;
  }
  guint n = 0;
  for (guint k = 1; k <= limit; k++) {
    const NnPlanStep *s = plan->steps->pdata[idx + k];
    NnModule *m = step_target (s);
    const NnFuseInfo *ai = m->type->fuse;
    NnFuseOp op = { 0 };
    /* A functional op is not a module: its caller's mode. */
    if (!ai || !ai->describe || (s->fn ? s->caller : m)->training
        || !ai->describe (m, &op))
      break;
    if (op.role == NN_FUSE_AS_ADD) {
      /* The residual: held since its step ended, of the recorded shape,
       * with the producer's input of the recorded shape, so the result
       * and the residual have the same shape as when recorded. */
      NnTensor *r = s->res_src && call->held && s->res_src <= call->n_held
                      && s->res_src - 1 < idx ? call->held[s->res_src - 1]
                                              : NULL;
      if (!(fi->accepts & NN_FUSE_ACCEPT_ADD) || ep->residual
          || ep->act != NN_ACT_NONE || !r || r->dtype != NN_DTYPE_F32
          || !nn_shape_equal (&r->shape, &s->res_shape)
          || !nn_shape_equal (&x->shape, &st->in_shape))
        break;
      ep->residual = r;
      *add_step = idx + k;
    } else if (s->res_src) {
      /* Recorded as a two-operand call: only an add absorbs it. */
      break;
    } else if (op.role == NN_FUSE_AS_AFFINE && k == 1 && ai->fill_affine
        && (fi->accepts & NN_FUSE_ACCEPT_AFFINE) && fi->weight_name
        && (gint) st->out_ndim + fi->affine_dim_from_end
             == (gint) op.channel_dim) {
      *affine = m;
      *channels = op.n_channels;
    } else if (op.role == NN_FUSE_AS_ACTIVATION && ep->act == NN_ACT_NONE
               && op.act > NN_ACT_NONE && op.act < NN_ACT_N_KINDS
               && (fi->act_kinds & NN_ACT_BIT (op.act))) {
      ep->act = op.act;
      ep->alpha = op.alpha;
      ep->beta = op.beta;
    } else {
      break;
    }
    n = k;
  }
  return n;
}

/* Notes what step @idx fused in this run, as "a.conv+a.bn+a.relu". */
static void
note_group (NnCall *call, guint idx, guint n)
{
  NnPlan *plan = call->plan;
  g_mutex_lock (&plan->fuse_lock);
  if (n == 0) {
    g_clear_pointer (&plan->fused_names[idx], g_free);
  } else if (!plan->fused_names[idx]
             || plan->fused_n[idx] != n) {
    g_free (plan->fused_names[idx]);
    plan->fused_n[idx] = (guint8) n;
    GString *s = g_string_new (NULL);
    for (guint k = 0; k <= n; k++) {
      const NnPlanStep *p = plan->steps->pdata[idx + k];
      if (k)
        g_string_append_c (s, '+');
      if (call->path->len)
        g_string_append_printf (s, "%s.", call->path->str);
      g_string_append (s, p->canon);
    }
    plan->fused_names[idx] = g_string_free (s, FALSE);
  }
  g_mutex_unlock (&plan->fuse_lock);
}

/* Whether positional item @k of @args is the previous step's float32
 * result, dying at this call: only the given tuple holds it (as for
 * inplace_arg), and nothing ran in between. */
static gboolean
dies_here (NnCall *call, guint idx, const NnValue *args, guint k)
{
  NnValue *item = nn_value_item (args, k);
  NnTensor *x = nn_value_get_tensor (item);
  return x && x->dtype == NN_DTYPE_F32 && recordable (call, x)
         && call->args_given && x == call->last_result
         && call->last_result_next == idx
         && call->last_result_invokes == call->n_invokes
         && nn_value_get_ref_count (args) == 1
         && nn_value_get_ref_count (item) == 1
         && g_atomic_int_get (&x->ref_count) == 1;
}

/* Recording a two-operand call (an add): chained through the operand
 * that dies here, the other one (same shape, float32) the residual,
 * the result of the latest earlier step that returned that tensor. */
static void
record_residual (NnCall *call, NnPlanStep *s, guint idx, const NnValue *args)
{
  for (guint c = 0; c < 2; c++) {
    if (!dies_here (call, idx, args, c))
      continue;
    NnTensor *x = nn_value_get_tensor (nn_value_item (args, c));
    NnTensor *r = nn_value_get_tensor (nn_value_item (args, 1 - c));
    if (!r || r == x || r->dtype != NN_DTYPE_F32 || !recordable (call, r)
        || !nn_shape_equal (&r->shape, &x->shape))
      return;
    for (guint j = MIN (idx, call->step_out->len); j-- > 0;)
      if (g_array_index (call->step_out, gpointer, j) == (gpointer) r) {
        s->chained = TRUE;
        s->res_src = j + 1;
        s->res_pos = 1 - c;
        s->res_shape = r->shape;
        return;
      }
    return;
  }
}

void
nn_fuse_begin (NnCall *call, const NnPlanStep *st, guint idx, gboolean fresh,
               NnModule *target, const NnValue *args, const NnValue *kwargs,
               NnEpilogue *ep)
{
  memset (ep, 0, sizeof *ep);
  call->absorb_left = 0;
  call->absorb_add = 0;
  call->absorb_residual = NULL;

  if (fresh) {
    /* Recording: what this call read. */
    NnPlanStep *s = (NnPlanStep *) st;
    NnTensor *a0 = args && nn_value_n_items (args) > 0
                     ? nn_value_get_tensor (nn_value_item (args, 0)) : NULL;
    s->in_ndim = a0 ? a0->shape.ndim : 0;
    if (a0)
      s->in_shape = a0->shape;
    s->res_src = 0;
    s->chained = sole_tensor (call, args, kwargs)
                 && dies_here (call, idx, args, 0);
    if (args && nn_value_n_items (args) == 2
        && (!kwargs || nn_value_n_items (kwargs) == 0))
      record_residual (call, s, idx, args);
    return;
  }

  NnModule *affine = NULL;
  gint64 channels = 0;
  guint add_step = 0;
  NnTensor *x = producer_input (args);
  guint n = group_size (call, st, idx, target, x, ep, &affine, &channels,
                        &add_step);
  if (n > 0 && affine) {
    Fold *f = fold_get (call->plan, idx, target, target->type->fuse, affine,
                        channels);
    if (f) {
      ep->priv = f;
      ep->n_channels = f->c;
      ep->scale = f->scale;
      ep->shift = f->shift;
      ep->fold_id = f->id;
    } else {
      /* Malformed tensors: the unfused calls name the problem. */
      memset (ep, 0, sizeof *ep);
      n = 0;
    }
  }
  if (call->plan && call->plan->fuse_len && call->plan->fuse_len[idx])
    note_group (call, idx, n);
  if (n == 0)
    return;
  if (add_step > idx + n)
    ep->residual = NULL;    /* the group stopped before the add */
  call->epilogue = ep;
  call->epilogue_for = target;
  call->absorb_left = n;
  call->absorb_next = idx + 1;
  if (ep->residual) {
    call->absorb_add = add_step + 1;
    call->absorb_residual = ep->residual;
  }
}

void
nn_fuse_end (NnCall *call, const NnPlanStep *st, guint idx, gboolean fresh,
             const NnValue *out, NnEpilogue *ep)
{
  NnTensor *y = out ? nn_value_get_tensor (out) : NULL;

  /* Still set: the producer never ran (an error), nothing is absorbed. */
  if (call->epilogue == ep) {
    call->epilogue = NULL;
    call->absorb_left = 0;
    call->absorb_add = 0;
    call->absorb_residual = NULL;
  }
  fold_unref (ep->priv);
  ep->priv = NULL;
  if (fresh)
    ((NnPlanStep *) st)->out_ndim = y ? y->shape.ndim : 0;
  note_result (call, idx, y);
  release_residual (call, st, idx);
  call->last_result = y;
  call->last_result_next = idx + 1;
  call->last_result_invokes = call->n_invokes;
  if (call->absorb_left)
    call->absorb_tensor = y;
  if (!y) {
    call->absorb_left = 0;
    call->absorb_add = 0;
    call->absorb_residual = NULL;
  }
}

char **
nn_module_get_plan_fusions (NnModule *root)
{
  g_return_val_if_fail (root != NULL, NULL);
  GPtrArray *a = g_ptr_array_new ();
  NnPlan *plan = nn_plan_ref_of (root);
  if (plan && plan->fused_names) {
    g_mutex_lock (&plan->fuse_lock);
    for (guint i = 0; i < plan->steps->len; i++)
      if (plan->fused_names[i])
        g_ptr_array_add (a, g_strdup (plan->fused_names[i]));
    g_mutex_unlock (&plan->fuse_lock);
  }
  nn_plan_release (plan);
  g_ptr_array_add (a, NULL);
  return (char **) g_ptr_array_free (a, FALSE);
}
