/* dnnl plugin: torch.cat along the channels of inputs at least one of
 * which is a oneDNN laid-out tensor, on oneDNN's concat, the others
 * reordered into that layout and the result left in it.  DenseNet joins
 * every layer's result to the block's input, Inception and SqueezeNet
 * join their branches: with a plain cat each joined map was reordered to
 * plain there and back into a blocked layout by the convolution reading
 * the join (DenseNet-121: 122 reorders per forward).  Anything else
 * (only plain operands, another dim or rank, other dtypes, layouts
 * oneDNN only joins with its ref: code) runs the ops plugin's cat,
 * compiled in, on plain tensors. */
#include "dnnl-private.h"

#include <string.h>

extern const NnLayerType *const nn_ops_join_types[];

static const NnLayerType *cat_reference;

/* The primitive of one module for the inputs' layouts it was built for
 * (rebuilt when they change, as a convolution is for its input). */
typedef struct {
  guint n;
  dnnl_memory_desc_t *src;      /* n: the inputs' layouts */
  /* n: what the concatenation reads, the last input's layout for all;
   * to_common[i] (nullable) reorders input i into it. */
  dnnl_memory_desc_t *common;
  dnnl_primitive_t *to_common;
  dnnl_memory_desc_t dst, scratch;
  dnnl_primitive_t prim;        /* NULL: oneDNN declined these layouts */
  gint64 work;
} CatState;

static void
cat_state_free (gpointer p)
{
  CatState *s = p;
  if (s->prim)
    dnnl_primitive_destroy (s->prim);
  for (guint i = 0; s->to_common && i < s->n; i++)
    if (s->to_common[i])
      dnnl_primitive_destroy (s->to_common[i]);
  g_free (s->to_common);
  g_free (s->common);
  g_free (s->src);
  g_free (s);
}

/* The layouts a oneDNN convolution or pooling leaves activations in. */
static const dnnl_format_tag_t layout_tags[] = {
  dnnl_acdb, dnnl_aBcd16b, dnnl_aBcd8b, dnnl_aBcd4b, dnnl_abcd,
};

/* @md's layout among layout_tags, or dnnl_format_tag_undef. */
static dnnl_format_tag_t
layout_tag (const dnnl_memory_desc_t *md)
{
  for (gsize i = 0; i < G_N_ELEMENTS (layout_tags); i++)
    {
      dnnl_memory_desc_t t;
      if (dnnl_memory_desc_init_by_tag (&t, 4, md->dims, dnnl_f32, layout_tags[i]) == dnnl_success
          && dnnl_memory_desc_equal (&t, md))
        return layout_tags[i];
    }
  return dnnl_format_tag_undef;
}

/* Fills s->common and s->to_common: inputs in another layout than the
 * last laid-out one (DenseNet's pooled block input beside its layers'
 * results, a plain input) are reordered into it, so that one
 * concatenation joins like with like.
 * FALSE leaving @error unset when a layout is not one of ours. */
static gboolean
common_layouts (CatState *s, dnnl_engine_t eng, GError **error)
{
  dnnl_format_tag_t tag = dnnl_abcd;
  for (guint i = s->n; i-- > 0 && tag == dnnl_abcd;)
    tag = layout_tag (&s->src[i]);
  s->common = g_new (dnnl_memory_desc_t, s->n);
  s->to_common = g_new0 (dnnl_primitive_t, s->n);
  if (tag == dnnl_format_tag_undef || tag == dnnl_abcd)
    return FALSE;
  for (guint i = 0; i < s->n; i++)
    {
      s->common[i] = s->src[i];
      if (layout_tag (&s->src[i]) == tag)
        continue;
      dnnl_primitive_desc_t pd = NULL;
      dnnl_primitive_attr_t attr = nn_dnnl_attr_new_for (s->work, NN_WORK_GRAIN, error);
      if (!attr)
        return FALSE;
      /* No such reorder (or layout) in oneDNN: declined, not an error. */
      gboolean made = dnnl_memory_desc_init_by_tag (&s->common[i], 4, s->src[i].dims,
                                                    dnnl_f32, tag) == dnnl_success
                      && dnnl_reorder_primitive_desc_create (&pd, &s->src[i], eng,
                                                             &s->common[i], eng,
                                                             attr) == dnnl_success;
      dnnl_primitive_attr_destroy (attr);
      if (!made)
        return FALSE;
      gboolean ok = nn_dnnl_ok (dnnl_primitive_create (&s->to_common[i], pd),
                                "reordering a joined input", error);
      dnnl_primitive_desc_destroy (pd);
      if (!ok)
        return FALSE;
    }
  return TRUE;
}

static gboolean
cat_state_matches (const CatState *s, guint n, const dnnl_memory_desc_t *const *mds)
{
  if (s->n != n)
    return FALSE;
  for (guint i = 0; i < n; i++)
    if (!dnnl_memory_desc_equal (&s->src[i], mds[i]))
      return FALSE;
  return TRUE;
}

/* Returns: (transfer full) the state for @mds, with prim NULL when oneDNN
 * has nothing but its reference code for them; NULL with @error. */
static CatState *
cat_state_new (guint n, const dnnl_memory_desc_t *const *mds, gint64 work,
               GError **error)
{
  CatState *s = g_new0 (CatState, 1);
  dnnl_engine_t eng = nn_dnnl_engine (error);
  dnnl_primitive_attr_t attr = eng ? nn_dnnl_attr_new_for (work, NN_WORK_GRAIN, error) : NULL;
  dnnl_primitive_desc_t pd = NULL;
  const char *impl = NULL;

  s->n = n;
  s->work = work;
  s->src = g_new (dnnl_memory_desc_t, n);
  for (guint i = 0; i < n; i++)
    s->src[i] = *mds[i];
  if (!attr)
    {
      cat_state_free (s);
      return NULL;
    }
  if (!common_layouts (s, eng, error))
    {
      dnnl_primitive_attr_destroy (attr);
      if (error && *error)
        {
          cat_state_free (s);
          return NULL;
        }
      return s;   /* declined */
    }
  /* The result in the first input's layout family: format any lets
   * oneDNN pick it (the inputs' own when they agree). */
  dnnl_dims_t dd;
  memcpy (dd, mds[0]->dims, sizeof dd);
  dd[1] = 0;
  for (guint i = 0; i < n; i++)
    dd[1] += mds[i]->dims[1];
  dnnl_memory_desc_t any;
  dnnl_status_t st = dnnl_memory_desc_init_by_tag (&any, 4, dd, dnnl_f32, dnnl_format_tag_any);
  if (st == dnnl_success)
    st = dnnl_concat_primitive_desc_create (&pd, &any, (int) n, 1, s->common, attr, eng);
  dnnl_primitive_attr_destroy (attr);
  if (st == dnnl_unimplemented)
    return s;
  if (!nn_dnnl_ok (st, "choosing a concatenation", error))
    {
      cat_state_free (s);
      return NULL;
    }
  /* oneDNN's ref: concat reorders every input through a generic loop:
   * the reference's plain copies are faster. */
  if (dnnl_primitive_desc_query (pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success
      && impl && g_str_has_prefix (impl, "ref"))
    {
      dnnl_primitive_desc_destroy (pd);
      return s;
    }
  s->dst = *dnnl_primitive_desc_query_md (pd, dnnl_query_dst_md, 0);
  s->scratch = *dnnl_primitive_desc_query_md (pd, dnnl_query_scratchpad_md, 0);
  st = dnnl_primitive_create (&s->prim, pd);
  dnnl_primitive_desc_destroy (pd);
  if (!nn_dnnl_ok (st, "creating a concatenation", error))
    {
      cat_state_free (s);
      return NULL;
    }
  return s;
}

/* Runs @s on the inputs' laid buffers @data into a new laid-out tensor of
 * @shape.  Returns (transfer full) or NULL with @error. */
static NnTensor *
cat_run (CatState *s, void *const *data, const NnShape *shape, GError **error)
{
  NnTensor *z = nn_dnnl_tensor_new_laid (shape, &s->dst, error);
  void *zl = NULL;
  if (!z || !nn_dnnl_tensor_md (z, &zl))
    {
      if (z)
        nn_tensor_unref (z);
      return NULL;
    }
  guint n = s->n;
  const dnnl_memory_desc_t **mds = g_new (const dnnl_memory_desc_t *, n + 1);
  void **from = g_new (void *, n + 1);
  int *ids = g_new (int, n + 1);
  void **moved = g_new0 (void *, n);
  gboolean ok = TRUE;
  for (guint i = 0; ok && i < n; i++)
    {
      from[i] = data[i];
      if (s->to_common[i])
        {
          /* Into the common layout first, in a buffer from the shared
           * scratchpad pool: a fresh one per run had the heap shrink and
           * grow (and fault its pages in) every forward. */
          static const int reorder_ids[] = { DNNL_ARG_FROM, DNNL_ARG_TO };
          const dnnl_memory_desc_t *rmds[] = { &s->src[i], &s->common[i] };
          gsize size = dnnl_memory_desc_get_size (&s->common[i]);
          ok = (moved[i] = nn_dnnl_scratch_take (size, error)) != NULL;
          /* A blocked layout's channel padding must read as zeros. */
          if (ok && size > (gsize) dnnl_memory_desc_get_size (&s->src[i]))
            memset (moved[i], 0, size);
          void *rdata[] = { data[i], moved[i] };
          ok = ok && nn_dnnl_run_args (s->to_common[i], NULL, s->work, NN_WORK_GRAIN, 2,
                                       reorder_ids, rmds, rdata, error);
          nn_engine_note_reorders (1);
          from[i] = moved[i];
        }
      mds[i] = &s->common[i];
      ids[i] = DNNL_ARG_MULTIPLE_SRC + (int) i;
    }
  mds[n] = &s->dst;
  from[n] = zl;
  ids[n] = DNNL_ARG_DST;
  ok = ok && nn_dnnl_run_args (s->prim, &s->scratch, s->work, NN_WORK_GRAIN, (int) n + 1,
                               ids, mds, from, error);
  for (guint i = 0; i < n; i++)
    nn_dnnl_scratch_give (moved[i]);
  g_free (moved);
  g_free (ids);
  g_free (from);
  g_free (mds);
  if (!ok)
    g_clear_pointer (&z, nn_tensor_unref);
  return z;
}

/* The inputs' descriptors and buffers when every item of @seq is a
 * float32 4-d tensor, all alike but in the channels, joined along dim 1
 * (or -3), and at least one is laid out by us (a plain one, as a
 * reference ConvTranspose2d's result beside a UNet's skip, is described
 * in @plain and reordered into the others' layout); FALSE otherwise. */
static gboolean
laid_inputs (const NnValue *seq, gint64 dim, const dnnl_memory_desc_t **mds,
             dnnl_memory_desc_t *plain, void **data, NnShape *shape)
{
  guint n = nn_value_n_items (seq), laid = 0;
  if (dim != 1 && dim != -3)
    return FALSE;
  for (guint i = 0; i < n; i++)
    {
      const NnValue *v = nn_value_item (seq, i);
      NnTensor *t = nn_value_kind (v) == NN_VALUE_TENSOR ? nn_value_get_tensor (v) : NULL;
      /* Empty inputs (a zero-width join) stay with the reference. */
      if (!t || t->dtype != NN_DTYPE_F32 || t->shape.ndim != 4 || nn_tensor_numel (t) == 0)
        return FALSE;
      if ((mds[i] = nn_dnnl_tensor_md (t, &data[i])))
        laid++;
      else if (nn_tensor_is_plain (t) && nn_tensor_f32 (t)
               && dnnl_memory_desc_init_by_tag (&plain[i], 4,
                                                (dnnl_dims_t) { t->shape.dims[0], t->shape.dims[1],
                                                                t->shape.dims[2], t->shape.dims[3] },
                                                dnnl_f32, dnnl_abcd) == dnnl_success)
        {
          mds[i] = &plain[i];
          data[i] = t->data;
        }
      else
        return FALSE;
      if (mds[i]->ndims != 4)
        return FALSE;
      for (guint d = 0; d < 4; d++)
        if (mds[i]->dims[d] != t->shape.dims[d])
          return FALSE;
      if (i == 0)
        *shape = t->shape;
      else if (t->shape.dims[0] != shape->dims[0] || t->shape.dims[2] != shape->dims[2]
               || t->shape.dims[3] != shape->dims[3])
        return FALSE;
      else
        shape->dims[1] += t->shape.dims[1];
    }
  return laid > 0;
}

static NnValue *
plain_cat (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  const NnValue *seq = nn_args_get (args, 0);
  guint n = nn_value_kind (seq) == NN_VALUE_LIST || nn_value_kind (seq) == NN_VALUE_TUPLE
            ? nn_value_n_items (seq) : 0;
  for (guint i = 0; i < n; i++)
    {
      const NnValue *v = nn_value_item (seq, i);
      if (nn_value_kind (v) == NN_VALUE_TENSOR
          && !nn_tensor_make_plain (nn_value_get_tensor (v), error))
        return NULL;
    }
  return cat_reference->forward (self, call, args, error);
}

static NnValue *
dnnl_cat_forward (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  const NnValue *seq = nn_args_get (args, 0);
  gboolean is_seq = nn_value_kind (seq) == NN_VALUE_LIST || nn_value_kind (seq) == NN_VALUE_TUPLE;
  guint n = is_seq ? nn_value_n_items (seq) : 0;
  if (n < 2 || !nn_dnnl_may_lay_out (call))
    return plain_cat (self, call, args, error);
  const dnnl_memory_desc_t **mds = g_new (const dnnl_memory_desc_t *, n);
  dnnl_memory_desc_t *plain = g_new (dnnl_memory_desc_t, n);
  void **data = g_new (void *, n);
  NnShape shape;
  NnTensor *z = NULL;
  gboolean tried = FALSE;
  if (laid_inputs (seq, nn_args_int (args, 1), mds, plain, data, &shape))
    {
      NnDnnlSlot *slot = nn_dnnl_slot_lock (self);
      CatState *s = slot->state;
      if (s && !cat_state_matches (s, n, mds))
        {
          cat_state_free (s);
          slot->state = s = NULL;
        }
      if (!s)
        {
          slot->state = s = cat_state_new (n, mds, nn_shape_numel (&shape), error);
          slot->state_free = cat_state_free;
        }
      tried = s == NULL;   /* an error, already set */
      if (s && s->prim)
        {
          z = cat_run (s, data, &shape, error);
          tried = TRUE;
        }
      nn_dnnl_slot_unlock (slot);
    }
  g_free (mds);
  g_free (plain);
  g_free (data);
  if (tried)
    return z ? nn_value_take_tensor (z) : NULL;
  return plain_cat (self, call, args, error);
}

static void
dnnl_cat_destroy (NnModule *self)
{
  nn_dnnl_slot_drop (self);
  if (cat_reference->destroy)
    cat_reference->destroy (self);
}

void
nn_dnnl_cat_setup (NnLayerType *t)
{
  for (guint i = 0; nn_ops_join_types[i] && !cat_reference; i++)
    if (strcmp (nn_ops_join_types[i]->name, "cat") == 0)
      cat_reference = nn_ops_join_types[i];
  g_assert (cat_reference != NULL);
  nn_dnnl_provider_init (t, cat_reference,
                         "torch.cat, also of oneDNN's laid-out tensors along the channels");
  t->flags |= NN_LAYER_LAYOUT_AWARE;
  t->forward = dnnl_cat_forward;
  t->destroy = dnnl_cat_destroy;
}
