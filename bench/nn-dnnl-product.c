/* nn-dnnl-product: one oneDNN inner product (a Linear) timed with its
 * weights warm in the caches and with its weights streamed from memory,
 * as they are inside a model whose weights exceed the last-level cache
 * (vit_b_16: 344 MB against a 32 MB L3).  It bounds what the products of
 * a GEMM-bound forward can reach in the model (docs/ENGINE.md,
 * "Transformers on one thread").
 *
 *   taskset -c 0 build/bench/nn-dnnl-product ROWS IN OUT [--stream-mb 512]
 *                                            [--repeat 10]
 *
 * The primitive is created once with the layout oneDNN picks for the
 * weights (format "any", as the oneDNN provider does).  "warm" runs it
 * again and again on one copy of the weights; "streamed" cycles through
 * as many copies as fill --stream-mb, so every run reads its weights from
 * memory.  Each figure is the best of --repeat passes, in thread CPU time
 * per product, with GFLOP/s (2 x ROWS x IN x OUT flops).  Timing only. */
#include <glib.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench-time.h"

static int
check (dnnl_status_t s, const char *what)
{
  if (s != dnnl_success)
    {
      fprintf (stderr, "nn-dnnl-product: %s failed (oneDNN status %d)\n", what, (int) s);
      return 0;
    }
  return 1;
}

typedef struct {
  dnnl_engine_t engine;
  dnnl_stream_t stream;
  dnnl_primitive_t prim;
  dnnl_memory_t src, dst;
  dnnl_memory_t *weights; /* n copies */
  void **buffers;
  int n;
} Product;

/* Builds the primitive and @n_copies weight copies of oneDNN's chosen
 * layout; FALSE (with a message) on any oneDNN error. */
static gboolean
product_init (Product *p, gint64 rows, gint64 in, gint64 out, gsize stream_bytes)
{
  dnnl_memory_desc_t src_md, wei_md, dst_md;
  dnnl_dims_t sd = { rows, in }, wd = { out, in }, dd = { rows, out };
  dnnl_inner_product_desc_t desc;
  dnnl_primitive_desc_t pd;

  memset (p, 0, sizeof *p);
  if (!check (dnnl_engine_create (&p->engine, dnnl_cpu, 0), "engine")
      || !check (dnnl_stream_create (&p->stream, p->engine, dnnl_stream_default_flags), "stream")
      || !check (dnnl_memory_desc_init_by_tag (&src_md, 2, sd, dnnl_f32, dnnl_nc), "src md")
      || !check (dnnl_memory_desc_init_by_tag (&wei_md, 2, wd, dnnl_f32, dnnl_format_tag_any), "weights md")
      || !check (dnnl_memory_desc_init_by_tag (&dst_md, 2, dd, dnnl_f32, dnnl_nc), "dst md")
      || !check (dnnl_inner_product_forward_desc_init (&desc, dnnl_forward_inference, &src_md,
                                                       &wei_md, NULL, &dst_md), "descriptor")
      || !check (dnnl_primitive_desc_create (&pd, &desc, NULL, p->engine, NULL), "primitive descriptor"))
    return FALSE;
  const dnnl_memory_desc_t *chosen = dnnl_primitive_desc_query_md (pd, dnnl_query_weights_md, 0);
  gsize wbytes = dnnl_memory_desc_get_size (chosen);
  gboolean ok = check (dnnl_primitive_create (&p->prim, pd), "primitive")
                && check (dnnl_memory_create (&p->src, &src_md, p->engine, DNNL_MEMORY_ALLOCATE), "src")
                && check (dnnl_memory_create (&p->dst, &dst_md, p->engine, DNNL_MEMORY_ALLOCATE), "dst");
  /* At least two copies, so that "streamed" never reruns warm weights. */
  p->n = MAX (2, (int) (stream_bytes / wbytes));
  p->weights = g_new0 (dnnl_memory_t, p->n);
  p->buffers = g_new0 (void *, p->n);
  for (int i = 0; ok && i < p->n; i++)
    {
      float *w = g_malloc (wbytes);
      for (gsize j = 0; j < wbytes / sizeof (float); j++)
        w[j] = (float) ((j + i) % 17) * 0.01f;
      p->buffers[i] = w;
      ok = check (dnnl_memory_create (&p->weights[i], chosen, p->engine, w), "weights");
    }
  void *x = NULL;
  if (ok && check (dnnl_memory_get_data_handle (p->src, &x), "src handle"))
    for (gint64 j = 0; j < rows * in; j++)
      ((float *) x)[j] = (float) (j % 13) * 0.1f;
  dnnl_primitive_desc_destroy (pd);
  return ok;
}

/* Best over @repeat passes of the per-product thread CPU time in ms,
 * each pass running the product once on each of the first @copies
 * weight copies; < 0 on a oneDNN error. */
static double
product_time (Product *p, int copies, int repeat)
{
  double best = G_MAXDOUBLE;
  for (int r = 0; r < repeat; r++)
    {
      double t0 = nn_bench_now_ms (CLOCK_THREAD_CPUTIME_ID);
      for (int i = 0; i < copies; i++)
        {
          dnnl_exec_arg_t args[3] = { { DNNL_ARG_SRC, p->src },
                                      { DNNL_ARG_WEIGHTS, p->weights[i] },
                                      { DNNL_ARG_DST, p->dst } };
          if (!check (dnnl_primitive_execute (p->prim, p->stream, 3, args), "execute"))
            return -1;
        }
      best = MIN (best, (nn_bench_now_ms (CLOCK_THREAD_CPUTIME_ID) - t0) / copies);
    }
  return best;
}

static void
product_clear (Product *p)
{
  for (int i = 0; i < p->n; i++)
    {
      if (p->weights[i])
        dnnl_memory_destroy (p->weights[i]);
      g_free (p->buffers[i]);
    }
  g_free (p->weights);
  g_free (p->buffers);
  if (p->src)
    dnnl_memory_destroy (p->src);
  if (p->dst)
    dnnl_memory_destroy (p->dst);
  if (p->prim)
    dnnl_primitive_destroy (p->prim);
  if (p->stream)
    dnnl_stream_destroy (p->stream);
  if (p->engine)
    dnnl_engine_destroy (p->engine);
}

int
main (int argc, char **argv)
{
  gint64 stream_mb = 512, repeat = 10;
  GOptionEntry entries[] = {
    { "stream-mb", 0, 0, G_OPTION_ARG_INT64, &stream_mb,
      "bytes of weight copies cycled through for \"streamed\" (MB)", "MB" },
    { "repeat", 0, 0, G_OPTION_ARG_INT64, &repeat, "timed passes (best kept)", "N" },
    { NULL }
  };
  GOptionContext *ctx = g_option_context_new ("ROWS IN OUT");
  GError *e = NULL;
  g_option_context_add_main_entries (ctx, entries, NULL);
  gboolean parsed = g_option_context_parse (ctx, &argc, &argv, &e);
  g_option_context_free (ctx);
  if (!parsed)
    {
      fprintf (stderr, "nn-dnnl-product: %s\n", e->message);
      g_error_free (e);
      return 2;
    }
  guint64 dims[3];
  if (argc != 4 || stream_mb < 1 || repeat < 1)
    {
      fprintf (stderr, "nn-dnnl-product: expected ROWS IN OUT, a --stream-mb and --repeat of at least 1\n");
      return 2;
    }
  for (int i = 0; i < 3; i++)
    if (!g_ascii_string_to_unsigned (argv[i + 1], 10, 1, 1 << 20, &dims[i], &e))
      {
        fprintf (stderr, "nn-dnnl-product: '%s': %s\n", argv[i + 1], e->message);
        g_error_free (e);
        return 2;
      }
  /* Each operand must be allocatable: at most 2^30 values (4 GiB). */
  if (dims[0] * dims[1] > (1u << 30) || dims[1] * dims[2] > (1u << 30)
      || dims[0] * dims[2] > (1u << 30))
    {
      fprintf (stderr, "nn-dnnl-product: %s x %s -> %s: an operand above 2^30 values\n",
               argv[1], argv[2], argv[3]);
      return 2;
    }
  Product p;
  int rc = 1;
  if (product_init (&p, dims[0], dims[1], dims[2], (gsize) stream_mb << 20))
    {
      double warm = product_time (&p, 1, (int) repeat);
      double streamed = warm >= 0 ? product_time (&p, p.n, (int) repeat) : -1;
      double gflop = 2.0 * dims[0] * dims[1] * dims[2] / 1e9;
      if (streamed >= 0)
        {
          printf ("product %" G_GUINT64_FORMAT " x %" G_GUINT64_FORMAT " -> %" G_GUINT64_FORMAT "\n",
                  dims[0], dims[1], dims[2]);
          printf ("warm_ms %.3f warm_gflops %.1f\n", warm, gflop / warm * 1e3);
          printf ("streamed_ms %.3f streamed_gflops %.1f copies %d\n", streamed,
                  gflop / streamed * 1e3, p.n);
          rc = 0;
        }
    }
  product_clear (&p);
  return rc;
}
