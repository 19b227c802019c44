/* dnnl plugin: scratchpads shared by every primitive of the provider.
 * A primitive needs its scratchpad only while it runs, so a pool of
 * buffers, each taken for one run and given back after it, holds the
 * largest scratchpad once per concurrently running thread rather than
 * one per primitive: a Winograd convolution's is several MB, and a
 * network has dozens of them (docs/ENGINE.md, "Memory"). */
#include "dnnl-private.h"

#include <stdlib.h>

/* Each buffer starts with this header; the caller's bytes follow it, at
 * the alignment oneDNN wants. */
#define HEADER 64

static GMutex lock;
static GSList *free_bufs;   /* the headers of buffers nobody holds */

static gsize
buf_size (const void *head)
{
  return *(const gsize *) head;
}

void *
nn_dnnl_scratch_take (gsize size, GError **error)
{
  GSList *best = NULL, *smaller = NULL;
  void *head = NULL;

  g_mutex_lock (&lock);
  for (GSList *l = free_bufs; l; l = l->next)
    if (buf_size (l->data) >= size)
      {
        if (!best || buf_size (l->data) < buf_size (best->data))
          best = l;
      }
    else if (!smaller || buf_size (l->data) > buf_size (smaller->data))
      smaller = l;
  /* A buffer too small for this run is replaced, not kept beside the new
   * one, so the pool stays at one buffer per concurrent run. */
  if (!best && smaller)
    {
      free (smaller->data);
      free_bufs = g_slist_delete_link (free_bufs, smaller);
    }
  if (best)
    {
      head = best->data;
      free_bufs = g_slist_delete_link (free_bufs, best);
    }
  g_mutex_unlock (&lock);
  if (!head)
    {
      if (posix_memalign (&head, HEADER, HEADER + MAX (size, 64)) != 0)
        {
          g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                       "cannot allocate a %" G_GSIZE_FORMAT "-byte scratchpad",
                       size);
          return NULL;
        }
      *(gsize *) head = MAX (size, 64);
    }
  return (char *) head + HEADER;
}

void
nn_dnnl_scratch_give (void *buf)
{
  if (!buf)
    return;
  g_mutex_lock (&lock);
  free_bufs = g_slist_prepend (free_bufs, (char *) buf - HEADER);
  g_mutex_unlock (&lock);
}

/* Nothing of ours may outlive the plugin's unmapping. */
__attribute__ ((destructor)) static void
dnnl_scratch_unload (void)
{
  g_slist_free_full (free_bufs, free);
  free_bufs = NULL;
}
