/* ops plugin: arange, linspace, tril/triu_indices, zeros, ones, full,
 * empty, their _like and Tensor.new_ forms, and tensor() from a number or
 * nested lists.  Sizes may be ints computed in the graph; dtype is a string ("torch.int64"); device,
 * layout, requires_grad, pin_memory and memory_format are accepted and
 * ignored, as nnkit runs on the CPU only.  In shape inference the result
 * is a meta tensor. */
#include "ops.h"

#include <math.h>

#define IGNORED(name_) { name_, NN_ARG_ANY, NN_OPS_ALL, \
  NN_ARG_OPTIONAL | NN_ARG_KW_ONLY, "null", "accepted and ignored" }
#define FACTORY_KWARGS IGNORED ("layout"), IGNORED ("device"), \
  IGNORED ("pin_memory"), IGNORED ("requires_grad"), IGNORED ("memory_format")
#define DTYPE_KW { "dtype", NN_ARG_STRING | NN_ARG_NONE, 0, \
  NN_ARG_OPTIONAL | NN_ARG_KW_ONLY, "null", "result dtype" }

static gboolean
number (const NnValue *v, double *out)
{
  gint64 i;
  if (nn_value_kind (v) == NN_VALUE_FLOAT)
    {
      *out = nn_value_get_float (v);
      return TRUE;
    }
  if (nn_value_kind (v) == NN_VALUE_TENSOR && !nn_tensor_is_meta (nn_value_get_tensor (v))
      && nn_tensor_numel (nn_value_get_tensor (v)) == 1)
    {
      *out = nn_ops_get_f (nn_value_get_tensor (v), 0);
      return TRUE;
    }
  if (!nn_ops_int_value (v, &i))
    return FALSE;
  *out = (double) i;
  return TRUE;
}

static gboolean
is_float_number (const NnValue *v)
{
  if (nn_value_kind (v) == NN_VALUE_TENSOR)
    return nn_dtype_is_float (nn_value_get_tensor (v)->dtype);
  return nn_value_kind (v) == NN_VALUE_FLOAT;
}

/* A filled tensor; @fill is read only when not meta. */
static NnValue *
filled (NnCall *call, NnDType dt, const NnShape *shape, double fill,
        GError **error)
{
  for (guint i = 0; i < shape->ndim; i++)
    if (shape->dims[i] < 0)
      {
        g_autofree char *s = nn_shape_to_string (shape);
        nn_ops_shape_fail (error, "Trying to create tensor with negative "
                           "dimension %" G_GINT64_FORMAT ": %s",
                           shape->dims[i], s);
        return NULL;
      }
  gboolean meta = nn_call_is_meta (call);
  NnTensor *out = nn_ops_new (meta, dt, shape, error);
  if (!out || meta || fill == 0)
    return nn_ops_take (out);
  gint64 n = nn_tensor_numel (out);
  for (gint64 k = 0; k < n; k++)
    nn_ops_set_f (out, k, fill);
  return nn_value_take_tensor (out);
}

static gboolean
read_shape (const NnValue *v, NnShape *shape, GError **error)
{
  gint64 sizes[NN_MAX_DIMS];
  guint n;
  if (!nn_ops_sizes (v, "size", sizes, &n, error))
    return FALSE;
  return nn_shape_set (shape, n, sizes);
}

static gboolean
read_dtype (const NnArgs *args, guint i, NnDType *dt, GError **error)
{
  gboolean given;
  return nn_ops_dtype_arg (nn_args_get (args, i), dt, &given, error);
}

static NnValue *
const_fill (NnCall *call, const NnArgs *args, double fill, GError **error)
{
  NnShape shape;
  NnDType dt = NN_DTYPE_F32;
  if (!read_shape (nn_args_get (args, 0), &shape, error)
      || !read_dtype (args, 1, &dt, error))
    return NULL;
  return filled (call, dt, &shape, fill, error);
}

static NnValue *
zeros_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return const_fill (call, args, 0, error);
}

static NnValue *
ones_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return const_fill (call, args, 1, error);
}

/* full's dtype follows fill_value: bool, int64 or float32. */
static NnDType
fill_dtype (const NnValue *v)
{
  switch (nn_value_kind (v))
    {
    case NN_VALUE_BOOL: return NN_DTYPE_BOOL;
    case NN_VALUE_INT: return NN_DTYPE_I64;
    case NN_VALUE_TENSOR: return nn_value_get_tensor (v)->dtype;
    default: return NN_DTYPE_F32;
    }
}

static NnValue *
full_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnShape shape;
  double fill;
  NnValue *fv = nn_args_get (args, 1);
  NnDType dt = fill_dtype (fv);
  if (!read_shape (nn_args_get (args, 0), &shape, error)
      || !read_dtype (args, 2, &dt, error))
    return NULL;
  if (!number (fv, &fill))
    {
      nn_ops_fail (error, "full(): fill_value must be a number");
      return NULL;
    }
  return filled (call, dt, &shape, fill, error);
}

static NnValue *
like (NnCall *call, const NnArgs *args, guint dtype_arg, double fill,
      GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  NnDType dt = in->dtype;
  if (!read_dtype (args, dtype_arg, &dt, error))
    return NULL;
  return filled (call, dt, &in->shape, fill, error);
}

static NnValue *
zeros_like_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return like (call, args, 1, 0, error);
}

static NnValue *
ones_like_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return like (call, args, 1, 1, error);
}

static NnValue *
full_like_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  double fill;
  if (!number (nn_args_get (args, 1), &fill))
    {
      nn_ops_fail (error, "full_like(): fill_value must be a number");
      return NULL;
    }
  return like (call, args, 2, fill, error);
}

/* Tensor.new_zeros(size) and friends: the dtype of self unless given. */
static NnValue *
new_fill (NnCall *call, const NnArgs *args, gboolean with_value, double fill,
          GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  NnShape shape;
  NnDType dt = in->dtype;
  guint dti = with_value ? 3 : 2;
  if (with_value && !number (nn_args_get (args, 2), &fill))
    {
      nn_ops_fail (error, "new_full(): fill_value must be a number");
      return NULL;
    }
  if (!read_shape (nn_args_get (args, 1), &shape, error)
      || !read_dtype (args, dti, &dt, error))
    return NULL;
  return filled (call, dt, &shape, fill, error);
}

static NnValue *
new_zeros_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return new_fill (call, args, FALSE, 0, error);
}

static NnValue *
new_ones_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return new_fill (call, args, FALSE, 1, error);
}

static NnValue *
new_full_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return new_fill (call, args, TRUE, 0, error);
}

/* arange(end), arange(start, end), arange(start, end, step). */
static NnValue *
arange_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnValue *a = nn_args_get (args, 0), *b = nn_args_get (args, 1),
          *c = nn_args_get (args, 2);
  double start = 0, end, step = 1;
  gboolean fl = is_float_number (a) || is_float_number (b)
                || is_float_number (c);
  if (nn_value_is_none (b))
    {
      if (!number (a, &end))
        goto bad;
    }
  else if (!number (a, &start) || !number (b, &end))
    goto bad;
  if (!number (c, &step))
    goto bad;
  NnDType dt = fl ? NN_DTYPE_F32 : NN_DTYPE_I64;
  if (!read_dtype (args, 3, &dt, error))
    return NULL;
  if (step == 0)
    {
      nn_ops_fail (error, "step must be nonzero");
      return NULL;
    }
  if (!isfinite (start) || !isfinite (end))
    {
      nn_ops_fail (error, "unsupported range: %g -> %g", start, end);
      return NULL;
    }
  if ((step > 0 && end < start) || (step < 0 && end > start))
    {
      nn_ops_fail (error, "upper bound and larger bound inconsistent with "
                   "step sign");
      return NULL;
    }
  double count = ceil ((end - start) / step);
  /* Beyond 2^53 elements no double counts exactly, nor memory holds it. */
  if (count > 9007199254740992.0)
    {
      nn_ops_fail (error, "arange(): %g elements are too many", count);
      return NULL;
    }
  NnShape shape = { 1, { (gint64) count } };
  gboolean meta = nn_call_is_meta (call);
  NnTensor *out = nn_ops_new (meta, dt, &shape, error);
  if (!out || meta)
    return nn_ops_take (out);
  for (gint64 k = 0; k < shape.dims[0]; k++)
    {
      if (nn_dtype_is_float (dt))
        nn_ops_set_f (out, k, start + (double) k * step);
      else
        nn_ops_set_i (out, k, (gint64) start + k * (gint64) step);
    }
  return nn_value_take_tensor (out);

bad:
  nn_ops_fail (error, "arange(): start, end and step must be numbers");
  return NULL;
}

/* linspace(start, end, steps): as PyTorch's CPU kernel, the first half
 * counted up from start and the second down from end, so both ends are
 * exact. */
static NnValue *
linspace_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  double start, end;
  gint64 steps = nn_args_int (args, 2);
  if (!number (nn_args_get (args, 0), &start) || !number (nn_args_get (args, 1), &end))
    {
      nn_ops_fail (error, "linspace(): start and end must be numbers");
      return NULL;
    }
  NnDType dt = NN_DTYPE_F32;
  if (!read_dtype (args, 3, &dt, error))
    return NULL;
  if (steps < 0)
    {
      nn_ops_fail (error, "number of steps must be non-negative");
      return NULL;
    }
  NnShape shape = { 1, { steps } };
  gboolean meta = nn_call_is_meta (call);
  NnTensor *out = nn_ops_new (meta, dt, &shape, error);
  if (!out || meta)
    return nn_ops_take (out);
  double step = steps > 1 ? (end - start) / (double) (steps - 1) : 0;
  for (gint64 k = 0; k < steps; k++)
    nn_ops_set_f (out, k, k < steps / 2 || steps == 1 ? start + step * (double) k
                                        : end - step * (double) (steps - 1 - k));
  return nn_value_take_tensor (out);
}

/* tril_indices / triu_indices(row, col, offset=0): the [2, N] int64
 * coordinates of a row x col matrix's lower (upper) triangle, row-major
 * (DLRM's pairwise interactions). */
static NnValue *
tri_indices (NnCall *call, const NnArgs *args, gboolean upper, GError **error)
{
  gint64 rows = nn_args_int (args, 0), cols = nn_args_int (args, 1), off = nn_args_int (args, 2);
  NnDType dt = NN_DTYPE_I64;
  if (!read_dtype (args, 3, &dt, error))
    return NULL;
  if (rows < 0 || cols < 0)
    {
      nn_ops_fail (error, "%s must be non-negative, got%" G_GINT64_FORMAT,
                   rows < 0 ? "row" : "col", rows < 0 ? rows : cols);
      return NULL;
    }
  gint64 n = 0;
  for (gint64 i = 0; i < rows; i++)
    {
      /* Columns j of row i in the triangle: j - i <= off (lower), >= off (upper). */
      gint64 lo = upper ? MAX (i + off, 0) : 0, hi = upper ? cols : MIN (i + off + 1, cols);
      n += MAX (hi - lo, 0);
    }
  NnShape shape = { 2, { 2, n } };
  gboolean meta = nn_call_is_meta (call);
  NnTensor *out = nn_ops_new (meta, dt, &shape, error);
  if (!out || meta)
    return nn_ops_take (out);
  gint64 k = 0;
  for (gint64 i = 0; i < rows; i++)
    {
      gint64 lo = upper ? MAX (i + off, 0) : 0, hi = upper ? cols : MIN (i + off + 1, cols);
      for (gint64 j = lo; j < hi; j++, k++)
        {
          nn_ops_set_i (out, k, i);
          nn_ops_set_i (out, n + k, j);
        }
    }
  return nn_value_take_tensor (out);
}

static NnValue *
tril_indices_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return tri_indices (call, args, FALSE, error);
}

static NnValue *
triu_indices_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return tri_indices (call, args, TRUE, error);
}

/* eye(n, m=None): ones on the diagonal of an n x m matrix. */
static NnValue *
eye_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  gint64 n = nn_args_int (args, 0);
  NnValue *mv = nn_args_get (args, 1);
  gint64 m = nn_value_is_none (mv) ? n : nn_value_get_int (mv);
  NnDType dt = NN_DTYPE_F32;
  if (!read_dtype (args, 2, &dt, error))
    return NULL;
  if (n < 0 || m < 0)
    {
      nn_ops_fail (error, "%s must be greater or equal to 0, got %" G_GINT64_FORMAT,
                   n < 0 ? "n" : "m", n < 0 ? n : m);
      return NULL;
    }
  NnShape shape = { 2, { n, m } };
  g_autoptr (NnValue) zeros = filled (call, dt, &shape, 0, error);
  if (!zeros || nn_call_is_meta (call))
    return g_steal_pointer (&zeros);
  NnTensor *t = nn_value_get_tensor (zeros);
  for (gint64 i = 0; i < MIN (n, m); i++)
    nn_ops_set_f (t, i * m + i, 1);
  return g_steal_pointer (&zeros);
}

/* The nested lists of numbers in @v: their shape, and whether any is a
 * float or all are bools. */
static gboolean
data_shape (const NnValue *v, guint depth, NnShape *shape, gint *leaf_depth,
            gboolean *any_float, gboolean *all_bool, GError **error)
{
  NnValueKind k = nn_value_kind (v);
  if (k == NN_VALUE_TUPLE || k == NN_VALUE_LIST)
    {
      /* Numbers must all sit at one depth, the result's ndim. */
      if (*leaf_depth >= 0 && (gint) depth >= *leaf_depth)
        return nn_ops_fail (error, "tensor(): ragged nested sequence at dim "
                            "%u", depth);
      guint n = nn_value_n_items (v);
      if (depth >= NN_MAX_DIMS)
        return nn_ops_fail (error, "tensor(): too many nested lists");
      if (shape->ndim == depth)
        {
          shape->dims[shape->ndim++] = n;
        }
      else if (shape->ndim < depth || shape->dims[depth] != n)
        return nn_ops_fail (error, "expected sequence of length %"
                            G_GINT64_FORMAT " at dim %u (got %u)",
                            shape->ndim > depth ? shape->dims[depth] : 0,
                            depth, n);
      for (guint i = 0; i < n; i++)
        if (!data_shape (nn_value_item (v, i), depth + 1, shape, leaf_depth,
                         any_float, all_bool, error))
          return FALSE;
      return TRUE;
    }
  if (!nn_ops_is_scalar_value (v))
    return nn_ops_fail (error, "tensor(): could not infer dtype of %s",
                        nn_value_kind_name (k));
  if (shape->ndim > depth || (*leaf_depth >= 0 && *leaf_depth != (gint) depth))
    return nn_ops_fail (error, "tensor(): ragged nested sequence at dim %u",
                        depth);
  *leaf_depth = (gint) depth;
  *any_float |= k == NN_VALUE_FLOAT;
  *all_bool &= k == NN_VALUE_BOOL;
  return TRUE;
}

static void
fill_data (NnTensor *t, const NnValue *v, gint64 *at)
{
  NnValueKind k = nn_value_kind (v);
  if (k == NN_VALUE_TUPLE || k == NN_VALUE_LIST)
    {
      for (guint i = 0; i < nn_value_n_items (v); i++)
        fill_data (t, nn_value_item (v, i), at);
      return;
    }
  if (k == NN_VALUE_FLOAT)
    nn_ops_set_f (t, (*at)++, nn_value_get_float (v));
  else
    nn_ops_set_i (t, (*at)++, nn_value_get_int (v));
}

static NnValue *
from_data (NnCall *call, const NnValue *data, NnDType *dt, gboolean dt_given,
           GError **error)
{
  if (nn_value_kind (data) == NN_VALUE_TENSOR)
    {
      NnTensor *t = nn_value_get_tensor (data);
      return nn_ops_take (nn_tensor_to_dtype (t, dt_given ? *dt : t->dtype));
    }
  NnShape shape = { 0 };
  gboolean any_float = FALSE, all_bool = TRUE;
  gint leaf_depth = -1;
  if (!data_shape (data, 0, &shape, &leaf_depth, &any_float, &all_bool, error))
    return NULL;
  if (!dt_given)
    *dt = any_float ? NN_DTYPE_F32 : all_bool ? NN_DTYPE_BOOL : NN_DTYPE_I64;
  NnTensor *out = nn_ops_new (FALSE, *dt, &shape, error);
  if (!out)
    return NULL;
  gint64 at = 0;
  fill_data (out, data, &at);
  /* A constant keeps its values in inference too: it may index or size. */
  return nn_value_take_tensor (out);
}

static NnValue *
tensor_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnDType dt = NN_DTYPE_F32;
  gboolean given;
  if (!nn_ops_dtype_arg (nn_args_get (args, 1), &dt, &given, error))
    return NULL;
  return from_data (call, nn_args_get (args, 0), &dt, given, error);
}

static NnValue *
new_tensor_fn (NnModule *self, NnCall *call, const NnArgs *args,
               GError **error)
{
  NnDType dt = nn_args_tensor (args, 0)->dtype;
  gboolean given; /* unused: without dtype, input's applies */
  if (!nn_ops_dtype_arg (nn_args_get (args, 2), &dt, &given, error))
    return NULL;
  return from_data (call, nn_args_get (args, 1), &dt, TRUE, error);
}

#define SIZE_VARARGS { "size", NN_ARG_ANY, NN_OPS_ALL, NN_ARG_VARIADIC, NULL, \
  "sizes, as ints or one tuple" }
#define T_IN { "input", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL, "tensor" }
#define NUMBER(name_, doc_) { name_, NN_ARG_SCALAR | NN_ARG_TENSOR, \
  NN_OPS_ALL, 0, NULL, doc_ }

static const NnArgSpec zeros_args[] = { SIZE_VARARGS, DTYPE_KW, FACTORY_KWARGS };
static const NnArgSpec full_args[] = {
  { "size", NN_ARG_SEQ, 0, 0, NULL, "sizes" },
  NUMBER ("fill_value", "the value"), DTYPE_KW, FACTORY_KWARGS };
static const NnArgSpec like_args[] = { T_IN, DTYPE_KW, FACTORY_KWARGS };
static const NnArgSpec full_like_args[] = {
  T_IN, NUMBER ("fill_value", "the value"), DTYPE_KW, FACTORY_KWARGS };
static const NnArgSpec new_args[] = {
  T_IN, SIZE_VARARGS, DTYPE_KW, FACTORY_KWARGS };
static const NnArgSpec new_full_args[] = {
  T_IN, { "size", NN_ARG_SEQ, 0, 0, NULL, "sizes" },
  NUMBER ("fill_value", "the value"), DTYPE_KW, FACTORY_KWARGS };
static const NnArgSpec arange_args[] = {
  NUMBER ("start", "start, or end when alone"),
  { "end", NN_ARG_SCALAR | NN_ARG_TENSOR | NN_ARG_NONE, NN_OPS_ALL,
    NN_ARG_OPTIONAL, "null", "end (exclusive)" },
  { "step", NN_ARG_SCALAR | NN_ARG_TENSOR, NN_OPS_ALL, NN_ARG_OPTIONAL, "1",
    "step" },
  DTYPE_KW, FACTORY_KWARGS,
};
static const NnArgSpec tensor_args[] = {
  { "data", NN_ARG_SCALAR | NN_ARG_SEQ | NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL,
    "a number or nested lists of numbers" },
  DTYPE_KW, FACTORY_KWARGS,
};
static const NnArgSpec new_tensor_args[] = {
  T_IN,
  { "data", NN_ARG_SCALAR | NN_ARG_SEQ | NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL,
    "a number or nested lists of numbers" },
  DTYPE_KW, FACTORY_KWARGS,
};

static const NnArgSpec eye_args[] = {
  { "n", NN_ARG_INT, 0, 0, NULL, "rows" },
  { "m", NN_ARG_INT | NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null",
    "columns (None: n)" },
  DTYPE_KW, FACTORY_KWARGS,
};
static const char *const eye_aliases[] = { "torch.eye", NULL };
static const NnArgSpec tri_indices_args[] = {
  { "row", NN_ARG_INT, 0, 0, NULL, "rows of the matrix" },
  { "col", NN_ARG_INT, 0, 0, NULL, "columns of the matrix" },
  { "offset", NN_ARG_INT, 0, NN_ARG_OPTIONAL, "0", "diagonal offset (> 0: above)" },
  DTYPE_KW, FACTORY_KWARGS,
};
static const char *const tril_indices_aliases[] = { "torch.tril_indices", NULL };
static const char *const triu_indices_aliases[] = { "torch.triu_indices", NULL };
static NN_OPS_TYPE (tril_indices_type, "tril_indices", "coordinates of a lower triangle",
                    tri_indices_args, tril_indices_aliases, tril_indices_fn);
static NN_OPS_TYPE (triu_indices_type, "triu_indices", "coordinates of an upper triangle",
                    tri_indices_args, triu_indices_aliases, triu_indices_fn);
static const NnArgSpec linspace_args[] = {
  NUMBER ("start", "first value"), NUMBER ("end", "last value"),
  { "steps", NN_ARG_INT, 0, 0, NULL, "number of values" },
  DTYPE_KW, FACTORY_KWARGS,
};
static const char *const linspace_aliases[] = { "torch.linspace", NULL };
static NN_OPS_TYPE (linspace_type, "linspace", "steps evenly spaced values from start to end",
                    linspace_args, linspace_aliases, linspace_fn);
static NN_OPS_TYPE (eye_type, "eye", "the identity matrix", eye_args,
                    eye_aliases, eye_fn);

static const char *const zeros_aliases[] = { "torch.zeros", NULL };
static const char *const empty_aliases[] = { "torch.empty", NULL };
static const char *const ones_aliases[] = { "torch.ones", NULL };
static const char *const full_aliases[] = { "torch.full", NULL };
static const char *const zeros_like_aliases[] = {
  "torch.zeros_like", "torch.empty_like", NULL };
static const char *const ones_like_aliases[] = { "torch.ones_like", NULL };
static const char *const full_like_aliases[] = { "torch.full_like", NULL };
static const char *const new_zeros_aliases[] = {
  "Tensor.new_zeros", "Tensor.new_empty", NULL };
static const char *const new_ones_aliases[] = { "Tensor.new_ones", NULL };
static const char *const new_full_aliases[] = { "Tensor.new_full", NULL };
static const char *const arange_aliases[] = { "torch.arange", NULL };
static const char *const tensor_aliases[] = {
  "torch.tensor", "torch.as_tensor", NULL };
static const char *const new_tensor_aliases[] = { "Tensor.new_tensor", NULL };

static NN_OPS_TYPE (zeros_type, "zeros", "a tensor of zeros", zeros_args,
                    zeros_aliases, zeros_fn);
static NN_OPS_TYPE (empty_type, "empty", "an uninitialised tensor (zeros)",
                    zeros_args, empty_aliases, zeros_fn);
static NN_OPS_TYPE (ones_type, "ones", "a tensor of ones", zeros_args,
                    ones_aliases, ones_fn);
static NN_OPS_TYPE (full_type, "full", "a tensor of fill_value", full_args,
                    full_aliases, full_fn);
static NN_OPS_TYPE (zeros_like_type, "zeros_like", "zeros of input's shape",
                    like_args, zeros_like_aliases, zeros_like_fn);
static NN_OPS_TYPE (ones_like_type, "ones_like", "ones of input's shape",
                    like_args, ones_like_aliases, ones_like_fn);
static NN_OPS_TYPE (full_like_type, "full_like",
                    "fill_value in input's shape", full_like_args,
                    full_like_aliases, full_like_fn);
static NN_OPS_TYPE (new_zeros_type, "new_zeros", "zeros of input's dtype",
                    new_args, new_zeros_aliases, new_zeros_fn);
static NN_OPS_TYPE (new_ones_type, "new_ones", "ones of input's dtype",
                    new_args, new_ones_aliases, new_ones_fn);
static NN_OPS_TYPE (new_full_type, "new_full", "fill_value in input's dtype",
                    new_full_args, new_full_aliases, new_full_fn);
static NN_OPS_TYPE (arange_type, "arange", "start, start + step, ... < end",
                    arange_args, arange_aliases, arange_fn);
static NN_OPS_TYPE (tensor_type, "tensor", "a tensor from nested lists",
                    tensor_args, tensor_aliases, tensor_fn);
static NN_OPS_TYPE (new_tensor_type, "new_tensor",
                    "a tensor from nested lists, input's dtype",
                    new_tensor_args, new_tensor_aliases, new_tensor_fn);

const NnLayerType *const nn_ops_create_types[] = {
  &zeros_type, &empty_type, &ones_type, &full_type, &zeros_like_type,
  &ones_like_type, &full_like_type, &new_zeros_type, &new_ones_type,
  &new_full_type, &arange_type, &tensor_type, &new_tensor_type, &eye_type,
  &linspace_type, &tril_indices_type, &triu_indices_type, NULL,
};
