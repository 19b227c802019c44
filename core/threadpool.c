/* nnkit core: the persistent thread pool plugins run parallel loops on.
 * Workers are created once (the default pool on first use, sized by
 * nn_get_num_threads()) and sleep between loops, so no forward starts a
 * thread.  One loop runs on a pool at a time; a second caller, or a
 * loop started from inside a loop, runs serially in its own thread
 * instead of waiting, so nothing can deadlock. */
#include "nn-private.h"
#include "nn-engine-private.h"

#include <pthread.h>

struct _NnThreadPool {
  /* pthread rather than GMutex/GCond: GLib's futex-based locks are
   * invisible to ThreadSanitizer, which checks this file. */
  pthread_mutex_t lock;   /* guards the fields below up to @busy */
  pthread_cond_t wake;    /* workers wait here for a new job */
  pthread_cond_t done;    /* the caller waits here for the workers */
  guint64 job;            /* bumped per loop */
  gboolean quit;
  NnParallelFunc func;
  gpointer data;
  gsize n;
  guint n_chunks;
  guint active_workers;   /* workers 0 .. active_workers-1 take chunks */
  guint pending;          /* workers yet to finish the current job */
  gint next_chunk;        /* atomic: next chunk to run */
  gint busy;              /* atomic: a loop owns the pool */
  GPtrArray *workers;     /* GThread * */
};

typedef struct {
  NnThreadPool *pool;
  guint index;
  guint64 seen;           /* the job current when the worker was made */
} WorkerArg;

/* Set in pool workers, so a nested loop runs serially. */
static _Thread_local gboolean in_worker;

static void
chunk_bounds (gsize n, guint n_chunks, guint i, gsize *begin, gsize *end)
{
  *begin = (gsize) ((guint64) n * i / n_chunks);
  *end = (gsize) ((guint64) n * (i + 1) / n_chunks);
}

/* Runs chunks of the current job until none are left. */
static void
run_chunks (NnParallelFunc func, gpointer data, gsize n, guint n_chunks,
            gint *next)
{
  for (;;)
    {
      guint i = (guint) g_atomic_int_add (next, 1);
      gsize b, e;

      if (i >= n_chunks)
        return;
      chunk_bounds (n, n_chunks, i, &b, &e);
      if (b < e)
        func (b, e, data);
    }
}

static gpointer
worker_main (gpointer p)
{
  WorkerArg *arg = p;
  NnThreadPool *pool = arg->pool;
  guint index = arg->index;
  guint64 seen;

  seen = arg->seen;
  g_free (arg);
  in_worker = TRUE;
  pthread_mutex_lock (&pool->lock);
  for (;;)
    {
      while (pool->job == seen && !pool->quit)
        pthread_cond_wait (&pool->wake, &pool->lock);
      if (pool->quit)
        break;
      seen = pool->job;
      NnParallelFunc func = pool->func;
      gpointer data = pool->data;
      gsize n = pool->n;
      guint n_chunks = pool->n_chunks;
      gboolean take = index < pool->active_workers;
      pthread_mutex_unlock (&pool->lock);

      if (take)
        run_chunks (func, data, n, n_chunks, &pool->next_chunk);

      pthread_mutex_lock (&pool->lock);
      if (--pool->pending == 0)
        pthread_cond_signal (&pool->done);
    }
  pthread_mutex_unlock (&pool->lock);
  return NULL;
}

/* Adds workers up to @n_workers.  Called with the pool owned (busy) and
 * idle, so no job is in flight.  A thread that cannot start leaves the
 * pool smaller: the loops still run, on fewer threads. */
static void
grow_locked (NnThreadPool *pool, guint n_workers)
{
  while (pool->workers->len < n_workers)
    {
      WorkerArg *arg = g_new (WorkerArg, 1);
      GThread *t;

      arg->pool = pool;
      arg->index = pool->workers->len;
      /* A worker added for the job being set up must take part in it. */
      arg->seen = pool->job;
      t = g_thread_try_new ("nn-pool", worker_main, arg, NULL);
      if (!t)
        {
          g_free (arg);
          return;
        }
      g_ptr_array_add (pool->workers, t);
    }
}

NnThreadPool *
nn_thread_pool_new (guint n_threads)
{
  NnThreadPool *pool = g_new0 (NnThreadPool, 1);

  pthread_mutex_init (&pool->lock, NULL);
  pthread_cond_init (&pool->wake, NULL);
  pthread_cond_init (&pool->done, NULL);
  pool->workers = g_ptr_array_new ();
  pthread_mutex_lock (&pool->lock);
  grow_locked (pool, MAX (n_threads, 1) - 1);
  pthread_mutex_unlock (&pool->lock);
  return pool;
}

void
nn_thread_pool_free (NnThreadPool *pool)
{
  if (!pool)
    return;
  pthread_mutex_lock (&pool->lock);
  pool->quit = TRUE;
  pthread_cond_broadcast (&pool->wake);
  pthread_mutex_unlock (&pool->lock);
  for (guint i = 0; i < pool->workers->len; i++)
    g_thread_join (g_ptr_array_index (pool->workers, i));
  g_ptr_array_unref (pool->workers);
  pthread_cond_destroy (&pool->wake);
  pthread_cond_destroy (&pool->done);
  pthread_mutex_destroy (&pool->lock);
  g_free (pool);
}

guint
nn_thread_pool_get_n_threads (NnThreadPool *pool)
{
  guint n;

  if (!pool)
    return 1;
  pthread_mutex_lock (&pool->lock);
  n = pool->workers->len + 1;
  pthread_mutex_unlock (&pool->lock);
  return n;
}

/* The loop on at most @max_threads threads (the caller counted). */
static void
parallel_for_upto (NnThreadPool *pool, gsize n, int max_threads,
                   NnParallelFunc func, gpointer data)
{
  if (n == 0)
    return;

  guint want = (guint) MIN ((gsize) MAX (max_threads, 1), n);
  if (!pool || want <= 1 || in_worker
      || !g_atomic_int_compare_and_exchange (&pool->busy, 0, 1))
    {
      func (0, n, data);
      return;
    }

  pthread_mutex_lock (&pool->lock);
  if (pool->workers->len < want - 1)
    grow_locked (pool, want - 1);
  pool->active_workers = MIN (want - 1, pool->workers->len);
  if (pool->active_workers == 0)
    {
      pthread_mutex_unlock (&pool->lock);
      g_atomic_int_set (&pool->busy, 0);
      func (0, n, data);
      return;
    }
  /* A few chunks per thread even out threads that another process on
   * the same cores slows down. */
  guint threads = pool->active_workers + 1;
  pool->n_chunks = (guint) MIN (n, (gsize) threads * 4);
  pool->func = func;
  pool->data = data;
  pool->n = n;
  pool->pending = pool->workers->len;
  g_atomic_int_set (&pool->next_chunk, 0);
  pool->job++;
  guint n_chunks = pool->n_chunks;
  pthread_cond_broadcast (&pool->wake);
  pthread_mutex_unlock (&pool->lock);

  in_worker = TRUE;
  run_chunks (func, data, n, n_chunks, &pool->next_chunk);
  in_worker = FALSE;

  pthread_mutex_lock (&pool->lock);
  while (pool->pending > 0)
    pthread_cond_wait (&pool->done, &pool->lock);
  pthread_mutex_unlock (&pool->lock);
  g_atomic_int_set (&pool->busy, 0);
}

void
nn_thread_pool_parallel_for (NnThreadPool *pool, gsize n,
                             NnParallelFunc func, gpointer data)
{
  g_return_if_fail (func != NULL);
  parallel_for_upto (pool, n, nn_get_num_threads (), func, data);
}

void
nn_thread_pool_parallel_for_work (NnThreadPool *pool, gsize n, gint64 work,
                                  NnParallelFunc func, gpointer data)
{
  g_return_if_fail (func != NULL);
  parallel_for_upto (pool, n, nn_threads_for_work (work, NN_WORK_GRAIN),
                     func, data);
}

NnThreadPool *
nn_thread_pool_get_default (void)
{
  static NnThreadPool *pool;
  static gsize once;

  if (g_once_init_enter (&once))
    {
      pool = nn_thread_pool_new ((guint) nn_get_num_threads ());
      g_once_init_leave (&once, 1);
    }
  return pool;
}

NnThreadPool *
nn_call_get_thread_pool (NnCall *call)
{
  return nn_thread_pool_get_default ();
}
