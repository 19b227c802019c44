/* dnnl plugin: Linear on oneDNN's inner product, over the rows of an
 * input of any leading shape; weights reordered once per build.  The
 * state (NnDnnlInner) also serves MultiheadAttention's in-projection. */
#include "dnnl-private.h"
#include "linear.h"

#include <malloc.h>
#include <nnkit/train.h>

struct _NnDnnlInner {
  gint64 rows;             /* the row count the primitive was built for */
  NnActKind act;           /* the fused activation post-op, and its */
  float alpha, beta;       /* parameters */
  NnDnnlPrim prim;
  dnnl_memory_t weights;   /* reordered copy */
  dnnl_memory_t bias;      /* (nullable) wraps the bias tensor's data */
  NnDnnlSeen w_seen, b_seen;
};
typedef NnDnnlInner LinearState;

void
nn_dnnl_inner_free (gpointer p)
{
  LinearState *s = p;

  nn_dnnl_prim_clear (&s->prim);
  nn_dnnl_weights_free (s->weights);
  if (s->bias) dnnl_memory_destroy (s->bias);
  nn_dnnl_seen_clear (&s->w_seen);
  nn_dnnl_seen_clear (&s->b_seen);
  g_free (s);
}

NnDnnlInner *
nn_dnnl_inner_new (gint64 rows, gint64 in_f, gint64 out_f, NnTensor *w,
                   NnTensor *b, const NnEpilogue *ep, GError **error)
{
  LinearState *s = g_new0 (LinearState, 1);
  dnnl_engine_t eng = nn_dnnl_engine (error);
  dnnl_memory_desc_t src, dst, w_any, w_user, b_md;
  dnnl_inner_product_desc_t desc;
  dnnl_primitive_desc_t pd = NULL;
  dnnl_primitive_attr_t attr = NULL;
  dnnl_dims_t sd = { rows, in_f }, dd = { rows, out_f }, wd = { out_f, in_f };
  dnnl_dims_t bd = { out_f };
  gint64 macs = rows * in_f * out_f;   /* small products: fewer threads */

  s->rows = rows;
  s->act = ep ? ep->act : NN_ACT_NONE;
  s->alpha = ep ? ep->alpha : 0.0f;
  s->beta = ep ? ep->beta : 0.0f;
  gboolean ok = eng
    && nn_dnnl_ok (dnnl_memory_desc_init_by_tag (&src, 2, sd, dnnl_f32, dnnl_nc), "src md", error)
    && nn_dnnl_ok (dnnl_memory_desc_init_by_tag (&dst, 2, dd, dnnl_f32, dnnl_nc), "dst md", error)
    && nn_dnnl_ok (dnnl_memory_desc_init_by_tag (&w_any, 2, wd, dnnl_f32, dnnl_format_tag_any), "weights md", error)
    && nn_dnnl_ok (dnnl_memory_desc_init_by_tag (&w_user, 2, wd, dnnl_f32, dnnl_oi), "weights md", error)
    && nn_dnnl_ok (dnnl_memory_desc_init_by_tag (&b_md, 1, bd, dnnl_f32, dnnl_x), "bias md", error)
    && nn_dnnl_ok (dnnl_inner_product_forward_desc_init (
                     &desc, dnnl_forward_inference, &src, &w_any,
                     b ? &b_md : NULL, &dst), "describing the inner product", error)
    && (attr = nn_dnnl_attr_new_for (macs, NN_GEMM_GRAIN, error))
    && nn_dnnl_attr_add_act (attr, s->act, s->alpha, s->beta, error)
    && nn_dnnl_ok (dnnl_primitive_desc_create (&pd, &desc, attr, eng, NULL),
                   "choosing an inner product", error)
    && nn_dnnl_prim_init (&s->prim, pd, &src, &dst, error)
    && (s->weights = nn_dnnl_reorder_weights (
          &w_user, nn_tensor_f32 (w), w,
          dnnl_primitive_desc_query_md (pd, dnnl_query_weights_md, 0), error))
    && (!b || nn_dnnl_ok (dnnl_memory_create (&s->bias, &b_md, eng, nn_tensor_f32 (b)),
                          "wrapping the bias", error));
  if (pd)
    dnnl_primitive_desc_destroy (pd);
  if (attr)
    dnnl_primitive_attr_destroy (attr);
  if (!ok)
    {
      nn_dnnl_inner_free (s);
      return NULL;
    }
  s->prim.macs = macs;   /* built for that count: run with it */
  nn_dnnl_seen_set (&s->w_seen, w);
  nn_dnnl_seen_set (&s->b_seen, b);
  /* The plain weights leave the resident set once reordered (a mapped
   * file's; a rebuild maps them again from the page cache). */
  nn_tensor_release_pages (w);
  return s;
}

/* The forward, with the epilogue @ep (nullable) of a fused plan step:
 * its activation as an eltwise post-op. */
static NnValue *
dnnl_linear_run (NnModule *self, NnCall *call, const NnArgs *args,
                 const NnEpilogue *ep, GError **error)
{
  const gint64 in_f = nn_module_config_int (self, "in_features");
  const gint64 out_f = nn_module_config_int (self, "out_features");
  NnTensor *x = nn_args_tensor (args, 0);
  NnTensor *w = nn_module_get_parameter (self, "weight");
  NnTensor *b = nn_module_config_bool (self, "bias")
                  ? nn_module_get_parameter (self, "bias") : NULL;
  const guint nd = x->shape.ndim;
  NnShape ws = { 2, { out_f, in_f } }, bs = { 1, { out_f } };

  /* The reference reports bad shapes, and has nothing to do for no rows. */
  if (nd < 1 || x->shape.dims[nd - 1] != in_f || nn_tensor_numel (x) == 0
      || !nn_tensor_f32 (x) || !w || !nn_tensor_f32 (w)
      || !nn_shape_equal (&w->shape, &ws)
      || (nn_module_config_bool (self, "bias")
          && (!b || !nn_tensor_f32 (b) || !nn_shape_equal (&b->shape, &bs))))
    return ep ? nn_linear_type.fuse->forward_fused (self, call, args, ep, error)
              : nn_linear_type.forward (self, call, args, error);

  gint64 rows = nn_tensor_numel (x) / in_f;
  NnShape os = x->shape;
  os.dims[nd - 1] = out_f;
  NnTensor *out = nn_tensor_new_uninitialized (NN_DTYPE_F32, &os);
  if (!out)
    {
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                   "cannot allocate the output");
      return NULL;
    }

  NnDnnlSlot *slot = nn_dnnl_slot_lock (self);
  LinearState *s = nn_dnnl_inner_get (slot, self, rows, in_f, out_f, w, b, ep, error);
  return nn_dnnl_run_weighted (slot, s ? &s->prim : NULL, s ? s->weights : NULL,
                               s ? s->bias : NULL, x, out, error);
}

NnDnnlInner *
nn_dnnl_inner_get (NnDnnlSlot *slot, NnModule *self, gint64 rows, gint64 in_f,
                   gint64 out_f, NnTensor *w, NnTensor *b, const NnEpilogue *ep,
                   GError **error)
{
  NnActKind act = ep ? ep->act : NN_ACT_NONE;
  LinearState *s = slot->state;
  if (s && (s->rows != rows || !nn_dnnl_seen_same (&s->w_seen, w)
            || !nn_dnnl_seen_same (&s->b_seen, b) || s->act != act
            || (act != NN_ACT_NONE && (s->alpha != ep->alpha
                                       || s->beta != ep->beta))))
    {
      nn_dnnl_inner_free (s);
      slot->state = s = NULL;
      /* The freed reordered weights go back to the system before the new
       * ones are made (a fused plan rebuilds every layer once), so the
       * heap does not keep both.  Not in training: the weights change
       * every step, and trimming the heap each time made every step
       * fault all its pages in again (trainbwd). */
      if (!nn_module_is_training (self))
        malloc_trim (0);
    }
  if (!s)
    {
      slot->state = s = nn_dnnl_inner_new (rows, in_f, out_f, w, b, ep, error);
      slot->state_free = nn_dnnl_inner_free;
    }
  return s;
}

gboolean
nn_dnnl_inner_run (NnDnnlInner *s, const float *x, float *y, GError **error)
{
  dnnl_exec_arg_t extra[2] = { { DNNL_ARG_WEIGHTS, s->weights },
                               { DNNL_ARG_BIAS, s->bias } };
  return nn_dnnl_prim_run (&s->prim, x, y, s->bias ? 2 : 1, extra, error);
}

static NnValue *
dnnl_linear_forward (NnModule *self, NnCall *call, const NnArgs *args,
                     GError **error)
{
  return dnnl_linear_run (self, call, args, NULL, error);
}

/* The reference's declaration with this provider's fused forward. */
static NnFuseInfo dnnl_linear_fuse;

static void
dnnl_linear_destroy (NnModule *self)
{
  nn_dnnl_slot_drop (self);
  if (nn_linear_type.destroy)
    nn_linear_type.destroy (self);
}

void
nn_dnnl_linear_setup (NnLayerType *t)
{
  nn_dnnl_provider_init (t, &nn_linear_type, "Linear on oneDNN's inner product, as torch.nn.Linear");
  /* oneDNN reads F32 weights itself: they are converted at load. */
  t->flags &= ~(guint) NN_LAYER_HALF_WEIGHTS;
  t->forward = dnnl_linear_forward;
  dnnl_linear_fuse = *nn_linear_type.fuse;
  dnnl_linear_fuse.forward_fused = dnnl_linear_run;
  t->fuse = &dnnl_linear_fuse;
  t->supports = nn_dnnl_supports_cpu;
  t->destroy = dnnl_linear_destroy;
}
