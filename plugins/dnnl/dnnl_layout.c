/* dnnl plugin: tensors laid out in oneDNN's blocked layouts (nChw16c), so
 * consecutive oneDNN steps skip the reorders to and from plain NCHW; the
 * core makes them plain where anything else reads them (docs/ENGINE.md,
 * "Memory"). */
#include "dnnl-private.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

gboolean
nn_dnnl_plain_md (const dnnl_memory_desc_t *md, dnnl_memory_desc_t *out)
{
  /* NULL strides: dense row-major, the core's plain layout. */
  return dnnl_memory_desc_init_by_strides (out, md->ndims, md->dims,
                                           md->data_type, NULL) == dnnl_success;
}

/* The reorder primitive of one (blocked -> plain) pair: oneDNN's own
 * primitive cache makes a repeated creation cheap, so none is kept here
 * (a tensor may be made plain in any thread). */
static gboolean
dnnl_to_plain (const NnTensor *t, gconstpointer layout_data, gconstpointer laid,
               gpointer plain, GError **error)
{
  const dnnl_memory_desc_t *md = layout_data;
  dnnl_engine_t eng = nn_dnnl_engine (error);
  dnnl_memory_desc_t pmd;
  dnnl_primitive_desc_t pd = NULL;
  dnnl_primitive_t r = NULL;
  dnnl_memory_t from = NULL, to = NULL;
  dnnl_stream_t s = NULL;

  if (!eng)
    return FALSE;
  if (!nn_dnnl_plain_md (md, &pmd)
      || dnnl_memory_desc_get_size (&pmd) != nn_tensor_nbytes (t))
    {
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                   "onednn layout: the descriptor does not describe the "
                   "tensor's %" G_GINT64_FORMAT " elements",
                   nn_tensor_numel (t));
      return FALSE;
    }
  omp_set_num_threads (nn_threads_for_work (nn_tensor_numel (t), NN_WORK_GRAIN));
  gboolean ok =
    nn_dnnl_ok (dnnl_reorder_primitive_desc_create (&pd, md, eng, &pmd, eng, NULL),
                "creating a reorder to plain", error)
    && nn_dnnl_ok (dnnl_primitive_create (&r, pd), "creating a reorder", error)
    && nn_dnnl_ok (dnnl_memory_create (&from, md, eng, (void *) laid),
                   "wrapping the laid-out values", error)
    && nn_dnnl_ok (dnnl_memory_create (&to, &pmd, eng, plain),
                   "wrapping the plain values", error)
    && nn_dnnl_ok (dnnl_stream_create (&s, eng, dnnl_stream_default_flags),
                   "creating a stream", error);
  if (ok)
    {
      dnnl_exec_arg_t args[] = { { DNNL_ARG_FROM, from }, { DNNL_ARG_TO, to } };
      ok = nn_dnnl_ok (dnnl_primitive_execute (r, s, 2, args), "reordering to plain", error)
           && nn_dnnl_ok (dnnl_stream_wait (s), "waiting for the stream", error);
    }
  if (ok)
    nn_engine_note_reorders (1);
  if (s) dnnl_stream_destroy (s);
  if (from) dnnl_memory_destroy (from);
  if (to) dnnl_memory_destroy (to);
  if (r) dnnl_primitive_destroy (r);
  if (pd) dnnl_primitive_desc_destroy (pd);
  return ok;
}

const NnLayoutClass nn_dnnl_layout_class = {
  sizeof (NnLayoutClass),
  "onednn",
  dnnl_to_plain,
  g_free,
  { NULL },
};

const dnnl_memory_desc_t *
nn_dnnl_tensor_md (NnTensor *t, void **laid)
{
  gpointer data = NULL, buf = NULL;
  if (nn_tensor_get_layout (t, &data, &buf) != &nn_dnnl_layout_class)
    return NULL;
  *laid = buf;
  return data;
}

/* Storage 64-byte aligned (what oneDNN's own allocations use). */
static void
laid_free (gpointer p)
{
  nn_tensor_storage_free (p);
}

NnTensor *
nn_dnnl_tensor_new_laid (const NnShape *shape, const dnnl_memory_desc_t *md,
                         GError **error)
{
  gsize n = dnnl_memory_desc_get_size (md);
  /* From the core's pool: a repeated forward reuses the same blocks. */
  void *buf = n ? nn_tensor_storage_new (n) : NULL;

  if (!buf)
    {
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                   "cannot allocate %" G_GSIZE_FORMAT " bytes for a laid-out "
                   "result", n);
      return NULL;
    }
  /* Not cleared: the primitive writes every value, and oneDNN zero-fills
   * the blocked padding (channels up to a multiple of 8 or 16) when the
   * buffer is set as a memory's handle (nn_dnnl_prim_run_tensor), which
   * its primitives then keep zero, so a consumer never reads garbage. */
  NnTensor *t = nn_tensor_new_laid_out (NN_DTYPE_F32, shape, &nn_dnnl_layout_class,
                                        g_memdup2 (md, sizeof *md), buf, laid_free);
  if (!t)
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "cannot make a laid-out result");
  return t;
}

gboolean
nn_dnnl_may_lay_out (NnCall *call)
{
  return nn_call_may_lay_out (call);
}
