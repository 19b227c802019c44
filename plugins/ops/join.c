/* ops plugin: cat, stack, split, chunk, unbind. */
#include "ops.h"

#include <string.h>

static const NnArgSpec cat_args[] = {
  { "tensors", NN_ARG_SEQ, NN_OPS_ALL, NN_ARG_CHECK_ITEMS, NULL,
    "tensors of equal shapes except in dim" },
  { "dim", NN_ARG_INT, 0, NN_ARG_OPTIONAL, "0", "dim to join along" },
};

/* The items of a tensor sequence, refusing anything else by position. */
static gboolean
tensor_items (const NnValue *seq, const char *op, GPtrArray *out,
              GError **error)
{
  guint n = nn_value_n_items (seq);
  if (n == 0)
    return nn_ops_fail (error, "%s(): expected a non-empty list of Tensors", op);
  for (guint i = 0; i < n; i++)
    {
      NnValue *v = nn_value_item (seq, i);
      if (nn_value_kind (v) != NN_VALUE_TENSOR)
        return nn_ops_fail (error, "%s(): expected Tensor as element %u in "
                            "argument 0, but got %s", op, i,
                            nn_value_kind_name (nn_value_kind (v)));
      g_ptr_array_add (out, nn_value_get_tensor (v));
    }
  return TRUE;
}

static NnTensor *
concat (GPtrArray *ts, gint64 dim_arg, const NnValue *seq, GError **error)
{
  NnTensor *first = NULL;
  /* Legacy rule kept by PyTorch: 1-d empty tensors are skipped. */
  for (guint i = 0; i < ts->len && !first; i++)
    {
      NnTensor *t = ts->pdata[i];
      if (!(t->shape.ndim == 1 && t->shape.dims[0] == 0))
        first = t;
    }
  if (!first)
    first = ts->pdata[0];
  if (first->shape.ndim == 0)
    {
      nn_ops_shape_fail (error, "zero-dimensional tensor (at position 0) "
                         "cannot be concatenated");
      return NULL;
    }
  guint dim;
  if (!nn_ops_dim (dim_arg, first->shape.ndim, &dim, error))
    return NULL;
  const NnValue **vals = g_newa (const NnValue *, ts->len);
  for (guint i = 0; i < ts->len; i++)
    vals[i] = nn_value_item (seq, i);
  NnDType dtype = nn_ops_result_type (vals, ts->len);
  NnShape shape = first->shape;
  shape.dims[dim] = 0;
  gboolean meta = FALSE;
  for (guint i = 0; i < ts->len; i++)
    {
      NnTensor *t = ts->pdata[i];
      meta |= nn_tensor_is_meta (t);
      if (t->shape.ndim == 1 && t->shape.dims[0] == 0 && t != first)
        continue;
      if (t->shape.ndim != first->shape.ndim)
        {
          nn_ops_shape_fail (error, "Tensors must have same number of "
                             "dimensions: got %u and %u", first->shape.ndim,
                             t->shape.ndim);
          return NULL;
        }
      for (guint d = 0; d < shape.ndim; d++)
        if (d != dim && t->shape.dims[d] != first->shape.dims[d])
          {
            nn_ops_shape_fail (error, "Sizes of tensors must match except in "
                               "dimension %u. Expected size %" G_GINT64_FORMAT
                               " but got size %" G_GINT64_FORMAT " for tensor "
                               "number %u in the list.", dim,
                               first->shape.dims[d], t->shape.dims[d], i);
            return NULL;
          }
      shape.dims[dim] += t->shape.dims[dim];
    }
  NnTensor *out = nn_ops_new (meta, dtype, &shape, error);
  if (!out || meta)
    return out;
  gint64 outer = 1, inner = 1;
  for (guint d = 0; d < dim; d++)
    outer *= shape.dims[d];
  for (guint d = dim + 1; d < shape.ndim; d++)
    inner *= shape.dims[d];
  gint64 row = shape.dims[dim] * inner, at = 0;
  gsize es = nn_dtype_size (dtype);
  for (guint i = 0; i < ts->len; i++)
    {
      NnTensor *t = ts->pdata[i];
      if (t->shape.ndim == 1 && t->shape.dims[0] == 0 && t != first)
        continue;
      gint64 block = t->shape.dims[dim] * inner;
      for (gint64 o = 0; o < outer; o++)
        {
          gint64 dst = o * row + at, src = o * block;
          if (t->dtype == dtype)
            memcpy ((guint8 *) out->data + dst * es,
                    (guint8 *) t->data + src * es, block * es);
          else if (nn_dtype_is_float (dtype))
            for (gint64 k = 0; k < block; k++)
              nn_ops_set_f (out, dst + k, nn_ops_get_f (t, src + k));
          else
            for (gint64 k = 0; k < block; k++)
              nn_ops_set_i (out, dst + k, nn_ops_get_i (t, src + k));
        }
      at += block;
    }
  return out;
}

static NnValue *
cat_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  g_autoptr (GPtrArray) ts = g_ptr_array_new ();
  if (!tensor_items (nn_args_get (args, 0), "cat", ts, error))
    return NULL;
  return nn_ops_take (concat (ts, nn_args_int (args, 1), nn_args_get (args, 0),
                              error));
}

static NnValue *
stack_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  g_autoptr (GPtrArray) ts = g_ptr_array_new ();
  if (!tensor_items (nn_args_get (args, 0), "stack", ts, error))
    return NULL;
  NnTensor *first = ts->pdata[0];
  guint dim;
  if (!nn_ops_dim (nn_args_int (args, 1), first->shape.ndim + 1, &dim, error))
    return NULL;
  if (first->shape.ndim >= NN_MAX_DIMS)
    {
      nn_ops_shape_fail (error, "stack: at most %d dims are supported",
                         NN_MAX_DIMS);
      return NULL;
    }
  /* stack = cat of the inputs each unsqueezed at dim. */
  g_autoptr (GPtrArray) us = g_ptr_array_new_with_free_func ((GDestroyNotify) nn_tensor_unref);
  g_autoptr (NnValue) seq = nn_value_new_tuple ();
  for (guint i = 0; i < ts->len; i++)
    {
      NnTensor *t = ts->pdata[i];
      if (!nn_shape_equal (&t->shape, &first->shape))
        {
          g_autofree char *a = nn_shape_to_string (&first->shape);
          g_autofree char *b = nn_shape_to_string (&t->shape);
          nn_ops_shape_fail (error, "stack expects each tensor to be equal "
                             "size, but got %s at entry 0 and %s at entry %u",
                             a, b, i);
          return NULL;
        }
      NnShape s = { 0 };
      for (guint d = 0; d <= t->shape.ndim; d++)
        {
          if (d == dim)
            s.dims[s.ndim++] = 1;
          if (d < t->shape.ndim)
            s.dims[s.ndim++] = t->shape.dims[d];
        }
      NnTensor *u = nn_tensor_is_meta (t) ? nn_tensor_new_meta (t->dtype, &s)
                                          : nn_tensor_reshape (t, &s);
      g_ptr_array_add (us, u);
      nn_value_append (seq, nn_value_new_tensor (u));
    }
  return nn_ops_take (concat (us, dim, seq, error));
}

static NnValue *
pieces (NnTensor *in, guint dim, const gint64 *sizes, guint n, GError **error)
{
  g_autoptr (NnValue) out = nn_value_new_tuple ();
  gint64 at = 0;
  for (guint i = 0; i < n; i++)
    {
      NnTensor *p = nn_ops_narrow (in, dim, at, sizes[i], error);
      if (!p)
        return NULL;
      nn_value_append (out, nn_value_take_tensor (p));
      at += sizes[i];
    }
  return g_steal_pointer (&out);
}

static NnValue *
split_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  NnValue *sv = nn_args_get (args, 1);
  guint dim;
  if (!nn_ops_dim (nn_args_int (args, 2), in->shape.ndim, &dim, error))
    return NULL;
  if (in->shape.ndim == 0)
    {
      nn_ops_shape_fail (error, "split expects at least a 1-dimensional tensor");
      return NULL;
    }
  gint64 size = in->shape.dims[dim];
  if (nn_value_kind (sv) == NN_VALUE_INT)
    {
      gint64 step = nn_value_get_int (sv);
      if (step < 0 || (step == 0 && size != 0))
        {
          nn_ops_shape_fail (error, "split expects split_size be non-negative, "
                             "but got split_size=%" G_GINT64_FORMAT, step);
          return NULL;
        }
      guint n = step == 0 ? 1 : (guint) MAX (1, (size + step - 1) / step);
      g_autofree gint64 *sizes = g_new (gint64, n);
      for (guint i = 0; i < n; i++)
        sizes[i] = MIN (step, size - (gint64) i * step);
      return pieces (in, dim, sizes, n, error);
    }
  gint64 sizes[64];
  guint n = nn_value_n_items (sv);
  gint64 sum = 0;
  if (n > G_N_ELEMENTS (sizes))
    {
      nn_ops_fail (error, "split: at most %zu sections are supported",
                   G_N_ELEMENTS (sizes));
      return NULL;
    }
  for (guint i = 0; i < n; i++)
    {
      if (!nn_ops_int_value (nn_value_item (sv, i), &sizes[i]) || sizes[i] < 0)
        {
          g_autofree char *s = nn_value_to_string (sv);
          nn_ops_fail (error, "split_with_sizes expects split_sizes to be "
                       "non-negative ints, found %s", s);
          return NULL;
        }
      sum += sizes[i];
    }
  if (sum != size)
    {
      g_autofree char *s = nn_value_to_string (sv);
      nn_ops_shape_fail (error, "split_with_sizes expects split_sizes to sum "
                         "exactly to %" G_GINT64_FORMAT " (input tensor's size "
                         "at dimension %u), but got split_sizes=%s", size, dim,
                         s);
      return NULL;
    }
  return pieces (in, dim, sizes, n, error);
}

static NnValue *
chunk_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  gint64 chunks = nn_args_int (args, 1);
  guint dim;
  if (in->shape.ndim == 0)
    {
      nn_ops_shape_fail (error, "chunk expects at least a 1-dimensional tensor");
      return NULL;
    }
  if (chunks <= 0)
    {
      nn_ops_fail (error, "chunk expects `chunks` to be greater than 0, got: %"
                   G_GINT64_FORMAT, chunks);
      return NULL;
    }
  if (!nn_ops_dim (nn_args_int (args, 2), in->shape.ndim, &dim, error))
    return NULL;
  gint64 size = in->shape.dims[dim];
  gint64 step = (size + chunks - 1) / chunks;
  if (step == 0)
    {
      /* An empty dim gives chunks empty pieces, as PyTorch does. */
      g_autofree gint64 *zeros = g_new0 (gint64, chunks);
      return pieces (in, dim, zeros, (guint) chunks, error);
    }
  guint n = (guint) ((size + step - 1) / step);
  g_autofree gint64 *sizes = g_new (gint64, n);
  for (guint i = 0; i < n; i++)
    sizes[i] = MIN (step, size - (gint64) i * step);
  return pieces (in, dim, sizes, n, error);
}

static NnValue *
unbind_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  guint dim;
  if (in->shape.ndim == 0)
    {
      nn_ops_shape_fail (error, "Dimension specified as 0 but tensor has no "
                         "dimensions");
      return NULL;
    }
  if (!nn_ops_dim (nn_args_int (args, 1), in->shape.ndim, &dim, error))
    return NULL;
  g_autoptr (NnValue) out = nn_value_new_tuple ();
  for (gint64 i = 0; i < in->shape.dims[dim]; i++)
    {
      NnTensor *p = nn_ops_select (in, dim, i, error);
      if (!p)
        return NULL;
      nn_value_append (out, nn_value_take_tensor (p));
    }
  return g_steal_pointer (&out);
}

static const NnArgSpec split_args[] = {
  { "tensor", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL, "tensor to split" },
  { "split_size_or_sections", NN_ARG_INT | NN_ARG_SEQ, 0, 0, NULL,
    "size of each piece, or the list of sizes" },
  { "dim", NN_ARG_INT, 0, NN_ARG_OPTIONAL, "0", "dim to split" },
};
static const NnArgSpec chunk_args[] = {
  { "input", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL, "tensor to split" },
  { "chunks", NN_ARG_INT, 0, 0, NULL, "number of pieces (at most)" },
  { "dim", NN_ARG_INT, 0, NN_ARG_OPTIONAL, "0", "dim to split" },
};
static const NnArgSpec unbind_args[] = {
  { "input", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL, "tensor" },
  { "dim", NN_ARG_INT, 0, NN_ARG_OPTIONAL, "0", "dim to remove" },
};

static const char *const cat_aliases[] = {
  "torch.cat", "torch.concat", NULL };
static const char *const stack_aliases[] = { "torch.stack", NULL };
static const char *const split_aliases[] = {
  "torch.split", "Tensor.split", NULL };
static const char *const chunk_aliases[] = {
  "torch.chunk", "Tensor.chunk", NULL };
static const char *const unbind_aliases[] = {
  "torch.unbind", "Tensor.unbind", NULL };

NN_OPS_MOVE_TYPE (cat_type, "cat", "joins tensors along dim", cat_args,
                    cat_aliases, cat_fn);
NN_OPS_MOVE_TYPE (stack_type, "stack", "joins tensors along a new dim",
                    cat_args, stack_aliases, stack_fn);
NN_OPS_MOVE_VIEW_TYPE (split_type, "split", "pieces of equal or given sizes",
                    split_args, split_aliases, split_fn);
NN_OPS_MOVE_VIEW_TYPE (chunk_type, "chunk", "at most chunks equal pieces",
                    chunk_args, chunk_aliases, chunk_fn);
NN_OPS_MOVE_VIEW_TYPE (unbind_type, "unbind", "the slices along dim",
                    unbind_args, unbind_aliases, unbind_fn);

const NnLayerType *const nn_ops_join_types[] = {
  &cat_type, &stack_type, &split_type, &chunk_type, &unbind_type, NULL,
};
