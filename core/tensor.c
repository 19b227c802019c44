/* nnkit core: shapes and reference-counted tensors. */
#include "nn-private.h"

#include "safetensors-private.h"

#include <pthread.h>
#include <sanitizer/asan_interface.h>
#include <sys/mman.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

gint64
nn_shape_numel (const NnShape *shape)
{
  /* Saturates rather than wrapping: tensor creation refuses such shapes. */
  guint64 n = 1;
  for (guint i = 0; i < shape->ndim && i < NN_MAX_DIMS; i++) {
    if (shape->dims[i] < 0)
      return 0;
    if (!g_uint64_checked_mul (&n, n, (guint64) shape->dims[i])
        || n > (guint64) G_MAXINT64)
      return G_MAXINT64;
  }
  return (gint64) n;
}

gboolean
nn_shape_check_size (const NnShape *shape, const char *what, GError **error)
{
  gint64 n = 1;
  for (guint i = 0; i < shape->ndim; i++)
    if (__builtin_mul_overflow (n, shape->dims[i], &n) ||
        __builtin_mul_overflow (n, (gint64) sizeof (double), &(gint64){ 0 })) {
      g_autofree char *text = nn_shape_to_string (shape);
      g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_INVALID,
                   "%s %s has more elements than 64-bit sizes can count",
                   what, text);
      return FALSE;
    }
  return TRUE;
}

gboolean
nn_shape_equal (const NnShape *a, const NnShape *b)
{
  if (a->ndim != b->ndim)
    return FALSE;
  for (guint i = 0; i < a->ndim; i++)
    if (a->dims[i] != b->dims[i])
      return FALSE;
  return TRUE;
}

char *
nn_shape_to_string (const NnShape *shape)
{
  GString *s = g_string_new ("[");
  for (guint i = 0; i < shape->ndim; i++)
    g_string_append_printf (s, "%s%" G_GINT64_FORMAT, i ? ", " : "",
                            shape->dims[i]);
  g_string_append_c (s, ']');
  return g_string_free (s, FALSE);
}

gboolean
nn_shape_set (NnShape *out, guint ndim, const gint64 *dims)
{
  if (ndim > NN_MAX_DIMS)
    return FALSE;
  memset (out, 0, sizeof *out);
  out->ndim = ndim;
  for (guint i = 0; i < ndim; i++)
    out->dims[i] = dims[i];
  return TRUE;
}

gboolean
nn_shape_parse (const char *text, NnShape *out, GError **error)
{
  g_return_val_if_fail (text != NULL && out != NULL, FALSE);
  g_autofree char *body = g_strstrip (g_strdup (text));
  gsize len = strlen (body);
  if (len >= 2 && body[0] == '[' && body[len - 1] == ']') {
    body[len - 1] = '\0';
    memmove (body, body + 1, len - 1);
  }
  if (*g_strstrip (body) == '\0') {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_INVALID,
                 "shape '%s': expected positive integers separated by commas", text);
    return FALSE;
  }
  g_auto (GStrv) parts = g_strsplit (body, ",", -1);
  NnShape s = { 0 };
  for (guint i = 0; parts[i]; i++) {
    const char *p = g_strstrip (parts[i]);
    guint64 v;
    if (s.ndim == NN_MAX_DIMS) {
      g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_INVALID,
                   "shape '%s': more than %d dimensions", text, NN_MAX_DIMS);
      return FALSE;
    }
    if (!g_ascii_string_to_unsigned (p, 10, 1, G_MAXINT32, &v, NULL)) {
      g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_INVALID,
                   "shape '%s': expected positive integers separated by "
                   "commas, found '%s'", text, p);
      return FALSE;
    }
    s.dims[s.ndim++] = (gint64) v;
  }
  if (!nn_shape_check_size (&s, "shape", error))
    return FALSE;
  *out = s;
  return TRUE;
}

static gboolean
shape_nbytes (NnDType dtype, const NnShape *shape, gsize *out)
{
  gsize n = nn_dtype_size (dtype);
  if (n == 0 || shape->ndim > NN_MAX_DIMS)
    return FALSE;
  for (guint i = 0; i < shape->ndim; i++) {
    if (shape->dims[i] < 0 ||
        !g_size_checked_mul (&n, n, (gsize) shape->dims[i]))
      return FALSE;
  }
  *out = n;
  return TRUE;
}

/* --- the storage pool ----------------------------------------------------
 * Activations of one size come and go every forward.  Left to glibc, the
 * blocks below its mmap threshold (which rises to the largest block freed,
 * up to 32 MiB) land somewhere else in the heap each forward, and every
 * page they ever touched stays resident: resnet18's heap grew from 2.4 to
 * 10.8 MB over its first three forwards while at most 4.9 MB of blocks
 * were live.  Blocks from POOL_MIN up are therefore kept here when their
 * tensor goes and handed out again best-fit, so that a repeated forward
 * reuses the same few blocks and neither maps nor faults in memory.  A
 * block no forward took for two forwards in a row goes back to the system
 * (a model run at changing input sizes would otherwise collect blocks of
 * every size up to the cap).  A block starts with its header; data is
 * 64-byte aligned after it. */
#define POOL_MIN ((gsize) 1 << 20)
/* While a training tape is live (nn_tensor_pool_training_begin), blocks
 * from this size up are kept too: a step frees all its activations and
 * gradients at its end, glibc returns the heap top to the system, and the
 * next step faulted every page in again (a third of a step's CPU time
 * for mobilenet_v2). */
#define POOL_TRAIN_MIN ((gsize) 256 << 10)
/* Blocks this large are kept however long they sit idle: glibc would map
 * and unmap each one (docs/ENGINE.md, "Memory"). */
#define POOL_KEEP_MIN ((gsize) 32 << 20)
#define POOL_ALIGN 64
/* Bytes a reused block may waste whatever its size (pool_take). */
#define POOL_SLACK ((gsize) 4 << 20)
/* Forwards a block below POOL_KEEP_MIN may sit unused before it is freed. */
#define POOL_IDLE_FORWARDS 2
typedef struct {
  gpointer base;      /* what calloc or malloc returned */
  gsize capacity;     /* usable bytes after data */
  guint64 taken;      /* pool_forwards when last handed out */
  gboolean churn;     /* last handed out in a forward or training step */
} PoolHeader;

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static GPtrArray *pool_free;   /* PoolHeader *, any order */
static gsize pool_bytes;       /* capacity held in pool_free */
static gsize pool_cap = G_MAXSIZE; /* G_MAXSIZE: not read yet */
static gsize pool_live;        /* capacity of pool blocks in use */
static gsize pool_train_peak;  /* the most pool_live + pool_bytes in training */
static gint pool_training;     /* live training tapes (atomic) */
static guint64 pool_forwards;  /* root forwards ended */
static gint pool_in_forward;   /* root forwards running (atomic) */

/* The smallest block kept now. */
static gsize
pool_min (void)
{
  return g_atomic_int_get (&pool_training) > 0 ? POOL_TRAIN_MIN : POOL_MIN;
}

/* Whether a forward or a training step is running: what it frees now is
 * asked for again by the next one. */
static gboolean
pool_churning (void)
{
  return g_atomic_int_get (&pool_in_forward) > 0
         || g_atomic_int_get (&pool_training) > 0;
}

/* NN_POOL_MB (default 512) caps what the pool keeps; 0 disables it. */
static gsize
pool_cap_locked (void)
{
  if (pool_cap == G_MAXSIZE) {
    const char *env = g_getenv ("NN_POOL_MB");
    guint64 mb = 512;
    if (env && !g_ascii_string_to_unsigned (env, 10, 0, 1 << 20, &mb, NULL))
      mb = 512;
    pool_cap = (gsize) mb << 20;
  }
  return pool_cap;
}

static PoolHeader *
header_of (gpointer data)
{
  return (PoolHeader *) ((char *) data - sizeof (PoolHeader));
}

/* Gives a kept block back to the system. */
static void
pool_free_block (PoolHeader *h)
{
  ASAN_UNPOISON_MEMORY_REGION ((char *) h + sizeof (PoolHeader), h->capacity);
  free (h->base);
}

static void
pool_release (gpointer data)
{
  PoolHeader *h = header_of (data);
  pthread_mutex_lock (&pool_lock);
  if (!pool_free)
    pool_free = g_ptr_array_new ();
  pool_live -= h->capacity;
  /* In training the pool may keep up to what a step held at once: the
   * next step asks for the same blocks again. */
  gsize cap = pool_cap_locked ();
  if (cap > 0 && pool_train_peak > cap)
    cap = pool_train_peak;
  /* Below POOL_KEEP_MIN, only blocks of a forward or a training step: a
   * model's load and teardown free blocks no forward asks for again. */
  gboolean churn = h->churn || h->capacity >= POOL_KEEP_MIN || pool_churning ();
  if (churn && h->capacity >= pool_min () && pool_bytes + h->capacity <= cap) {
    /* AddressSanitizer reports a read of a kept block as after free. */
    ASAN_POISON_MEMORY_REGION (data, h->capacity);
    g_ptr_array_add (pool_free, h);
    pool_bytes += h->capacity;
    h = NULL;
  }
  pthread_mutex_unlock (&pool_lock);
  if (h)
    free (h->base);
}

/* The peak counts the kept blocks too: what the process already holds.
 * Counting only those in use let a step whose sizes do not pair up with
 * the kept blocks free some at its end and map them again in the next. */
static void
pool_note_live_locked (gsize capacity)
{
  pool_live += capacity;
  if (g_atomic_int_get (&pool_training) > 0 && pool_live + pool_bytes > pool_train_peak)
    pool_train_peak = pool_live + pool_bytes;
}

/* The smallest kept block that holds @n bytes without wasting more than a
 * quarter of it or POOL_SLACK, whichever is more, or NULL.  Strict
 * quarters alone kept 7.6 MB of blocks for resnet18's forward where 5.6
 * serve it: its activations come in sizes a quarter apart. */
static gpointer
pool_take (gsize n, gboolean zero)
{
  PoolHeader *best = NULL;
  guint at = 0;
  pthread_mutex_lock (&pool_lock);
  for (guint i = 0; pool_free && i < pool_free->len; i++) {
    PoolHeader *h = pool_free->pdata[i];
    if (h->capacity >= n && h->capacity - n <= MAX (h->capacity / 4, POOL_SLACK)
        && (!best || h->capacity < best->capacity)) {
      best = h;
      at = i;
    }
  }
  if (best) {
    g_ptr_array_remove_index_fast (pool_free, at);
    pool_bytes -= best->capacity;
    best->taken = pool_forwards;
    best->churn = pool_churning ();
    pool_note_live_locked (best->capacity);
  }
  pthread_mutex_unlock (&pool_lock);
  if (!best)
    return NULL;
  gpointer data = (char *) best + sizeof (PoolHeader);
  ASAN_UNPOISON_MEMORY_REGION (data, best->capacity);
  if (zero)
    memset (data, 0, n);
  return data;
}

static gpointer
pool_alloc (gsize n, gboolean zero)
{
  /* A block below pool_min() is never kept, so it takes none that is:
   * provider storage of every size comes here, and resnet18's 0.8 MB
   * laid-out activations took the 3.2 MB kept for its stem's result,
   * which the next forward then allocated again (the pool grew to 6.1 MB
   * over three forwards). */
  gpointer data = n >= pool_min () ? pool_take (n, zero) : NULL;
  if (data)
    return data;
  /* Rounded to pages, so blocks of nearly equal sizes serve each other. */
  gsize cap = (n + 4095) & ~(gsize) 4095;
  gsize total;
  if (!g_size_checked_add (&total, cap, sizeof (PoolHeader) + POOL_ALIGN))
    return NULL;
  /* calloc: a fresh large block is untouched zero pages until written. */
  char *base = zero ? calloc (total, 1) : malloc (total);
  if (!base)
    return NULL;
  guintptr d = ((guintptr) base + sizeof (PoolHeader) + POOL_ALIGN - 1)
               & ~(guintptr) (POOL_ALIGN - 1);
  PoolHeader *h = header_of ((gpointer) d);
  h->base = base;
  h->capacity = cap;
  pthread_mutex_lock (&pool_lock);
  h->taken = pool_forwards;
  h->churn = pool_churning ();
  pool_note_live_locked (cap);
  pthread_mutex_unlock (&pool_lock);
  return (gpointer) d;
}

void
nn_tensor_pool_trim (void)
{
  pthread_mutex_lock (&pool_lock);
  GPtrArray *blocks = pool_free;
  pool_free = NULL;
  pool_bytes = 0;
  pool_train_peak = 0;  /* training's allowance is earned again */
  pthread_mutex_unlock (&pool_lock);
  for (guint i = 0; blocks && i < blocks->len; i++)
    pool_free_block (blocks->pdata[i]);
  if (blocks)
    g_ptr_array_unref (blocks);
}

void
nn_tensor_pool_forward_begin (void)
{
  g_atomic_int_inc (&pool_in_forward);
}

void
nn_tensor_pool_forward_end (void)
{
  GPtrArray *idle = NULL;

  g_atomic_int_add (&pool_in_forward, -1);
  pthread_mutex_lock (&pool_lock);
  pool_forwards++;
  /* A training step takes back what the last one freed; its allowance
   * (pool_train_peak) is trimmed by nn_tensor_pool_trim() only. */
  if (g_atomic_int_get (&pool_training) == 0) {
    for (guint i = pool_free ? pool_free->len : 0; i-- > 0;) {
      PoolHeader *h = pool_free->pdata[i];
      if (h->capacity >= POOL_KEEP_MIN
          || h->taken + POOL_IDLE_FORWARDS >= pool_forwards)
        continue;
      if (!idle)
        idle = g_ptr_array_new ();
      g_ptr_array_add (idle, h);
      g_ptr_array_remove_index_fast (pool_free, i);
      pool_bytes -= h->capacity;
    }
  }
  pthread_mutex_unlock (&pool_lock);
  for (guint i = 0; idle && i < idle->len; i++)
    pool_free_block (idle->pdata[i]);
  if (idle)
    g_ptr_array_unref (idle);
}

void
nn_tensor_pool_training_begin (void)
{
  g_atomic_int_inc (&pool_training);
}

void
nn_tensor_pool_training_end (void)
{
  g_atomic_int_add (&pool_training, -1);
}

gsize
nn_tensor_pool_get_bytes (void)
{
  pthread_mutex_lock (&pool_lock);
  gsize n = pool_bytes;
  pthread_mutex_unlock (&pool_lock);
  return n;
}

gboolean
nn_tensor_owns_storage (const NnTensor *t)
{
  /* A laid-out tensor made plain keeps its laid values for its provider:
   * an in-place write would leave them stale, so it is never a target. */
  return !t->meta && !t->read_only && !t->layout
         && (t->release == pool_release || t->release == free);
}

/* Storage for @nbytes: the pool for blocks from pool_min() up, else the
 * heap. */
static gpointer
storage_alloc (gsize nbytes, gboolean zero, GDestroyNotify *release)
{
  if (nbytes >= pool_min ()) {
    *release = pool_release;
    return pool_alloc (nbytes, zero);
  }
  *release = free;
  /* calloc, not malloc + memset: small blocks come from the heap. */
  return zero ? calloc (MAX (nbytes, 1), 1) : malloc (MAX (nbytes, 1));
}

gpointer
nn_tensor_storage_new (gsize nbytes)
{
  /* Always with a header, so that nn_tensor_storage_free() need not know
   * the size; blocks below pool_min() are freed, not kept. */
  return pool_alloc (MAX (nbytes, 1), FALSE);
}

void
nn_tensor_storage_free (gpointer data)
{
  if (data)
    pool_release (data);
}

gpointer
nn_tensor_storage_alloc (gsize nbytes, GDestroyNotify *release)
{
  return storage_alloc (nbytes, TRUE, release);
}

static NnTensor *
tensor_new (NnDType dtype, const NnShape *shape, gboolean zero)
{
  gsize nbytes;
  if (!shape_nbytes (dtype, shape, &nbytes))
    return NULL;
  GDestroyNotify release;
  gpointer data = storage_alloc (nbytes, zero, &release);
  if (!data)
    return NULL;
  NnTensor *t = g_new0 (NnTensor, 1);
  t->dtype = dtype;
  t->shape = *shape;
  t->ref_count = 1;
  t->data = data;
  t->release = release;
  t->release_data = data;
  return t;
}

NnTensor *
nn_tensor_new (NnDType dtype, const NnShape *shape)
{
  return tensor_new (dtype, shape, TRUE);
}

NnTensor *
nn_tensor_new_uninitialized (NnDType dtype, const NnShape *shape)
{
  return tensor_new (dtype, shape, FALSE);
}

NnTensor *
nn_tensor_new_borrowed (NnDType dtype, const NnShape *shape, gpointer data,
                        gboolean read_only, GDestroyNotify release,
                        gpointer release_data)
{
  gsize nbytes;
  if (!shape_nbytes (dtype, shape, &nbytes))
    return NULL;
  NnTensor *t = g_new0 (NnTensor, 1);
  t->dtype = dtype;
  t->shape = *shape;
  t->data = data;
  t->ref_count = 1;
  t->release = release;
  t->release_data = release_data;
  t->read_only = read_only;
  return t;
}

NnTensor *
nn_tensor_new_meta (NnDType dtype, const NnShape *shape)
{
  gsize nbytes;
  if (!shape_nbytes (dtype, shape, &nbytes))
    return NULL;
  NnTensor *t = g_new0 (NnTensor, 1);
  t->dtype = dtype;
  t->shape = *shape;
  t->ref_count = 1;
  t->meta = TRUE;
  return t;
}

gboolean
nn_tensor_is_meta (const NnTensor *t)
{
  return t != NULL && t->meta;
}

void
nn_tensor_mark_written (NnTensor *t)
{
  g_return_if_fail (t != NULL);
  /* The provider's laid copy no longer matches the written plain data. */
  if (t->layout)
    __atomic_store_n (&t->laid_stale, 1, __ATOMIC_RELEASE);
  __atomic_add_fetch (&t->version, 1, __ATOMIC_RELEASE);
}

guint64
nn_tensor_get_version (const NnTensor *t)
{
  g_return_val_if_fail (t != NULL, 0);
  return __atomic_load_n (&t->version, __ATOMIC_ACQUIRE);
}

NnTensor *
nn_tensor_copy (const NnTensor *src)
{
  if (src->meta)
    return nn_tensor_new_meta (src->dtype, &src->shape);
  /* A copy is plain: the values are converted first (once, in place). */
  if (!nn_tensor_make_plain ((NnTensor *) src, NULL))
    return NULL;
  NnTensor *t = nn_tensor_new (src->dtype, &src->shape);
  if (t)
    memcpy (t->data, src->data, nn_tensor_nbytes (src));
  return t;
}

static void
drop_parent (gpointer p)
{
  nn_tensor_unref (p);
}

NnTensor *
nn_tensor_reshape (NnTensor *src, const NnShape *shape)
{
  if (shape->ndim > NN_MAX_DIMS
      || nn_shape_numel (shape) != nn_tensor_numel (src))
    return NULL;
  if (src->meta)
    return nn_tensor_new_meta (src->dtype, shape);
  /* A view shares the plain data, never the provider's layout. */
  if (!nn_tensor_make_plain (src, NULL))
    return NULL;
  return nn_tensor_new_borrowed (src->dtype, shape, src->data,
                                 src->read_only, drop_parent,
                                 nn_tensor_ref (src));
}

void
nn_tensor_release_pages (NnTensor *t)
{
  g_return_if_fail (t != NULL);
  const NnTensor *owner = t;

  /* A reshaped view borrows its parent: the storage is the root's. */
  while (owner->release == drop_parent)
    owner = owner->release_data;
  if (t->meta || !t->data || !t->read_only || !owner->read_only
      || !nn_st_is_mapping_release (owner->release))
    return;
  /* Clean pages of a private file mapping: MADV_DONTNEED unmaps them and
   * the next read maps the page cache's again, the same bytes.  Unlike
   * MADV_PAGEOUT it leaves the page cache alone, so neither this process
   * nor the next reads the file from disk again.  Whole pages inside the
   * tensor only: a neighbour's bytes are never touched. */
  gsize page = (gsize) sysconf (_SC_PAGESIZE);
  guintptr begin = ((guintptr) t->data + page - 1) & ~(guintptr) (page - 1);
  guintptr end = ((guintptr) t->data + nn_tensor_nbytes (t)) & ~(guintptr) (page - 1);
  if (end > begin)
    (void) madvise ((void *) begin, end - begin, MADV_DONTNEED);
}

gboolean
nn_tensor_get_file_key (const NnTensor *t, guint64 key[6])
{
  g_return_val_if_fail (t != NULL && key != NULL, FALSE);
  const NnTensor *owner = t;

  while (owner->release == drop_parent)
    owner = owner->release_data;
  if (t->meta || !t->data || !t->read_only || !owner->read_only
      || !nn_st_is_mapping_release (owner->release))
    return FALSE;
  return nn_st_origin_key (owner->release_data, t->data, key);
}

NnTensor *
nn_tensor_ref (NnTensor *t)
{
  g_return_val_if_fail (t != NULL, NULL);
  g_atomic_int_inc (&t->ref_count);
  return t;
}

void
nn_tensor_unref (NnTensor *t)
{
  if (t == NULL)
    return;
  if (!g_atomic_int_dec_and_test (&t->ref_count))
    return;
  if (t->release)
    t->release (t->release_data);
  if (t->layout)
    nn_tensor_layout_clear (t);
  g_free (t);
}

gint64
nn_tensor_numel (const NnTensor *t)
{
  return nn_shape_numel (&t->shape);
}

gsize
nn_tensor_nbytes (const NnTensor *t)
{
  return (gsize) nn_tensor_numel (t) * nn_dtype_size (t->dtype);
}

gboolean
nn_tensor_is_read_only (const NnTensor *t)
{
  return t->read_only;
}

float *
nn_tensor_f32 (const NnTensor *t)
{
  return t->dtype == NN_DTYPE_F32 ? t->data : NULL;
}

gint64 *
nn_tensor_i64 (const NnTensor *t)
{
  return t->dtype == NN_DTYPE_I64 ? t->data : NULL;
}
