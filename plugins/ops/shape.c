/* ops plugin: reshape and view, unflatten, permute, transpose, contiguous,
 * squeeze, unsqueeze, expand, expand_as, repeat, size, dim, numel, roll. */
#include "ops.h"

#include <string.h>

#define T_IN { "input", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL, "tensor" }

static char *
sizes_string (const gint64 *s, guint n)
{
  GString *str = g_string_new ("[");
  for (guint i = 0; i < n; i++)
    g_string_append_printf (str, "%s%" G_GINT64_FORMAT, i ? ", " : "", s[i]);
  g_string_append_c (str, ']');
  return g_string_free (str, FALSE);
}

/* ATen's infer_size: one -1 takes what the others leave of @numel. */
static gboolean
infer_size (const gint64 *sizes, guint n, gint64 numel, NnShape *out,
            GError **error)
{
  gint infer = -1;
  gint64 known = 1;
  out->ndim = n;
  for (guint i = 0; i < n; i++)
    {
      if (sizes[i] == -1)
        {
          if (infer >= 0)
            return nn_ops_shape_fail (error, "only one dimension can be "
                                      "inferred");
          infer = (gint) i;
        }
      else if (sizes[i] < 0)
        return nn_ops_shape_fail (error, "invalid shape dimension %"
                                  G_GINT64_FORMAT, sizes[i]);
      else
        known *= sizes[i];
      out->dims[i] = sizes[i];
    }
  if (numel == known || (infer >= 0 && known > 0 && numel % known == 0))
    {
      if (infer >= 0)
        {
          /* An empty tensor cannot infer a -1 next to a zero extent. */
          if (known == 0)
            goto bad;
          out->dims[infer] = numel / known;
        }
      return TRUE;
    }
bad:
  {
    g_autofree char *s = sizes_string (sizes, n);
    return nn_ops_shape_fail (error, "shape '%s' is invalid for input of size %"
                              G_GINT64_FORMAT, s, numel);
  }
}

static NnTensor *
with_shape (NnTensor *in, const NnShape *shape, GError **error)
{
  if (nn_tensor_is_meta (in))
    return nn_tensor_new_meta (in->dtype, shape);
  /* Results share storage, as view does: ops never write their inputs. */
  return nn_tensor_reshape (in, shape);
}

static NnValue *
reshape_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  gint64 sizes[NN_MAX_DIMS];
  guint n;
  NnShape shape;
  if (!nn_ops_sizes (nn_args_get (args, 1), "shape", sizes, &n, error)
      || !infer_size (sizes, n, nn_tensor_numel (in), &shape, error))
    return NULL;
  return nn_ops_take (with_shape (in, &shape, error));
}

static NnValue *
unflatten_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  guint dim, n;
  gint64 sizes[NN_MAX_DIMS];
  if (!nn_ops_dim (nn_args_int (args, 1), in->shape.ndim, &dim, error)
      || !nn_ops_sizes (nn_args_get (args, 2), "sizes", sizes, &n, error))
    return NULL;
  if (n == 0)
    {
      nn_ops_shape_fail (error, "unflatten: sizes must be non-empty");
      return NULL;
    }
  if (in->shape.ndim - 1 + n > NN_MAX_DIMS)
    {
      nn_ops_shape_fail (error, "unflatten: the result would have more than "
                         "%d dims", NN_MAX_DIMS);
      return NULL;
    }
  NnShape part;
  GError *sub = NULL;
  if (!infer_size (sizes, n, in->shape.ndim ? in->shape.dims[dim] : 1, &part,
                   &sub))
    {
      g_autofree char *s = sizes_string (sizes, n);
      nn_ops_shape_fail (error, "unflatten: Provided sizes %s don't multiply "
                         "up to the size of dim %u (%" G_GINT64_FORMAT
                         ") in the input tensor", s, dim,
                         in->shape.dims[dim]);
      g_error_free (sub);
      return NULL;
    }
  NnShape shape = { 0 };
  for (guint i = 0; i < in->shape.ndim; i++)
    if (i == dim)
      for (guint k = 0; k < n; k++)
        shape.dims[shape.ndim++] = part.dims[k];
    else
      shape.dims[shape.ndim++] = in->shape.dims[i];
  return nn_ops_take (with_shape (in, &shape, error));
}

static NnValue *
permute_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  gint64 dims[NN_MAX_DIMS];
  guint n;
  if (!nn_ops_sizes (nn_args_get (args, 1), "dims", dims, &n, error))
    return NULL;
  if (n != in->shape.ndim)
    {
      nn_ops_shape_fail (error, "permute(sparse_coo): number of dimensions in "
                         "the tensor input does not match the length of the "
                         "desired ordering of dimensions i.e. input.dim() = %u "
                         "is not equal to len(dims) = %u", in->shape.ndim, n);
      return NULL;
    }
  gint64 own[NN_MAX_DIMS], strides[NN_MAX_DIMS];
  gboolean seen[NN_MAX_DIMS] = { FALSE };
  NnShape shape = { n };
  nn_ops_strides (&in->shape, own);
  for (guint i = 0; i < n; i++)
    {
      guint d;
      if (!nn_ops_dim (dims[i], n, &d, error))
        return NULL;
      if (seen[d])
        {
          nn_ops_shape_fail (error, "permute(): duplicate dims are not allowed.");
          return NULL;
        }
      seen[d] = TRUE;
      shape.dims[i] = in->shape.dims[d];
      strides[i] = own[d];
    }
  return nn_ops_take (nn_ops_gather (in, &shape, strides, 0, error));
}

static NnValue *
transpose_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  guint a, b;
  if (!nn_ops_dim (nn_args_int (args, 1), in->shape.ndim, &a, error)
      || !nn_ops_dim (nn_args_int (args, 2), in->shape.ndim, &b, error))
    return NULL;
  if (in->shape.ndim == 0)
    return nn_value_new_tensor (in);
  gint64 strides[NN_MAX_DIMS];
  NnShape shape = in->shape;
  nn_ops_strides (&in->shape, strides);
  shape.dims[a] = in->shape.dims[b];
  shape.dims[b] = in->shape.dims[a];
  gint64 t = strides[a];
  strides[a] = strides[b];
  strides[b] = t;
  return nn_ops_take (nn_ops_gather (in, &shape, strides, 0, error));
}

/* t(): transposes a 2-d tensor; 0-d and 1-d come back unchanged. */
static NnValue *
t_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  if (in->shape.ndim > 2)
    {
      nn_ops_shape_fail (error, "t() expects a tensor with <= 2 dimensions, "
                         "but self is %uD", in->shape.ndim);
      return NULL;
    }
  if (in->shape.ndim < 2)
    return nn_value_new_tensor (in);
  gint64 strides[2] = { 1, in->shape.dims[1] };
  NnShape shape = { 2, { in->shape.dims[1], in->shape.dims[0] } };
  return nn_ops_take (nn_ops_gather (in, &shape, strides, 0, error));
}

static NnValue *
contiguous_fn (NnModule *self, NnCall *call, const NnArgs *args,
               GError **error)
{
  /* nnkit tensors are always contiguous. */
  return nn_value_new_tensor (nn_args_tensor (args, 0));
}

static NnValue *
squeeze_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  NnValue *dimv = nn_args_get (args, 1);
  NnShape shape = { 0 };
  if (nn_value_is_none (dimv))
    {
      for (guint i = 0; i < in->shape.ndim; i++)
        if (in->shape.dims[i] != 1)
          shape.dims[shape.ndim++] = in->shape.dims[i];
    }
  else
    {
      guint d;
      if (!nn_ops_dim (nn_value_get_int (dimv), in->shape.ndim, &d, error))
        return NULL;
      for (guint i = 0; i < in->shape.ndim; i++)
        if (i != d || in->shape.dims[i] != 1)
          shape.dims[shape.ndim++] = in->shape.dims[i];
    }
  return nn_ops_take (with_shape (in, &shape, error));
}

static NnValue *
unsqueeze_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  guint d;
  if (!nn_ops_dim (nn_args_int (args, 1), in->shape.ndim + 1, &d, error))
    return NULL;
  if (in->shape.ndim >= NN_MAX_DIMS)
    {
      nn_ops_shape_fail (error, "unsqueeze: at most %d dims are supported",
                         NN_MAX_DIMS);
      return NULL;
    }
  NnShape shape = { 0 };
  for (guint i = 0; i <= in->shape.ndim; i++)
    {
      if (i == d)
        shape.dims[shape.ndim++] = 1;
      if (i < in->shape.ndim)
        shape.dims[shape.ndim++] = in->shape.dims[i];
    }
  return nn_ops_take (with_shape (in, &shape, error));
}

static NnTensor *
expand_to (NnTensor *in, const gint64 *sizes, guint n, GError **error)
{
  if (n < in->shape.ndim)
    {
      g_autofree char *s = sizes_string (sizes, n);
      g_autofree char *t = nn_shape_to_string (&in->shape);
      nn_ops_shape_fail (error, "expand(torch.%sTensor{%s}, size=%s): the "
                         "number of sizes provided (%u) must be greater or "
                         "equal to the number of dimensions in the tensor (%u)",
                         nn_ops_dtype_short (in->dtype), t, s, n,
                         in->shape.ndim);
      return NULL;
    }
  NnShape shape = { n };
  gint64 own[NN_MAX_DIMS], strides[NN_MAX_DIMS];
  nn_ops_strides (&in->shape, own);
  guint lead = n - in->shape.ndim;
  for (guint i = 0; i < n; i++)
    {
      if (i < lead)
        {
          if (sizes[i] < 0)
            {
              nn_ops_shape_fail (error, "The expanded size of the tensor (%"
                                 G_GINT64_FORMAT ") isn't allowed in a leading, "
                                 "non-existing dimension %u", sizes[i], i);
              return NULL;
            }
          shape.dims[i] = sizes[i];
          strides[i] = 0;
          continue;
        }
      gint64 have = in->shape.dims[i - lead];
      gint64 want = sizes[i] == -1 ? have : sizes[i];
      if (have != want && have != 1)
        {
          g_autofree char *t = sizes_string (sizes, n);
          g_autofree char *s = nn_shape_to_string (&in->shape);
          nn_ops_shape_fail (error, "The expanded size of the tensor (%"
                             G_GINT64_FORMAT ") must match the existing size (%"
                             G_GINT64_FORMAT ") at non-singleton dimension %u.  "
                             "Target sizes: %s.  Tensor sizes: %s", want, have,
                             i, t, s);
          return NULL;
        }
      if (want < 0)
        {
          nn_ops_shape_fail (error, "Trying to create tensor with negative "
                             "dimension %" G_GINT64_FORMAT, want);
          return NULL;
        }
      shape.dims[i] = want;
      strides[i] = have == want ? own[i - lead] : 0;
    }
  return nn_ops_gather (in, &shape, strides, 0, error);
}

static NnValue *
expand_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  gint64 sizes[NN_MAX_DIMS];
  guint n;
  if (!nn_ops_sizes (nn_args_get (args, 1), "size", sizes, &n, error))
    return NULL;
  return nn_ops_take (expand_to (nn_args_tensor (args, 0), sizes, n, error));
}

static NnValue *
expand_as_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *other = nn_args_tensor (args, 1);
  return nn_ops_take (expand_to (nn_args_tensor (args, 0), other->shape.dims,
                                 other->shape.ndim, error));
}

static NnValue *
repeat_values (NnTensor *in, const NnValue *repsv, GError **error)
{
  gint64 reps[NN_MAX_DIMS];
  guint n;
  if (!nn_ops_sizes (repsv, "repeats", reps, &n, error))
    return NULL;
  if (n < in->shape.ndim)
    {
      nn_ops_shape_fail (error, "Number of dimensions of repeat dims can not "
                         "be smaller than number of dimensions of tensor");
      return NULL;
    }
  /* Walk the result as (rep0, size0, rep1, size1, ...) pairs. */
  guint lead = n - in->shape.ndim;
  NnShape shape = { n }, walk = { 0 };
  gint64 own[NN_MAX_DIMS], strides[2 * NN_MAX_DIMS];
  nn_ops_strides (&in->shape, own);
  if (2 * n > NN_MAX_DIMS)
    {
      /* Too many dims for one walk: repeat leading dims by copying. */
      nn_ops_shape_fail (error, "repeat: at most %d dims are supported",
                         NN_MAX_DIMS / 2);
      return NULL;
    }
  for (guint i = 0; i < n; i++)
    {
      if (reps[i] < 0)
        {
          nn_ops_shape_fail (error, "Trying to create tensor with negative "
                             "dimension %" G_GINT64_FORMAT, reps[i]);
          return NULL;
        }
      gint64 size = i < lead ? 1 : in->shape.dims[i - lead];
      shape.dims[i] = reps[i] * size;
      walk.dims[walk.ndim] = reps[i];
      strides[walk.ndim++] = 0;
      walk.dims[walk.ndim] = size;
      strides[walk.ndim++] = i < lead ? 0 : own[i - lead];
    }
  g_autoptr (NnTensor) flat = nn_ops_gather (in, &walk, strides, 0, error);
  if (!flat)
    return NULL;
  return nn_ops_take (with_shape (flat, &shape, error));
}

static NnValue *
repeat_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return repeat_values (nn_args_tensor (args, 0), nn_args_get (args, 1), error);
}

static NnValue *
size_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  NnValue *dimv = nn_args_get (args, 1);
  if (!nn_value_is_none (dimv))
    {
      guint d;
      if (!nn_ops_dim (nn_value_get_int (dimv), in->shape.ndim, &d, error))
        return NULL;
      if (in->shape.ndim == 0)
        {
          nn_ops_shape_fail (error, "dimension specified as %" G_GINT64_FORMAT
                             " but tensor has no dimensions",
                             nn_value_get_int (dimv));
          return NULL;
        }
      return nn_value_new_int (in->shape.dims[d]);
    }
  NnValue *t = nn_value_new_tuple ();
  for (guint i = 0; i < in->shape.ndim; i++)
    nn_value_append (t, nn_value_new_int (in->shape.dims[i]));
  return t;
}

static NnValue *
dim_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return nn_value_new_int (nn_args_tensor (args, 0)->shape.ndim);
}

/* A tensor's element count, or torch.Size.numel(): the product of a
 * tuple of sizes (x.shape[1:].numel()). */
static NnValue *
numel_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnValue *v = nn_args_get (args, 0);
  if (nn_value_kind (v) == NN_VALUE_TENSOR)
    return nn_value_new_int (nn_tensor_numel (nn_value_get_tensor (v)));
  gint64 sizes[NN_MAX_DIMS], n = 1;
  guint k;
  if (!nn_ops_sizes (v, "input", sizes, &k, error))
    return NULL;
  for (guint i = 0; i < k; i++)
    n *= sizes[i];
  return nn_value_new_int (n);
}

static NnValue *
roll_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  gint64 shifts[NN_MAX_DIMS], dims[NN_MAX_DIMS];
  guint ns, nd = 0;
  if (!nn_ops_sizes (nn_args_get (args, 1), "shifts", shifts, &ns, error))
    return NULL;
  NnValue *dv = nn_args_get (args, 2);
  if (!nn_value_is_none (dv)
      && !nn_ops_sizes (dv, "dims", dims, &nd, error))
    return NULL;
  if (nd == 0)
    {
      /* No dims: roll the flattened tensor, then restore the shape. */
      if (ns != 1)
        {
          nn_ops_shape_fail (error, "shifts and dimensions must align. "
                             "shifts: %u, dims:0", ns);
          return NULL;
        }
      NnShape flat = { 1, { nn_tensor_numel (in) } };
      g_autoptr (NnTensor) f = with_shape (in, &flat, error);
      dims[0] = 0;
      nd = 1;
      in = f;
      NnTensor *out = nn_ops_new (nn_tensor_is_meta (in), in->dtype, &flat, error);
      if (out && !nn_tensor_is_meta (in) && flat.dims[0] > 0)
        {
          gint64 n = flat.dims[0], s = ((shifts[0] % n) + n) % n;
          gsize es = nn_dtype_size (in->dtype);
          for (gint64 i = 0; i < n; i++)
            memcpy ((guint8 *) out->data + ((i + s) % n) * es,
                    (guint8 *) in->data + i * es, es);
        }
      if (!out)
        return NULL;
      g_autoptr (NnTensor) o = out;
      NnTensor *orig = nn_args_tensor (args, 0);
      return nn_ops_take (with_shape (o, &orig->shape, error));
    }
  if (ns != nd)
    {
      nn_ops_shape_fail (error, "shifts and dimensions must align. shifts: %u, "
                         "dims:%u", ns, nd);
      return NULL;
    }
  NnTensor *out = nn_ops_new (nn_tensor_is_meta (in), in->dtype, &in->shape,
                              error);
  if (!out || nn_tensor_is_meta (in))
    return nn_ops_take (out);
  gint64 shift[NN_MAX_DIMS] = { 0 };
  for (guint k = 0; k < nd; k++)
    {
      guint d;
      if (!nn_ops_dim (dims[k], in->shape.ndim, &d, error))
        {
          nn_tensor_unref (out);
          return NULL;
        }
      shift[d] += shifts[k];
    }
  gint64 own[NN_MAX_DIMS], n = nn_tensor_numel (in);
  gsize es = nn_dtype_size (in->dtype);
  guint rank = in->shape.ndim;
  if (n == 0 || rank == 0)
    {
      if (rank == 0)
        memcpy (out->data, in->data, es);
      return nn_value_take_tensor (out);
    }
  nn_ops_strides (&in->shape, own);
  for (guint d = 0; d < rank; d++)
    {
      gint64 size = in->shape.dims[d];
      shift[d] = ((shift[d] % size) + size) % size;
    }
  /* Rows of the last dim are two block copies around the shift point;
   * the outer dims pick their source row through the shifts. */
  NnShape outer = in->shape;
  outer.ndim = rank - 1;
  gint64 row = in->shape.dims[rank - 1], s = shift[rank - 1];
  NnOpsIter it;
  nn_ops_iter_init (&it, &outer);
  for (gint64 r = 0; r < n / row; r++, nn_ops_iter_next (&it))
    {
      gint64 src = 0;
      for (guint d = 0; d + 1 < rank; d++)
        {
          gint64 size = in->shape.dims[d];
          src += ((it.idx[d] - shift[d] + size) % size) * own[d];
        }
      guint8 *dst = (guint8 *) out->data + r * row * es;
      const guint8 *from = (const guint8 *) in->data + src * es;
      memcpy (dst + s * es, from, (row - s) * es);
      memcpy (dst, from + (row - s) * es, s * es);
    }
  return nn_value_take_tensor (out);
}

static NnValue *
flip_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  gint64 dims[NN_MAX_DIMS], strides[NN_MAX_DIMS], base = 0;
  guint n;
  gboolean seen[NN_MAX_DIMS] = { FALSE };
  if (!nn_ops_sizes (nn_args_get (args, 1), "dims", dims, &n, error))
    return NULL;
  nn_ops_strides (&in->shape, strides);
  for (guint i = 0; i < n; i++)
    {
      guint d;
      if (!nn_ops_dim (dims[i], in->shape.ndim, &d, error))
        return NULL;
      if (in->shape.ndim == 0)
        continue;
      if (seen[d])
        {
          nn_ops_shape_fail (error, "dims has duplicates, original flip dims "
                             "size=%u, but unique flip dims size=%u", n, i);
          return NULL;
        }
      seen[d] = TRUE;
      /* Walk the dim backwards: start at its last element. */
      base += (in->shape.dims[d] - 1) * strides[d];
      strides[d] = -strides[d];
    }
  if (nn_tensor_numel (in) == 0)
    base = 0;
  return nn_ops_take (nn_ops_gather (in, &in->shape, strides, base, error));
}

/* tile: repeat with the reps padded by leading 1s to the input's dims. */
static NnValue *
tile_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  gint64 reps[NN_MAX_DIMS];
  guint n;
  if (!nn_ops_sizes (nn_args_get (args, 1), "dims", reps, &n, error))
    return NULL;
  guint pad = n < in->shape.ndim ? in->shape.ndim - n : 0;
  g_autoptr (NnValue) full = nn_value_new_tuple ();
  for (guint i = 0; i < pad; i++)
    nn_value_append (full, nn_value_new_int (1));
  for (guint i = 0; i < n; i++)
    nn_value_append (full, nn_value_new_int (reps[i]));
  return repeat_values (in, full, error);
}

/* unfold(dim, size, step): every window of @size elements along @dim,
 * @step apart, as a new last dim (a ViT's patches: x.unfold(2, p, p)).
 * A strided read of the input: dim's stride grows by @step, and the new
 * dim walks dim's own stride. */
static NnValue *
unfold_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  gint64 size = nn_args_int (args, 2), step = nn_args_int (args, 3);
  guint nd = in->shape.ndim, d = 0;
  if (!nn_ops_dim (nn_args_int (args, 1), MAX (nd, 1), &d, error))
    return NULL;
  if (nd + 1 > NN_MAX_DIMS)
    {
      nn_ops_shape_fail (error, "unfold of a %u-d tensor: the result would have "
                         "more than %d dims", nd, NN_MAX_DIMS);
      return NULL;
    }
  /* A 0-d tensor unfolds as one element, as PyTorch's. */
  gint64 len = nd ? in->shape.dims[d] : 1;
  if (size < 0 || size > len)
    {
      nn_ops_shape_fail (error, "maximum size for tensor at dimension %u is %"
                         G_GINT64_FORMAT " but size is %" G_GINT64_FORMAT,
                         d, len, size);
      return NULL;
    }
  if (step <= 0)
    {
      nn_ops_fail (error, "step is %" G_GINT64_FORMAT " but must be > 0", step);
      return NULL;
    }
  gint64 strides[NN_MAX_DIMS];
  nn_ops_strides (&in->shape, strides);
  NnShape shape = in->shape;
  gint64 along = nd ? strides[d] : 1;
  if (nd)
    {
      shape.dims[d] = (len - size) / step + 1;
      strides[d] = along * step;
    }
  shape.dims[nd] = size;
  strides[nd] = along;
  shape.ndim = nd + 1;
  return nn_ops_take (nn_ops_gather (in, &shape, strides, 0, error));
}

/* repeat_interleave(input, repeats, dim=None): each element @repeats
 * times in a row along @dim (the flattened input when None), as grouped-
 * query attention repeats its key heads.  Read with a zero stride over a
 * new dim after @dim, then that dim merged into @dim.  A tensor of
 * per-element repeats gives a size that depends on its values: refused. */
static NnValue *
repeat_interleave_fn (NnModule *self, NnCall *call, const NnArgs *args,
                      GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  NnValue *rv = nn_args_get (args, 1);
  if (nn_value_kind (rv) == NN_VALUE_TENSOR)
    {
      NnTensor *rt = nn_value_get_tensor (rv);
      if (nn_tensor_numel (rt) != 1 || nn_tensor_is_meta (rt))
        {
          nn_ops_fail (error, "repeat_interleave with a tensor of repeats per "
                       "element gives a size that depends on its values; nnkit "
                       "takes one int (or a one-element tensor)");
          return NULL;
        }
    }
  gint64 r = nn_value_kind (rv) == NN_VALUE_TENSOR
               ? nn_ops_get_i (nn_value_get_tensor (rv), 0) : nn_args_int (args, 1);
  if (r < 0)
    {
      nn_ops_fail (error, "repeats can not be negative");
      return NULL;
    }
  NnShape src = in->shape;
  guint d = 0;
  if (nn_value_kind (nn_args_get (args, 2)) == NN_VALUE_NONE)
    {
      src.ndim = 1;
      src.dims[0] = nn_tensor_numel (in);
    }
  else if (!nn_ops_dim (nn_args_int (args, 2), MAX (in->shape.ndim, 1), &d, error))
    return NULL;
  if (src.ndim == 0)
    {
      src.ndim = 1;
      src.dims[0] = 1;
    }
  if (src.ndim + 1 > NN_MAX_DIMS)
    {
      nn_ops_shape_fail (error, "repeat_interleave of a %u-d tensor: more than %d "
                         "dims on the way", src.ndim, NN_MAX_DIMS);
      return NULL;
    }
  gint64 own[NN_MAX_DIMS], strides[NN_MAX_DIMS];
  nn_ops_strides (&src, own);
  NnShape wide = { src.ndim + 1, { 0 } };
  for (guint i = 0, j = 0; i < src.ndim; i++)
    {
      wide.dims[j] = src.dims[i];
      strides[j++] = own[i];
      if (i == d)
        {
          wide.dims[j] = r;
          strides[j++] = 0;
        }
    }
  g_autoptr (NnTensor) flat = nn_tensor_is_meta (in)
    ? nn_tensor_new_meta (in->dtype, &src) : nn_tensor_reshape (in, &src);
  g_autoptr (NnTensor) spread = nn_ops_gather (flat, &wide, strides, 0, error);
  if (!spread)
    return NULL;
  NnShape out = src;
  out.dims[d] = src.dims[d] * r;
  return nn_ops_take (nn_tensor_is_meta (spread)
                      ? nn_tensor_new_meta (spread->dtype, &out)
                      : nn_tensor_reshape (spread, &out));
}

/* len(obj): a tensor's first size, or the item count of a sequence,
 * dict or string, as Python's builtin. */
static NnValue *
len_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnValue *v = nn_args_get (args, 0);
  switch (nn_value_kind (v))
    {
    case NN_VALUE_TENSOR:
      {
        NnTensor *t = nn_value_get_tensor (v);
        if (t->shape.ndim == 0)
          {
            nn_ops_fail (error, "len() of a 0-d tensor");
            return NULL;
          }
        return nn_value_new_int (t->shape.dims[0]);
      }
    case NN_VALUE_TUPLE:
    case NN_VALUE_LIST:
    case NN_VALUE_DICT:
      return nn_value_new_int (nn_value_n_items (v));
    case NN_VALUE_STRING:
      return nn_value_new_int (g_utf8_strlen (nn_value_get_string (v), -1));
    default:
      nn_ops_fail (error, "object of type '%s' has no len()",
                   nn_value_kind_name (nn_value_kind (v)));
      return NULL;
    }
}

static const NnArgSpec sizes_args[] = {
  T_IN,
  { "shape", NN_ARG_ANY, NN_OPS_ALL, NN_ARG_VARIADIC, NULL, "sizes, -1 inferred" },
};
static const NnArgSpec unflatten_args[] = {
  T_IN,
  { "dim", NN_ARG_INT, 0, 0, NULL, "dim to unflatten" },
  { "sizes", NN_ARG_SEQ, 0, 0, NULL, "its new sizes" },
};
static const NnArgSpec permute_args[] = {
  T_IN,
  { "dims", NN_ARG_ANY, NN_OPS_ALL, NN_ARG_VARIADIC, NULL, "the new order of dims" },
};
static const NnArgSpec transpose_args[] = {
  T_IN,
  { "dim0", NN_ARG_INT, 0, 0, NULL, "first dim" },
  { "dim1", NN_ARG_INT, 0, 0, NULL, "second dim" },
};
static const NnArgSpec one_args[] = { T_IN };
static const NnArgSpec numel_args[] = {
  { "input", NN_ARG_TENSOR | NN_ARG_SEQ, NN_OPS_ALL, 0, NULL,
    "tensor, or a tuple of sizes (torch.Size)" },
};
static const NnArgSpec contiguous_args[] = {
  T_IN,
  { "memory_format", NN_ARG_ANY, NN_OPS_ALL, NN_ARG_OPTIONAL | NN_ARG_KW_ONLY, "null",
    "ignored: nnkit tensors are contiguous" },
};
static const NnArgSpec opt_dim_args[] = {
  T_IN,
  { "dim", NN_ARG_INT | NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null", "dim" },
};
static const NnArgSpec dim_args[] = {
  T_IN,
  { "dim", NN_ARG_INT, 0, 0, NULL, "dim" },
};
static const NnArgSpec expand_args[] = {
  T_IN,
  { "size", NN_ARG_ANY, NN_OPS_ALL, NN_ARG_VARIADIC, NULL, "sizes, -1 keeps a dim" },
};
static const NnArgSpec expand_as_args[] = {
  T_IN,
  { "other", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL, "tensor of the target shape" },
};
static const NnArgSpec repeat_args[] = {
  T_IN,
  { "repeats", NN_ARG_ANY, NN_OPS_ALL, NN_ARG_VARIADIC, NULL, "repeats per dim" },
};
static const NnArgSpec roll_args[] = {
  T_IN,
  { "shifts", NN_ARG_INT | NN_ARG_SEQ, 0, 0, NULL, "shift per dim" },
  { "dims", NN_ARG_INT | NN_ARG_SEQ | NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null",
    "dims to roll; None rolls the flattened tensor" },
};

static const NnArgSpec flip_args[] = {
  T_IN,
  { "dims", NN_ARG_ANY, NN_OPS_ALL, NN_ARG_VARIADIC, NULL, "dims to reverse" },
};
static const NnArgSpec unfold_args[] = {
  T_IN,
  { "dimension", NN_ARG_INT, 0, 0, NULL, "dim the windows slide along" },
  { "size", NN_ARG_INT, 0, 0, NULL, "window length" },
  { "step", NN_ARG_INT, 0, 0, NULL, "distance between window starts" },
};
static const NnArgSpec repeat_interleave_args[] = {
  T_IN,
  { "repeats", NN_ARG_INT | NN_ARG_TENSOR, NN_DTYPES_INT, 0, NULL,
    "times each element is repeated" },
  { "dim", NN_ARG_INT | NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null",
    "dim to repeat along; None: the flattened input" },
  { "output_size", NN_ARG_INT | NN_ARG_NONE, 0, NN_ARG_OPTIONAL | NN_ARG_KW_ONLY,
    "null", "the result's size along dim (a hint; ignored)" },
};
static const NnArgSpec len_args[] = {
  { "obj", NN_ARG_ANY, NN_OPS_ALL, 0, NULL, "tensor, tuple, list, dict or str" },
};
static const char *const flip_aliases[] = { "torch.flip", "Tensor.flip", NULL };
static const char *const tile_aliases[] = { "torch.tile", "Tensor.tile", NULL };
static const char *const len_aliases[] = { "builtins.len", NULL };
NN_OPS_MOVE_TYPE (flip_type, "flip", "reverses the order along dims",
                    flip_args, flip_aliases, flip_fn);
NN_OPS_MOVE_TYPE (tile_type, "tile", "repeat, reps padded with leading 1s",
                    flip_args, tile_aliases, tile_fn);
static const char *const unfold_aliases[] = { "Tensor.unfold", NULL };
NN_OPS_MOVE_TYPE (unfold_type, "unfold", "sliding windows along a dim, as a new last dim",
                  unfold_args, unfold_aliases, unfold_fn);
static const char *const repeat_interleave_aliases[] = {
  "torch.repeat_interleave", "Tensor.repeat_interleave", NULL };
NN_OPS_MOVE_TYPE (repeat_interleave_type, "repeat_interleave",
                  "each element repeated along a dim", repeat_interleave_args,
                  repeat_interleave_aliases, repeat_interleave_fn);
static NN_OPS_TYPE (len_type, "len", "Python's len()", len_args, len_aliases,
                    len_fn);

static const char *const reshape_aliases[] = {
  "torch.reshape", "Tensor.reshape", NULL };
static const char *const view_aliases[] = { "Tensor.view", NULL };
static const char *const unflatten_aliases[] = {
  "torch.unflatten", "Tensor.unflatten", NULL };
static const char *const permute_aliases[] = {
  "torch.permute", "Tensor.permute", NULL };
static const char *const transpose_aliases[] = {
  "torch.transpose", "torch.swapaxes", "torch.swapdims", "Tensor.transpose",
  "Tensor.transpose_", "Tensor.swapaxes", "Tensor.swapdims", NULL };
static const char *const t_aliases[] = { "torch.t", "Tensor.t", "Tensor.t_", NULL };
static const char *const contiguous_aliases[] = { "Tensor.contiguous", NULL };
static const char *const squeeze_aliases[] = {
  "torch.squeeze", "Tensor.squeeze", "Tensor.squeeze_", NULL };
static const char *const unsqueeze_aliases[] = {
  "torch.unsqueeze", "Tensor.unsqueeze", "Tensor.unsqueeze_", NULL };
static const char *const expand_aliases[] = { "Tensor.expand", NULL };
static const char *const expand_as_aliases[] = { "Tensor.expand_as", NULL };
static const char *const repeat_aliases[] = { "Tensor.repeat", NULL };
static const char *const size_aliases[] = { "Tensor.size", NULL };
static const char *const dim_aliases[] = {
  "Tensor.dim", "Tensor.ndimension", NULL };
static const char *const numel_aliases[] = {
  "torch.numel", "Tensor.numel", "Tensor.nelement", NULL };
static const char *const roll_aliases[] = { "torch.roll", "Tensor.roll", NULL };

/* Ops that keep the elements in order (reshape, view, unflatten,
 * contiguous, squeeze, unsqueeze): the gradient is the output's, in the
 * input's shape. */
static NnValue *
same_elements_backward (NnModule *self, NnCall *call, const NnArgs *args,
                        const NnValue *out, const NnValue *grad_out,
                        GError **error)
{
  NnTensor *g = nn_value_get_tensor (grad_out);
  NnValue *res = nn_value_new_tuple ();
  nn_value_append (res, nn_value_take_tensor (
                            nn_tensor_reshape (g, &nn_args_tensor (args, 0)->shape)));
  return res;
}

static NN_OPS_VIEW_GRAD_TYPE (reshape_type, "reshape", "the same elements in a new shape",
                    sizes_args, reshape_aliases, reshape_fn, same_elements_backward);
static NN_OPS_VIEW_GRAD_TYPE (view_type, "view", "the same elements in a new shape",
                    sizes_args, view_aliases, reshape_fn, same_elements_backward);
static NN_OPS_VIEW_GRAD_TYPE (unflatten_type, "unflatten", "splits dim into sizes",
                    unflatten_args, unflatten_aliases, unflatten_fn, same_elements_backward);
NN_OPS_MOVE_TYPE (permute_type, "permute", "reorders the dims",
                    permute_args, permute_aliases, permute_fn);
NN_OPS_MOVE_VIEW_TYPE (transpose_type, "transpose", "swaps dim0 and dim1",
                    transpose_args, transpose_aliases, transpose_fn);
NN_OPS_MOVE_VIEW_TYPE (t_type, "t", "transposes a 2-d tensor", one_args,
                    t_aliases, t_fn);
static NN_OPS_VIEW_GRAD_TYPE (contiguous_type, "contiguous", "the input itself",
                    contiguous_args, contiguous_aliases, contiguous_fn, same_elements_backward);
static NN_OPS_VIEW_GRAD_TYPE (squeeze_type, "squeeze", "drops size-1 dims",
                    opt_dim_args, squeeze_aliases, squeeze_fn, same_elements_backward);
static NN_OPS_VIEW_GRAD_TYPE (unsqueeze_type, "unsqueeze", "inserts a size-1 dim",
                    dim_args, unsqueeze_aliases, unsqueeze_fn, same_elements_backward);
NN_OPS_MOVE_VIEW_TYPE (expand_type, "expand", "broadcasts to sizes",
                    expand_args, expand_aliases, expand_fn);
NN_OPS_MOVE_VIEW_TYPE (expand_as_type, "expand_as", "broadcasts to other's shape",
                    expand_as_args, expand_as_aliases, expand_as_fn);
NN_OPS_MOVE_TYPE (repeat_type, "repeat", "tiles the tensor", repeat_args,
                    repeat_aliases, repeat_fn);
static NN_OPS_TYPE (size_type, "size", "the sizes as a tuple, or one int",
                    opt_dim_args, size_aliases, size_fn);
static NN_OPS_TYPE (dim_type, "dim", "the number of dims", one_args,
                    dim_aliases, dim_fn);
static NN_OPS_TYPE (numel_type, "numel", "the number of elements", numel_args,
                    numel_aliases, numel_fn);
NN_OPS_MOVE_TYPE (roll_type, "roll", "rotates elements along dims",
                    roll_args, roll_aliases, roll_fn);

const NnLayerType *const nn_ops_shape_types[] = {
  &reshape_type, &view_type, &unflatten_type, &permute_type, &transpose_type,
  &t_type, &contiguous_type, &squeeze_type, &unsqueeze_type, &expand_type,
  &expand_as_type, &repeat_type, &size_type, &dim_type, &numel_type,
  &roll_type, &flip_type, &tile_type, &unfold_type, &repeat_interleave_type, &len_type, NULL,
};
