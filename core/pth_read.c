/* nnkit core: a torch.save zip file as a name -> tensor map.  The
 * unpickled value is searched for the state_dict (the top dict, or a
 * checkpoint entry), each tensor's layout is checked against its storage,
 * and its elements are gathered, contiguous and little-endian, into the
 * map. */
#include "pth-private.h"
#include "weights-private.h"

#include <string.h>

typedef struct {
  const char *path;
  NnPthZip *zip;
  gboolean big_endian;
  /* The last storage read: views of one storage come in a row. */
  char *cached_key;
  guint8 *cached;
} PthReader;

static gboolean
pv_is_state_dict (const NnPv *v)
{
  if (v->kind != NN_PV_DICT)
    return FALSE;
  for (guint i = 0; i + 1 < v->items->len; i += 2) {
    const NnPv *k = v->items->pdata[i], *t = v->items->pdata[i + 1];
    if (k->kind != NN_PV_STR || t->kind != NN_PV_TENSOR)
      return FALSE;
  }
  return TRUE;
}

static char *
dict_keys_text (const NnPv *d, gboolean only_state_dicts)
{
  GString *s = g_string_new (NULL);
  guint shown = 0;
  for (guint i = 0; i + 1 < d->items->len; i += 2) {
    const NnPv *k = d->items->pdata[i], *v = d->items->pdata[i + 1];
    if (only_state_dicts && (!pv_is_state_dict (v) || v->items->len == 0))
      continue;
    if (shown++ == 12) {
      g_string_append (s, ", ...");
      break;
    }
    if (s->len)
      g_string_append (s, ", ");
    if (k->kind == NN_PV_STR)
      g_string_append_printf (s, "'%s' (%s)", k->str.s, nn_pv_kind_name (v));
    else
      g_string_append_printf (s, "a %s key", nn_pv_kind_name (k));
  }
  if (s->len == 0)
    g_string_append (s, "none");
  return g_string_free (s, FALSE);
}

/* Finds the state_dict: the top value itself, entry @key, or the one
 * entry that is a non-empty dict of tensors.  *@key_out names the entry
 * used (transfer none, nullable). */
static const NnPv *
find_state_dict (const char *path, const NnPv *top, const char *key,
                 const char **key_out, GError **error)
{
  *key_out = NULL;
  if (top->kind != NN_PV_DICT) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_HEADER,
                 "%s: holds a %s, expected a state_dict or a checkpoint "
                 "dict", path, nn_pv_kind_name (top));
    return NULL;
  }
  if (key == NULL && pv_is_state_dict (top))
    return top;
  const NnPv *found = NULL;
  guint candidates = 0;
  for (guint i = 0; i + 1 < top->items->len; i += 2) {
    const NnPv *k = top->items->pdata[i], *v = top->items->pdata[i + 1];
    if (k->kind != NN_PV_STR)
      continue;
    if (key ? strcmp (k->str.s, key) == 0
            : pv_is_state_dict (v) && v->items->len > 0) {
      found = v;
      *key_out = k->str.s;
      candidates++;
    }
  }
  if (key && found == NULL) {
    g_autofree char *keys = dict_keys_text (top, FALSE);
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_NOT_FOUND,
                 "%s: no entry '%s' in the checkpoint dict; its entries: %s",
                 path, key, keys);
    return NULL;
  }
  if (key && !pv_is_state_dict (found)) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_HEADER,
                 "%s: entry '%s' is a %s, expected a state_dict (a dict of "
                 "tensors)", path, key, found->kind == NN_PV_DICT
                 ? "dict holding non-tensor values" : nn_pv_kind_name (found));
    return NULL;
  }
  if (candidates != 1) {
    g_autofree char *keys = dict_keys_text (top, FALSE);
    g_autofree char *sds = dict_keys_text (top, TRUE);
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_NOT_FOUND,
                 "%s: a checkpoint dict, not a state_dict (entries: %s); "
                 "name the entry holding the state_dict with a key (nnctl "
                 "--key NAME, or --weights-key NAME with a model); entries "
                 "that are dicts of tensors: %s",
                 path, keys, sds);
    return NULL;
  }
  return found;
}

/* Checks @t's size, stride and offset against its storage; returns the
 * element count. */
static gboolean
check_layout (PthReader *r, const char *name, const NnPv *t, gint64 *numel,
              GError **error)
{
  const NnPv *s = t->tensor.storage;
  const NnShape *size = &t->tensor.size;
  guint64 n = 1, last = (guint64) t->tensor.offset;
  if (t->tensor.offset < 0) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_OFFSETS,
                 "%s: tensor '%s': storage offset %" G_GINT64_FORMAT
                 " is negative", r->path, name, t->tensor.offset);
    return FALSE;
  }
  for (guint i = 0; i < size->ndim; i++) {
    if (size->dims[i] < 0 || t->tensor.stride[i] < 0) {
      g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_SHAPE,
                   "%s: tensor '%s': dimension %u has size %" G_GINT64_FORMAT
                   " and stride %" G_GINT64_FORMAT ", expected both >= 0",
                   r->path, name, i, size->dims[i], t->tensor.stride[i]);
      return FALSE;
    }
    if (__builtin_mul_overflow (n, (guint64) size->dims[i], &n) ||
        n > (guint64) G_MAXINT64 / 8) {
      g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_SHAPE,
                   "%s: tensor '%s': element count overflows", r->path, name);
      return FALSE;
    }
  }
  for (guint i = 0; n > 0 && i < size->ndim; i++) {
    guint64 step;
    if (__builtin_mul_overflow ((guint64) (size->dims[i] - 1),
                                (guint64) t->tensor.stride[i], &step) ||
        __builtin_add_overflow (last, step, &last)) {
      g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_OFFSETS,
                   "%s: tensor '%s': strides overflow", r->path, name);
      return FALSE;
    }
  }
  if (n > 0 && last >= (guint64) s->storage.numel) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_OFFSETS,
                 "%s: tensor '%s' reaches element %" G_GUINT64_FORMAT
                 " of storage '%s', which holds %" G_GINT64_FORMAT
                 " (storage out of range)", r->path, name, last,
                 s->storage.key, s->storage.numel);
    return FALSE;
  }
  *numel = (gint64) n;
  return TRUE;
}

static const guint8 *
read_storage (PthReader *r, const NnPv *s, GError **error)
{
  if (r->cached_key && strcmp (r->cached_key, s->storage.key) == 0)
    return r->cached;
  g_clear_pointer (&r->cached_key, g_free);
  g_clear_pointer (&r->cached, g_free);
  guint64 nbytes;
  if (__builtin_mul_overflow ((guint64) s->storage.numel,
                              (guint64) s->storage.type->elsize, &nbytes) ||
      nbytes > (guint64) G_MAXINT64) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_SHAPE,
                 "%s: storage '%s': byte size overflows", r->path,
                 s->storage.key);
    return NULL;
  }
  g_autofree char *member = g_strconcat ("data/", s->storage.key, NULL);
  gsize len;
  r->cached = nn_pth_zip_read (r->zip, member, (gint64) nbytes, &len, error);
  if (r->cached == NULL)
    return NULL;
  r->cached_key = g_strdup (s->storage.key);
  return r->cached;
}

/* One element of the file's byte order to a little-endian element of the
 * map's dtype (int16 widened to I32, bools made 0 or 1). */
static void
put_element (const NnPthStorageType *type, gboolean big_endian,
             const guint8 *src, guint8 *dst)
{
  guint8 le[8];
  guint k = type->elsize;
  for (guint i = 0; i < k; i++)
    le[i] = big_endian ? src[k - 1 - i] : src[i];
  if (type->dtype == NN_DTYPE_BOOL) {
    dst[0] = le[0] != 0;
    return;
  }
  if (!type->widen) {
    memcpy (dst, le, k);
    return;
  }
  guint out = (guint) nn_dtype_size (type->dtype);
  guint8 fill = type->is_signed && (le[k - 1] & 0x80) ? 0xff : 0;
  for (guint i = 0; i < out; i++)
    dst[i] = i < k ? le[i] : fill;
}

static gboolean
add_tensor (PthReader *r, NnStBuilder *b, const char *file_name,
            const char *name, const NnPv *t, GError **error)
{
  gint64 numel;
  if (!check_layout (r, file_name, t, &numel, error))
    return FALSE;
  const NnPv *s = t->tensor.storage;
  const guint8 *src = read_storage (r, s, error);
  if (src == NULL) {
    g_prefix_error (error, "tensor '%s': ", file_name);
    return FALSE;
  }
  const NnPthStorageType *type = s->storage.type;
  guint8 *dst = nn_st_builder_add (b, name, type->dtype, &t->tensor.size,
                                   error);
  if (dst == NULL)
    return FALSE;
  /* Walk the elements in row-major order; the index vector replaces
   * nested loops over up to NN_MAX_DIMS dimensions. */
  const NnShape *size = &t->tensor.size;
  gint64 idx[NN_MAX_DIMS] = { 0 };
  gint64 at = t->tensor.offset;
  gsize out_size = nn_dtype_size (type->dtype);
  for (gint64 e = 0; e < numel; e++) {
    put_element (type, r->big_endian, src + (gsize) at * type->elsize,
                 dst + (gsize) e * out_size);
    for (gint d = (gint) size->ndim - 1; d >= 0; d--) {
      if (++idx[d] < size->dims[d]) {
        at += t->tensor.stride[d];
        break;
      }
      at -= (idx[d] - 1) * t->tensor.stride[d];
      idx[d] = 0;
    }
  }
  return TRUE;
}

static gboolean
read_byteorder (PthReader *r, GError **error)
{
  if (!nn_pth_zip_has (r->zip, "byteorder"))
    return TRUE; /* written from torch 1.10 on; older files are little */
  gsize len;
  g_autofree guint8 *bo = nn_pth_zip_read (r->zip, "byteorder", -1, &len,
                                           error);
  if (bo == NULL)
    return FALSE;
  if (len == 6 && memcmp (bo, "little", 6) == 0)
    return TRUE;
  if (len == 3 && memcmp (bo, "big", 3) == 0) {
    r->big_endian = TRUE;
    return TRUE;
  }
  g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_HEADER,
               "%s: byteorder member holds '%.*s', expected 'little' or "
               "'big'", r->path, (int) MIN (len, 16), (const char *) bo);
  return FALSE;
}

NnSafetensors *
nn_pth_open (const char *path, const NnWeightsOpenOptions *opts,
             GError **error)
{
  PthReader r = { .path = path };
  NnSafetensors *result = NULL;
  NnPickle *pickle = NULL;
  NnStBuilder *b = NULL;
  g_autofree guint8 *pkl = NULL;
  g_autofree char *what = NULL;
  g_autoptr (GPtrArray) names = g_ptr_array_new ();
  NnWeightsRename rn = { 0 };
  const char *key_used = NULL;
  gsize pkl_len;

  r.zip = nn_pth_zip_open (path, error);
  if (r.zip == NULL || !read_byteorder (&r, error))
    goto out;
  pkl = nn_pth_zip_read (r.zip, "data.pkl", -1, &pkl_len, error);
  if (pkl == NULL)
    goto out;
  what = g_strdup_printf ("%s: %sdata.pkl", path, nn_pth_zip_prefix (r.zip));
  pickle = nn_pickle_load (pkl, pkl_len, what, error);
  if (pickle == NULL)
    goto out;
  const NnPv *sd = find_state_dict (path, nn_pickle_result (pickle),
                                    opts ? opts->key : NULL, &key_used,
                                    error);
  if (sd == NULL)
    goto out;

  for (guint i = 0; i < sd->items->len; i += 2)
    g_ptr_array_add (names, ((NnPv *) sd->items->pdata[i])->str.s);
  nn_weights_rename_plan (&rn, names, opts);
  b = nn_st_builder_new (path, error);
  if (b == NULL)
    goto out_rename;
  for (guint i = 0; i < sd->items->len; i += 2) {
    const char *file_name = ((NnPv *) sd->items->pdata[i])->str.s;
    g_autofree char *name = nn_weights_rename (&rn, file_name);
    if (!add_tensor (&r, b, file_name, name, sd->items->pdata[i + 1], error))
      goto out_rename;
  }
  nn_st_builder_set_metadata (b, NN_WEIGHTS_META_FORMAT, "pth");
  if (key_used)
    nn_st_builder_set_metadata (b, NN_WEIGHTS_META_KEY, key_used);
  nn_weights_rename_finish (&rn, b);
  result = nn_st_builder_finish (g_steal_pointer (&b), error);
  goto out;

out_rename:
  nn_weights_rename_finish (&rn, NULL);
out:
  nn_st_builder_free (b);
  nn_pickle_free (pickle);
  nn_pth_zip_free (r.zip);
  g_free (r.cached_key);
  g_free (r.cached);
  return result;
}
