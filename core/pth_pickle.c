/* nnkit core: a restricted unpickler for torch.save's data.pkl.
 *
 * It knows only the opcodes a state_dict or a checkpoint dict of plain
 * values needs, and only a whitelist of globals, each mapped to a C
 * function that builds a value: nothing in the stream is ever executed.
 * Any other opcode (INST, OBJ, NEWOBJ, EXT*, the text protocol) or global
 * (os.system, builtins.eval, a model class) is refused by name.  Values
 * live in an arena freed with the unpickler, so a stream that makes a list
 * contain itself cannot leak or loop at free time. */
#include "pth-private.h"

#include <string.h>

struct _NnPickle {
  const char *what;
  const guint8 *p;
  const guint8 *end;
  const guint8 *start;
  guint8 op;         /* opcode being run, for messages */
  GPtrArray *arena;  /* every NnPv made */
  GPtrArray *stack;  /* (element-type NnPv*) (transfer none) */
  GArray *marks;     /* guint: stack lengths at MARK */
  GHashTable *memo;  /* guint -> NnPv* */
  NnPv *result;
};

typedef gboolean (*NnPickleOp) (NnPickle *u, GError **error);
typedef NnPv *(*NnPthCall) (NnPickle *u, NnPv *args, GError **error);

struct _NnPthGlobal {
  const char *module;
  const char *name;
  NnPthCall call;                  /* (nullable) what REDUCE runs */
  const NnPthStorageType *storage; /* (nullable) a storage class */
};

/* Nothing a state_dict holds comes near these; they bound what a hostile
 * stream can make us hold. */
#define PICKLE_MAX_DEPTH_MARKS 100000u
#define PICKLE_MAX_VALUES (16u * 1024u * 1024u)

static void
pv_free (gpointer p)
{
  NnPv *v = p;
  if (v->kind == NN_PV_STR)
    g_free (v->str.s);
  else if (v->kind == NN_PV_TUPLE || v->kind == NN_PV_LIST ||
           v->kind == NN_PV_DICT)
    g_ptr_array_unref (v->items);
  else if (v->kind == NN_PV_STORAGE)
    g_free (v->storage.key);
  g_free (v);
}

void
nn_pickle_free (NnPickle *u)
{
  if (u == NULL)
    return;
  g_ptr_array_unref (u->stack);
  g_array_unref (u->marks);
  g_hash_table_unref (u->memo);
  g_ptr_array_unref (u->arena);
  g_free (u);
}

NnPv *
nn_pickle_result (NnPickle *u)
{
  return u->result;
}

const char *
nn_pv_kind_name (const NnPv *v)
{
  static const char *const names[] = {
    [NN_PV_NONE] = "None", [NN_PV_BOOL] = "bool", [NN_PV_INT] = "int",
    [NN_PV_FLOAT] = "float", [NN_PV_STR] = "str", [NN_PV_TUPLE] = "tuple",
    [NN_PV_LIST] = "list", [NN_PV_DICT] = "dict", [NN_PV_GLOBAL] = "global",
    [NN_PV_STORAGE] = "storage", [NN_PV_TENSOR] = "tensor",
  };
  return names[v->kind];
}

static NnPv *
pv_new (NnPickle *u, NnPvKind kind)
{
  NnPv *v = g_new0 (NnPv, 1);
  v->kind = kind;
  if (kind == NN_PV_TUPLE || kind == NN_PV_LIST || kind == NN_PV_DICT)
    v->items = g_ptr_array_new ();
  g_ptr_array_add (u->arena, v);
  return v;
}

/* --- errors --------------------------------------------------------------- */

static const char *op_name (guint8 op);

static gboolean
fail (NnPickle *u, GError **error, int code, const char *fmt, ...)
  G_GNUC_PRINTF (4, 5);

static gboolean
fail (NnPickle *u, GError **error, int code, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (error, NN_WEIGHTS_ERROR, code, "%s: opcode %s at byte %"
               G_GSIZE_FORMAT ": %s", u->what, op_name (u->op),
               (gsize) (u->p - u->start - 1), msg);
  return FALSE;
}

/* --- reading the stream --------------------------------------------------- */

static gboolean
take (NnPickle *u, gsize n, const guint8 **out, GError **error)
{
  if ((gsize) (u->end - u->p) < n)
    return fail (u, error, NN_WEIGHTS_ERROR_HEADER,
                 "needs %" G_GSIZE_FORMAT " more bytes, the stream ends "
                 "(truncated pickle)", n);
  *out = u->p;
  u->p += n;
  return TRUE;
}

static gboolean
take_uint (NnPickle *u, guint nbytes, guint64 *out, GError **error)
{
  const guint8 *b = NULL;
  if (!take (u, nbytes, &b, error))
    return FALSE;
  guint64 v = 0;
  for (guint i = 0; i < nbytes; i++)
    v |= (guint64) b[i] << (8 * i);
  *out = v;
  return TRUE;
}

static void
push (NnPickle *u, NnPv *v)
{
  g_ptr_array_add (u->stack, v);
}

/* The stack above the innermost mark must hold @n values. */
static gboolean
need (NnPickle *u, guint n, GError **error)
{
  guint floor = u->marks->len ? g_array_index (u->marks, guint,
                                               u->marks->len - 1) : 0;
  if (u->stack->len < floor + n)
    return fail (u, error, NN_WEIGHTS_ERROR_HEADER,
                 "needs %u value(s) on the stack, found %u (corrupt pickle)",
                 n, u->stack->len - floor);
  return TRUE;
}

static NnPv *
pop (NnPickle *u)
{
  return g_ptr_array_steal_index (u->stack, u->stack->len - 1);
}

static NnPv *
top (NnPickle *u)
{
  return u->stack->pdata[u->stack->len - 1];
}

/* Pops the values above the innermost mark, and the mark. */
static gboolean
pop_mark (NnPickle *u, guint *from, GError **error)
{
  if (u->marks->len == 0)
    return fail (u, error, NN_WEIGHTS_ERROR_HEADER,
                 "no MARK on the stack (corrupt pickle)");
  *from = g_array_index (u->marks, guint, u->marks->len - 1);
  g_array_set_size (u->marks, u->marks->len - 1);
  return TRUE;
}

static NnPv *
str_new (NnPickle *u, const guint8 *b, gsize len)
{
  NnPv *v = pv_new (u, NN_PV_STR);
  v->str.s = g_strndup ((const char *) b, len);
  v->str.len = len;
  return v;
}

/* --- opcodes -------------------------------------------------------------- */

static gboolean
op_proto (NnPickle *u, GError **error)
{
  guint64 v;
  if (!take_uint (u, 1, &v, error))
    return FALSE;
  if (v > 5)
    return fail (u, error, NN_WEIGHTS_ERROR_HEADER,
                 "pickle protocol %u, expected 2 to 5", (guint) v);
  return TRUE;
}

static gboolean
op_frame (NnPickle *u, GError **error)
{
  guint64 v;
  return take_uint (u, 8, &v, error); /* framing is only a read hint */
}

static gboolean
op_stop (NnPickle *u, GError **error)
{
  if (u->stack->len != 1 || u->marks->len != 0)
    return fail (u, error, NN_WEIGHTS_ERROR_HEADER,
                 "stack holds %u value(s) and %u mark(s), expected one "
                 "value (corrupt pickle)", u->stack->len, u->marks->len);
  u->result = pop (u);
  return TRUE;
}

static gboolean
op_mark (NnPickle *u, GError **error)
{
  if (u->marks->len >= PICKLE_MAX_DEPTH_MARKS)
    return fail (u, error, NN_WEIGHTS_ERROR_HEADER, "too many open MARKs");
  guint at = u->stack->len;
  g_array_append_val (u->marks, at);
  return TRUE;
}

static gboolean
op_empty_dict (NnPickle *u, GError **error)
{
  push (u, pv_new (u, NN_PV_DICT));
  return TRUE;
}

static gboolean
op_empty_list (NnPickle *u, GError **error)
{
  push (u, pv_new (u, NN_PV_LIST));
  return TRUE;
}

static gboolean
op_empty_tuple (NnPickle *u, GError **error)
{
  push (u, pv_new (u, NN_PV_TUPLE));
  return TRUE;
}

static gboolean
tuple_of (NnPickle *u, guint n, GError **error)
{
  if (!need (u, n, error))
    return FALSE;
  NnPv *t = pv_new (u, NN_PV_TUPLE);
  for (guint i = u->stack->len - n; i < u->stack->len; i++)
    g_ptr_array_add (t->items, u->stack->pdata[i]);
  g_ptr_array_set_size (u->stack, u->stack->len - n);
  push (u, t);
  return TRUE;
}

static gboolean
op_tuple1 (NnPickle *u, GError **error)
{
  return tuple_of (u, 1, error);
}

static gboolean
op_tuple2 (NnPickle *u, GError **error)
{
  return tuple_of (u, 2, error);
}

static gboolean
op_tuple3 (NnPickle *u, GError **error)
{
  return tuple_of (u, 3, error);
}

static gboolean
op_tuple (NnPickle *u, GError **error)
{
  guint from = 0;
  if (!pop_mark (u, &from, error))
    return FALSE;
  return tuple_of (u, u->stack->len - from, error);
}

/* APPEND(S) and SETITEM(S) extend the container below the mark. */
static gboolean
extend (NnPickle *u, guint from, NnPvKind kind, GError **error)
{
  if (from == 0)
    return fail (u, error, NN_WEIGHTS_ERROR_HEADER,
                 "no container below the items (corrupt pickle)");
  NnPv *c = u->stack->pdata[from - 1];
  if (c->kind != kind)
    return fail (u, error, NN_WEIGHTS_ERROR_HEADER,
                 "expected a %s to add items to, found a %s",
                 kind == NN_PV_LIST ? "list" : "dict", nn_pv_kind_name (c));
  guint n = u->stack->len - from;
  if (kind == NN_PV_DICT && n % 2 != 0)
    return fail (u, error, NN_WEIGHTS_ERROR_HEADER,
                 "odd number of values (%u) for key/value pairs", n);
  for (guint i = from; i < u->stack->len; i++)
    g_ptr_array_add (c->items, u->stack->pdata[i]);
  g_ptr_array_set_size (u->stack, from);
  return TRUE;
}

static gboolean
op_append (NnPickle *u, GError **error)
{
  if (!need (u, 2, error))
    return FALSE;
  return extend (u, u->stack->len - 1, NN_PV_LIST, error);
}

static gboolean
op_appends (NnPickle *u, GError **error)
{
  guint from = 0;
  return pop_mark (u, &from, error) && extend (u, from, NN_PV_LIST, error);
}

static gboolean
op_setitem (NnPickle *u, GError **error)
{
  if (!need (u, 3, error))
    return FALSE;
  return extend (u, u->stack->len - 2, NN_PV_DICT, error);
}

static gboolean
op_setitems (NnPickle *u, GError **error)
{
  guint from = 0;
  return pop_mark (u, &from, error) && extend (u, from, NN_PV_DICT, error);
}

static gboolean
unicode_of (NnPickle *u, guint len_bytes, GError **error)
{
  guint64 n;
  const guint8 *b = NULL;
  if (!take_uint (u, len_bytes, &n, error))
    return FALSE;
  if (n > (guint64) (u->end - u->p))
    return fail (u, error, NN_WEIGHTS_ERROR_HEADER,
                 "string of %" G_GUINT64_FORMAT " bytes runs past the end "
                 "of the stream (%" G_GSIZE_FORMAT " left)", n,
                 (gsize) (u->end - u->p));
  if (!take (u, (gsize) n, &b, error))
    return FALSE;
  if (!g_utf8_validate ((const char *) b, (gssize) n, NULL))
    return fail (u, error, NN_WEIGHTS_ERROR_HEADER, "string is not UTF-8");
  push (u, str_new (u, b, (gsize) n));
  return TRUE;
}

static gboolean
op_short_binunicode (NnPickle *u, GError **error)
{
  return unicode_of (u, 1, error);
}

static gboolean
op_binunicode (NnPickle *u, GError **error)
{
  return unicode_of (u, 4, error);
}

static gboolean
op_binunicode8 (NnPickle *u, GError **error)
{
  return unicode_of (u, 8, error);
}

static gboolean
int_of (NnPickle *u, guint nbytes, gboolean is_signed, GError **error)
{
  guint64 v;
  if (!take_uint (u, nbytes, &v, error))
    return FALSE;
  NnPv *x = pv_new (u, NN_PV_INT);
  if (is_signed && nbytes == 4)
    x->i = (gint32) (guint32) v;
  else
    x->i = (gint64) v;
  push (u, x);
  return TRUE;
}

static gboolean
op_binint (NnPickle *u, GError **error)
{
  return int_of (u, 4, TRUE, error);
}

static gboolean
op_binint1 (NnPickle *u, GError **error)
{
  return int_of (u, 1, FALSE, error);
}

static gboolean
op_binint2 (NnPickle *u, GError **error)
{
  return int_of (u, 2, FALSE, error);
}

/* LONG1: a little-endian two's complement integer of n bytes. */
static gboolean
op_long1 (NnPickle *u, GError **error)
{
  guint64 n = 0, v = 0;
  const guint8 *b = NULL;
  if (!take_uint (u, 1, &n, error))
    return FALSE;
  if (n > 8)
    return fail (u, error, NN_WEIGHTS_ERROR_HEADER,
                 "integer of %u bytes does not fit 64 bits", (guint) n);
  if (!take (u, (gsize) n, &b, error))
    return FALSE;
  for (guint i = 0; i < n; i++)
    v |= (guint64) b[i] << (8 * i);
  if (n > 0 && n < 8 && (b[n - 1] & 0x80))
    v |= ~(guint64) 0 << (8 * n);
  NnPv *x = pv_new (u, NN_PV_INT);
  x->i = (gint64) v;
  push (u, x);
  return TRUE;
}

static gboolean
op_binfloat (NnPickle *u, GError **error)
{
  const guint8 *b = NULL;
  if (!take (u, 8, &b, error))
    return FALSE;
  guint64 bits = 0;
  for (guint i = 0; i < 8; i++)
    bits = (bits << 8) | b[i]; /* big-endian, unlike everything else */
  NnPv *x = pv_new (u, NN_PV_FLOAT);
  memcpy (&x->f, &bits, 8);
  push (u, x);
  return TRUE;
}

static gboolean
op_none (NnPickle *u, GError **error)
{
  push (u, pv_new (u, NN_PV_NONE));
  return TRUE;
}

static gboolean
bool_of (NnPickle *u, gboolean b)
{
  NnPv *x = pv_new (u, NN_PV_BOOL);
  x->b = b;
  push (u, x);
  return TRUE;
}

static gboolean
op_newtrue (NnPickle *u, GError **error)
{
  return bool_of (u, TRUE);
}

static gboolean
op_newfalse (NnPickle *u, GError **error)
{
  return bool_of (u, FALSE);
}

static gboolean
memo_put (NnPickle *u, guint64 key, GError **error)
{
  if (!need (u, 1, error))
    return FALSE;
  g_hash_table_insert (u->memo, GUINT_TO_POINTER ((guint) key), top (u));
  return TRUE;
}

static gboolean
op_binput (NnPickle *u, GError **error)
{
  guint64 k;
  return take_uint (u, 1, &k, error) && memo_put (u, k, error);
}

static gboolean
op_long_binput (NnPickle *u, GError **error)
{
  guint64 k;
  return take_uint (u, 4, &k, error) && memo_put (u, k, error);
}

static gboolean
op_memoize (NnPickle *u, GError **error)
{
  return memo_put (u, g_hash_table_size (u->memo), error);
}

static gboolean
memo_get (NnPickle *u, guint64 key, GError **error)
{
  NnPv *v = g_hash_table_lookup (u->memo, GUINT_TO_POINTER ((guint) key));
  if (v == NULL)
    return fail (u, error, NN_WEIGHTS_ERROR_HEADER,
                 "memo entry %" G_GUINT64_FORMAT " was never stored", key);
  push (u, v);
  return TRUE;
}

static gboolean
op_binget (NnPickle *u, GError **error)
{
  guint64 k;
  return take_uint (u, 1, &k, error) && memo_get (u, k, error);
}

static gboolean
op_long_binget (NnPickle *u, GError **error)
{
  guint64 k;
  return take_uint (u, 4, &k, error) && memo_get (u, k, error);
}

static gboolean
op_pop (NnPickle *u, GError **error)
{
  if (!need (u, 1, error))
    return FALSE;
  pop (u);
  return TRUE;
}

/* --- globals ---------------------------------------------------------------- */

static NnPv *
call_ordered_dict (NnPickle *u, NnPv *args, GError **error)
{
  if (args->items->len != 0) {
    fail (u, error, NN_WEIGHTS_ERROR_HEADER,
          "collections.OrderedDict called with %u argument(s), expected none",
          args->items->len);
    return NULL;
  }
  return pv_new (u, NN_PV_DICT);
}

static gboolean
int_tuple (NnPv *v, guint *n, gint64 *out)
{
  if (v->kind != NN_PV_TUPLE || v->items->len > NN_MAX_DIMS)
    return FALSE;
  for (guint i = 0; i < v->items->len; i++) {
    NnPv *x = v->items->pdata[i];
    if (x->kind != NN_PV_INT)
      return FALSE;
    out[i] = x->i;
  }
  *n = v->items->len;
  return TRUE;
}

/* _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
 * backward_hooks[, metadata]): only the layout is kept; the bounds are
 * checked where the tensor's key is known (pth_read.c). */
static NnPv *
call_rebuild_tensor (NnPickle *u, NnPv *args, GError **error)
{
  GPtrArray *a = args->items;
  if (a->len != 6 && a->len != 7) {
    fail (u, error, NN_WEIGHTS_ERROR_HEADER, "_rebuild_tensor_v2 called "
          "with %u arguments, expected 6 or 7", a->len);
    return NULL;
  }
  NnPv *storage = a->pdata[0], *offset = a->pdata[1];
  gint64 size[NN_MAX_DIMS], stride[NN_MAX_DIMS];
  guint nsize = 0, nstride = 0;
  if (storage->kind != NN_PV_STORAGE || offset->kind != NN_PV_INT ||
      !int_tuple (a->pdata[2], &nsize, size) ||
      !int_tuple (a->pdata[3], &nstride, stride) || nsize != nstride) {
    fail (u, error, NN_WEIGHTS_ERROR_SHAPE, "_rebuild_tensor_v2 expects "
          "(storage, int offset, size tuple, stride tuple of the same "
          "length, at most %d dimensions), found (%s, %s, %s, %s)",
          NN_MAX_DIMS, nn_pv_kind_name (storage), nn_pv_kind_name (offset),
          nn_pv_kind_name (a->pdata[2]), nn_pv_kind_name (a->pdata[3]));
    return NULL;
  }
  NnPv *t = pv_new (u, NN_PV_TENSOR);
  t->tensor.storage = storage;
  t->tensor.offset = offset->i;
  t->tensor.size.ndim = nsize;
  for (guint i = 0; i < nsize; i++) {
    t->tensor.size.dims[i] = size[i];
    t->tensor.stride[i] = stride[i];
  }
  return t;
}

/* _rebuild_parameter(data, requires_grad, backward_hooks): the tensor. */
static NnPv *
call_rebuild_parameter (NnPickle *u, NnPv *args, GError **error)
{
  if (args->items->len != 3 ||
      ((NnPv *) args->items->pdata[0])->kind != NN_PV_TENSOR) {
    fail (u, error, NN_WEIGHTS_ERROR_HEADER, "_rebuild_parameter expects "
          "(tensor, requires_grad, hooks), found %u argument(s)",
          args->items->len);
    return NULL;
  }
  return args->items->pdata[0];
}

/* torch.device('cpu') or ('cuda', 0): kept as its text. */
static NnPv *
call_device (NnPickle *u, NnPv *args, GError **error)
{
  NnPv *first = args->items->len ? args->items->pdata[0] : NULL;
  if (first == NULL || first->kind != NN_PV_STR || args->items->len > 2) {
    fail (u, error, NN_WEIGHTS_ERROR_HEADER,
          "torch.device expects ('type'[, index])");
    return NULL;
  }
  return str_new (u, (const guint8 *) first->str.s, first->str.len);
}

#define ST(dt, size, sign, wide) { NN_DTYPE_##dt, size, sign, wide }
static const NnPthStorageType st_float = ST (F32, 4, TRUE, FALSE);
static const NnPthStorageType st_double = ST (F64, 8, TRUE, FALSE);
static const NnPthStorageType st_half = ST (F16, 2, TRUE, FALSE);
static const NnPthStorageType st_bf16 = ST (BF16, 2, TRUE, FALSE);
static const NnPthStorageType st_long = ST (I64, 8, TRUE, FALSE);
static const NnPthStorageType st_int = ST (I32, 4, TRUE, FALSE);
static const NnPthStorageType st_short = ST (I32, 2, TRUE, TRUE); /* no I16 */
static const NnPthStorageType st_char = ST (I8, 1, TRUE, FALSE);
static const NnPthStorageType st_byte = ST (U8, 1, FALSE, FALSE);
static const NnPthStorageType st_bool = ST (BOOL, 1, FALSE, FALSE);
#undef ST

/* The whole whitelist: what torch.save writes for state_dicts and for
 * checkpoint dicts of plain values. */
static const NnPthGlobal pth_globals[] = {
  { "collections", "OrderedDict", call_ordered_dict, NULL },
  { "torch._utils", "_rebuild_tensor_v2", call_rebuild_tensor, NULL },
  { "torch._utils", "_rebuild_parameter", call_rebuild_parameter, NULL },
  { "torch", "device", call_device, NULL },
  { "torch", "FloatStorage", NULL, &st_float },
  { "torch", "DoubleStorage", NULL, &st_double },
  { "torch", "HalfStorage", NULL, &st_half },
  { "torch", "BFloat16Storage", NULL, &st_bf16 },
  { "torch", "LongStorage", NULL, &st_long },
  { "torch", "IntStorage", NULL, &st_int },
  { "torch", "ShortStorage", NULL, &st_short },
  { "torch", "CharStorage", NULL, &st_char },
  { "torch", "ByteStorage", NULL, &st_byte },
  { "torch", "BoolStorage", NULL, &st_bool },
};

static gboolean
push_global (NnPickle *u, const char *module, gsize mlen, const char *name,
             gsize nlen, GError **error)
{
  for (guint i = 0; i < G_N_ELEMENTS (pth_globals); i++) {
    const NnPthGlobal *g = &pth_globals[i];
    if (strlen (g->module) == mlen && memcmp (g->module, module, mlen) == 0 &&
        strlen (g->name) == nlen && memcmp (g->name, name, nlen) == 0) {
      NnPv *v = pv_new (u, NN_PV_GLOBAL);
      v->global = g;
      push (u, v);
      return TRUE;
    }
  }
  /* The names come from the file: made valid UTF-8 before printing. */
  g_autofree char *m = g_utf8_make_valid (module, (gssize) MIN (mlen, 200));
  g_autofree char *n = g_utf8_make_valid (name, (gssize) MIN (nlen, 200));
  return fail (u, error, NN_WEIGHTS_ERROR_HEADER,
               "global '%s.%s' is not allowed: only tensors, storages and "
               "OrderedDict are, so the file is refused rather than run (a "
               "pickled model class or code; save model.state_dict() "
               "instead)", m, n);
}

/* GLOBAL: "module\nname\n". */
static gboolean
op_global (NnPickle *u, GError **error)
{
  const guint8 *nl1 = memchr (u->p, '\n', (gsize) (u->end - u->p));
  const guint8 *nl2 = nl1 ? memchr (nl1 + 1, '\n',
                                    (gsize) (u->end - nl1 - 1)) : NULL;
  if (nl2 == NULL)
    return fail (u, error, NN_WEIGHTS_ERROR_HEADER,
                 "module and name lines not terminated (truncated pickle)");
  const char *module = (const char *) u->p, *name = (const char *) nl1 + 1;
  gsize mlen = (gsize) (nl1 - u->p), nlen = (gsize) (nl2 - nl1 - 1);
  u->p = nl2 + 1;
  return push_global (u, module, mlen, name, nlen, error);
}

static gboolean
op_stack_global (NnPickle *u, GError **error)
{
  if (!need (u, 2, error))
    return FALSE;
  NnPv *name = pop (u), *module = pop (u);
  if (name->kind != NN_PV_STR || module->kind != NN_PV_STR)
    return fail (u, error, NN_WEIGHTS_ERROR_HEADER,
                 "module and name must be strings, found %s and %s",
                 nn_pv_kind_name (module), nn_pv_kind_name (name));
  return push_global (u, module->str.s, module->str.len, name->str.s,
                      name->str.len, error);
}

static gboolean
op_reduce (NnPickle *u, GError **error)
{
  if (!need (u, 2, error))
    return FALSE;
  NnPv *args = pop (u), *fn = pop (u);
  if (fn->kind != NN_PV_GLOBAL)
    return fail (u, error, NN_WEIGHTS_ERROR_HEADER,
                 "calls a %s, not an allowed callable",
                 nn_pv_kind_name (fn));
  if (fn->global->call == NULL)
    return fail (u, error, NN_WEIGHTS_ERROR_HEADER,
                 "calls '%s.%s', which this reader allows only as a storage "
                 "type, not as a callable", fn->global->module,
                 fn->global->name);
  if (args->kind != NN_PV_TUPLE)
    return fail (u, error, NN_WEIGHTS_ERROR_HEADER,
                 "arguments of '%s.%s' are a %s, expected a tuple",
                 fn->global->module, fn->global->name,
                 nn_pv_kind_name (args));
  NnPv *r = fn->global->call (u, args, error);
  if (r == NULL)
    return FALSE;
  push (u, r);
  return TRUE;
}

/* BUILD sets an object's state: the OrderedDict's _metadata of a
 * state_dict.  Only values we built ourselves take it, and it is dropped. */
static gboolean
op_build (NnPickle *u, GError **error)
{
  if (!need (u, 2, error))
    return FALSE;
  pop (u);
  NnPv *obj = top (u);
  if (obj->kind != NN_PV_DICT && obj->kind != NN_PV_TENSOR)
    return fail (u, error, NN_WEIGHTS_ERROR_HEADER,
                 "sets the state of a %s; only a dict or tensor may take "
                 "one", nn_pv_kind_name (obj));
  return TRUE;
}

static gboolean
key_is_safe (const NnPv *k)
{
  if (k->kind != NN_PV_STR || k->str.len == 0 || k->str.len > 64)
    return FALSE;
  for (gsize i = 0; i < k->str.len; i++)
    if (!g_ascii_isalnum (k->str.s[i]) && k->str.s[i] != '_')
      return FALSE;
  return TRUE;
}

/* BINPERSID: ('storage', StorageType, key, location, numel) names
 * member data/<key>; the key is checked so it cannot leave data/. */
static gboolean
op_binpersid (NnPickle *u, GError **error)
{
  if (!need (u, 1, error))
    return FALSE;
  NnPv *pid = pop (u);
  GPtrArray *a = pid->kind == NN_PV_TUPLE ? pid->items : NULL;
  NnPv *tag = a && a->len == 5 ? a->pdata[0] : NULL;
  if (tag == NULL || tag->kind != NN_PV_STR || strcmp (tag->str.s, "storage"))
    return fail (u, error, NN_WEIGHTS_ERROR_HEADER,
                 "persistent id is not ('storage', type, key, location, "
                 "numel)");
  NnPv *type = a->pdata[1], *key = a->pdata[2], *numel = a->pdata[4];
  if (type->kind != NN_PV_GLOBAL || type->global->storage == NULL)
    return fail (u, error, NN_WEIGHTS_ERROR_DTYPE,
                 "storage type is a %s%s%s, expected a torch.*Storage class",
                 nn_pv_kind_name (type),
                 type->kind == NN_PV_GLOBAL ? " " : "",
                 type->kind == NN_PV_GLOBAL ? type->global->name : "");
  if (!key_is_safe (key))
    return fail (u, error, NN_WEIGHTS_ERROR_HEADER,
                 "storage key is not a short alphanumeric name");
  if (numel->kind != NN_PV_INT || numel->i < 0)
    return fail (u, error, NN_WEIGHTS_ERROR_SHAPE,
                 "storage '%s' size is not a non-negative int", key->str.s);
  NnPv *s = pv_new (u, NN_PV_STORAGE);
  s->storage.type = type->global->storage;
  s->storage.type_name = type->global->name;
  s->storage.key = g_strdup (key->str.s);
  s->storage.numel = numel->i;
  push (u, s);
  return TRUE;
}

/* --- dispatch ------------------------------------------------------------- */

typedef struct {
  const char *name;
  NnPickleOp run; /* NULL: a known opcode that is refused */
} NnPickleOpInfo;

static const NnPickleOpInfo ops[256] = {
  [0x80] = { "PROTO", op_proto },
  [0x95] = { "FRAME", op_frame },
  ['.'] = { "STOP", op_stop },
  ['('] = { "MARK", op_mark },
  ['}'] = { "EMPTY_DICT", op_empty_dict },
  [']'] = { "EMPTY_LIST", op_empty_list },
  [')'] = { "EMPTY_TUPLE", op_empty_tuple },
  ['t'] = { "TUPLE", op_tuple },
  [0x85] = { "TUPLE1", op_tuple1 },
  [0x86] = { "TUPLE2", op_tuple2 },
  [0x87] = { "TUPLE3", op_tuple3 },
  ['a'] = { "APPEND", op_append },
  ['e'] = { "APPENDS", op_appends },
  ['s'] = { "SETITEM", op_setitem },
  ['u'] = { "SETITEMS", op_setitems },
  ['X'] = { "BINUNICODE", op_binunicode },
  [0x8c] = { "SHORT_BINUNICODE", op_short_binunicode },
  [0x8d] = { "BINUNICODE8", op_binunicode8 },
  ['J'] = { "BININT", op_binint },
  ['K'] = { "BININT1", op_binint1 },
  ['M'] = { "BININT2", op_binint2 },
  [0x8a] = { "LONG1", op_long1 },
  ['G'] = { "BINFLOAT", op_binfloat },
  ['N'] = { "NONE", op_none },
  [0x88] = { "NEWTRUE", op_newtrue },
  [0x89] = { "NEWFALSE", op_newfalse },
  ['q'] = { "BINPUT", op_binput },
  ['r'] = { "LONG_BINPUT", op_long_binput },
  [0x94] = { "MEMOIZE", op_memoize },
  ['h'] = { "BINGET", op_binget },
  ['j'] = { "LONG_BINGET", op_long_binget },
  ['0'] = { "POP", op_pop },
  ['c'] = { "GLOBAL", op_global },
  [0x93] = { "STACK_GLOBAL", op_stack_global },
  ['Q'] = { "BINPERSID", op_binpersid },
  ['R'] = { "REDUCE", op_reduce },
  ['b'] = { "BUILD", op_build },
  /* Known but refused: they build arbitrary objects or are not what
   * torch.save writes. */
  ['i'] = { "INST", NULL },
  ['o'] = { "OBJ", NULL },
  [0x81] = { "NEWOBJ", NULL },
  [0x92] = { "NEWOBJ_EX", NULL },
  [0x82] = { "EXT1", NULL },
  [0x83] = { "EXT2", NULL },
  [0x84] = { "EXT4", NULL },
  ['P'] = { "PERSID", NULL },
  ['I'] = { "INT", NULL },
  ['L'] = { "LONG", NULL },
  [0x8b] = { "LONG4", NULL },
  ['F'] = { "FLOAT", NULL },
  ['S'] = { "STRING", NULL },
  ['T'] = { "BINSTRING", NULL },
  ['U'] = { "SHORT_BINSTRING", NULL },
  ['V'] = { "UNICODE", NULL },
  ['B'] = { "BINBYTES", NULL },
  ['C'] = { "SHORT_BINBYTES", NULL },
  [0x8e] = { "BINBYTES8", NULL },
  [0x96] = { "BYTEARRAY8", NULL },
  [0x97] = { "NEXT_BUFFER", NULL },
  [0x98] = { "READONLY_BUFFER", NULL },
  ['d'] = { "DICT", NULL },
  ['l'] = { "LIST", NULL },
  ['g'] = { "GET", NULL },
  ['p'] = { "PUT", NULL },
  ['1'] = { "POP_MARK", NULL },
  ['2'] = { "DUP", NULL },
  [0x8f] = { "EMPTY_SET", NULL },
  [0x90] = { "ADDITEMS", NULL },
  [0x91] = { "FROZENSET", NULL },
};

static const char *
op_name (guint8 op)
{
  return ops[op].name ? ops[op].name : "(unknown)";
}

NnPickle *
nn_pickle_load (const guint8 *data, gsize len, const char *what,
                GError **error)
{
  g_autoptr (NnPickle) u = g_new0 (NnPickle, 1);
  u->what = what;
  u->start = u->p = data;
  u->end = data + len;
  u->arena = g_ptr_array_new_with_free_func (pv_free);
  u->stack = g_ptr_array_new ();
  u->marks = g_array_new (FALSE, FALSE, sizeof (guint));
  u->memo = g_hash_table_new (g_direct_hash, g_direct_equal);

  while (u->result == NULL) {
    if (u->p >= u->end) {
      g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_HEADER,
                   "%s: the pickle ends at byte %" G_GSIZE_FORMAT " without "
                   "STOP (truncated)", what, len);
      return NULL;
    }
    u->op = *u->p++;
    if (u->arena->len > PICKLE_MAX_VALUES) {
      fail (u, error, NN_WEIGHTS_ERROR_HEADER, "more than %u values: not a "
            "state_dict", PICKLE_MAX_VALUES);
      return NULL;
    }
    const NnPickleOpInfo *info = &ops[u->op];
    if (info->run == NULL) {
      if (info->name)
        fail (u, error, NN_WEIGHTS_ERROR_HEADER, "not allowed in a "
              "state_dict; the file is refused rather than run");
      else
        fail (u, error, NN_WEIGHTS_ERROR_HEADER, "unknown opcode 0x%02x "
              "(corrupt pickle)", u->op);
      return NULL;
    }
    if (!info->run (u, error))
      return NULL;
  }
  return g_steal_pointer (&u);
}
