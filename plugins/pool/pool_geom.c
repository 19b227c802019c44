/* pool plugin: window geometry, output sizes and input checks shared by
 * the sliding-window pools, following ATen's pool2d_shape_check. */
#include "pool.h"

char *
nn_pool_pair_text (const gint64 v[2])
{
  return g_strdup_printf ("(%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ")", v[0], v[1]);
}

gboolean
nn_pool_geom_read (NnModule *self, gboolean has_dilation, NnPoolGeom *geom,
                   GError **error)
{
  nn_module_config_ints (self, "kernel_size", geom->kernel, 2);
  /* stride=None means "the kernel size", as the PyTorch constructors do. */
  if (!nn_module_config_ints (self, "stride", geom->stride, 2)) {
    geom->stride[0] = geom->kernel[0];
    geom->stride[1] = geom->kernel[1];
  }
  nn_module_config_ints (self, "padding", geom->padding, 2);
  geom->dilation[0] = geom->dilation[1] = 1;
  if (has_dilation)
    nn_module_config_ints (self, "dilation", geom->dilation, 2);
  geom->ceil_mode = nn_module_config_bool (self, "ceil_mode");

  for (int i = 0; i < 2; i++) {
    if (geom->padding[i] > geom->kernel[i] / 2) {
      g_autofree char *p = nn_pool_pair_text (geom->padding);
      g_autofree char *k = nn_pool_pair_text (geom->kernel);
      g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_OUT_OF_RANGE,
                   "padding %s must be at most half of kernel_size %s",
                   p, k);
      return FALSE;
    }
  }
  return TRUE;
}

/* Division rounding towards negative infinity, as ATen's div_rtn. */
static gint64
div_floor (gint64 a, gint64 b)
{
  gint64 q = a / b, r = a % b;
  return (r != 0 && ((r < 0) != (b < 0))) ? q - 1 : q;
}

gint64
nn_pool_out_size (gint64 in, gint64 kernel, gint64 pad, gint64 stride,
                  gint64 dilation, gboolean ceil_mode)
{
  gint64 out = div_floor (in + 2 * pad - dilation * (kernel - 1) - 1 +
                          (ceil_mode ? stride - 1 : 0), stride) + 1;
  /* In ceil mode the last window must start inside the input or the left
   * padding, never entirely in the right padding. */
  if (ceil_mode && (out - 1) * stride >= in + pad)
    out--;
  return out;
}

gboolean
nn_pool_check_input (const NnShape *in, GError **error)
{
  /* An empty batch is allowed, as in PyTorch; empty planes are not. */
  gboolean ok = in->ndim == 3 || in->ndim == 4;
  for (guint i = in->ndim == 4 ? 1 : 0; ok && i < in->ndim; i++)
    ok = in->dims[i] > 0;
  if (!ok) {
    g_autofree char *found = nn_shape_to_string (in);
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "expected input [N, C, H, W] or [C, H, W] with non-empty "
                 "C, H and W, found %s", found);
  }
  return ok;
}

gboolean
nn_pool_geom_out_shape (const NnPoolGeom *geom,
                        const NnShape *in, NnShape *out, GError **error)
{
  if (!nn_pool_check_input (in, error))
    return FALSE;
  guint h = in->ndim - 2;
  gint64 o[2];
  for (int i = 0; i < 2; i++)
    o[i] = nn_pool_out_size (in->dims[h + i], geom->kernel[i], geom->padding[i],
                             geom->stride[i], geom->dilation[i], geom->ceil_mode);
  if (o[0] < 1 || o[1] < 1) {
    g_autofree char *found = nn_shape_to_string (in);
    g_autofree char *k = nn_pool_pair_text (geom->kernel);
    g_autofree char *p = nn_pool_pair_text (geom->padding);
    g_autofree char *d = nn_pool_pair_text (geom->dilation);
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "input %s is too small: the window (kernel_size %s, "
                 "dilation %s) does not fit the padded input (padding %s), "
                 "output would be %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT,
                 found, k, d, p, o[0], o[1]);
    return FALSE;
  }
  *out = *in;
  out->dims[h] = o[0];
  out->dims[h + 1] = o[1];
  return TRUE;
}

const NnArgSpec nn_pool_input_args[1] = {
  { "input", NN_ARG_TENSOR, NN_DTYPE_BIT (NN_DTYPE_F32), 0, NULL,
    "float32 [N, C, H, W] or [C, H, W]" },
};

NnTensor *
nn_pool_alloc (const NnShape *shape, GError **error)
{
  NnTensor *out = nn_tensor_new (NN_DTYPE_F32, shape);
  if (!out) {
    g_autofree char *s = nn_shape_to_string (shape);
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "cannot allocate the float32 output %s", s);
  }
  return out;
}

typedef struct {
  gint64 first, last; /* planes [first, last) */
  gint64 in_plane, out_plane;
  const float *in;
  float *out;
  NnPoolPlaneFunc fn;
  gconstpointer ctx;
} PlaneRange;

static gpointer
run_planes (gpointer data)
{
  const PlaneRange *r = data;
  for (gint64 p = r->first; p < r->last; p++)
    r->fn (r->ctx, r->in + p * r->in_plane, r->out + p * r->out_plane);
  return NULL;
}

/* Below this much input per thread, starting threads costs more than it
 * saves. */
#define MIN_ELEMS_PER_THREAD (1 << 16)

void
nn_pool_for_planes (gint64 n_planes, gint64 in_plane, gint64 out_plane,
                    const float *in, float *out, NnPoolPlaneFunc fn,
                    gconstpointer ctx)
{
  gint64 n_threads = MIN (nn_get_num_threads (), 16);
  n_threads = MIN (n_threads, n_planes * in_plane / MIN_ELEMS_PER_THREAD);
  n_threads = MIN (n_threads, n_planes);
  if (n_threads <= 1) {
    PlaneRange all = { 0, n_planes, in_plane, out_plane, in, out, fn, ctx };
    run_planes (&all);
    return;
  }
  PlaneRange ranges[16];
  GThread *threads[16] = { NULL };
  for (gint64 t = 0; t < n_threads; t++) {
    ranges[t] = (PlaneRange) { n_planes * t / n_threads,
                               n_planes * (t + 1) / n_threads,
                               in_plane, out_plane, in, out, fn, ctx };
    /* The calling thread takes range 0; a thread that cannot start leaves
     * its range to the caller as well. */
    if (t > 0)
      threads[t] = g_thread_try_new ("nn-pool", run_planes, &ranges[t], NULL);
  }
  run_planes (&ranges[0]);
  for (gint64 t = 1; t < n_threads; t++) {
    if (threads[t])
      g_thread_join (threads[t]);
    else
      run_planes (&ranges[t]);
  }
}

NnValue *
nn_pool_infer_windows (const NnPoolGeom *geom, NnTensor *input,
                       GError **error)
{
  NnShape out_shape;
  if (!nn_pool_geom_out_shape (geom, &input->shape, &out_shape, error))
    return NULL;
  return nn_value_take_tensor (nn_tensor_new_meta (NN_DTYPE_F32, &out_shape));
}

NnValue *
nn_pool_run_windows (const NnPoolGeom *geom, NnTensor *input,
                     NnPoolExtent *ext, NnPoolPlaneFunc fn, gconstpointer ctx,
                     GError **error)
{
  NnShape out_shape;
  const float *x = nn_tensor_f32 (input);
  if (!nn_pool_geom_out_shape (geom, &input->shape, &out_shape, error))
    return NULL;
  guint h = out_shape.ndim - 2;
  ext->h = input->shape.dims[h];
  ext->w = input->shape.dims[h + 1];
  ext->oh = out_shape.dims[h];
  ext->ow = out_shape.dims[h + 1];
  NnTensor *out = nn_pool_alloc (&out_shape, error);
  if (!out)
    return NULL;
  gint64 planes = nn_shape_numel (&out_shape) / (ext->oh * ext->ow);
  nn_pool_for_planes (planes, ext->h * ext->w, ext->oh * ext->ow, x,
                      nn_tensor_f32 (out), fn, ctx);
  return nn_value_take_tensor (out);
}
