/* pool plugin: the layer types it registers and the window geometry they
 * share.  Private to the plugin. */
#ifndef NN_POOL_H
#define NN_POOL_H

#include <nnkit/plugin.h>

extern const NnLayerType nn_max_pool2d_type;
extern const NnLayerType nn_avg_pool2d_type;
extern const NnLayerType nn_adaptive_avg_pool2d_type;
extern const NnLayerType nn_adaptive_max_pool2d_type;
extern const NnLayerType nn_max_pool1d_type;
extern const NnLayerType nn_avg_pool1d_type;
extern const NnLayerType nn_adaptive_avg_pool1d_type;
extern const NnLayerType nn_adaptive_max_pool1d_type;
extern const NnLayerType nn_max_pool3d_type;
extern const NnLayerType nn_avg_pool3d_type;
extern const NnLayerType nn_adaptive_avg_pool3d_type;
extern const NnLayerType nn_adaptive_max_pool3d_type;
extern const NnLayerType nn_max_unpool2d_type;

/* The pools' forward signature: (input), a float32 [N, C, H, W] or
 * [C, H, W] tensor.  As functional ops (F.max_pool2d, ...) the window comes
 * from the node's config, as kernel_size is a required config key anyway. */
extern const NnArgSpec nn_pool_input_args[1];

/* A sliding window over H and W, expanded from the config's ints/tuples. */
typedef struct {
  gint64 kernel[2];   /* kh, kw */
  gint64 stride[2];   /* sh, sw; the kernel when the config says None */
  gint64 padding[2];  /* implicit padding on both sides */
  gint64 dilation[2]; /* 1 for AvgPool2d */
  gboolean ceil_mode;
} NnPoolGeom;

/* Reads kernel_size, stride, padding, ceil_mode and (if the schema has it)
 * dilation from @self's config, and checks PyTorch's rule that padding is
 * at most half the kernel.  Errors are NN_DESCRIPTOR_ERROR_OUT_OF_RANGE. */
gboolean nn_pool_geom_read (NnModule *self, gboolean has_dilation,
                            NnPoolGeom *geom, GError **error);

/* PyTorch's pooling_output_shape for one spatial dimension. */
gint64 nn_pool_out_size (gint64 in, gint64 kernel, gint64 pad, gint64 stride,
                         gint64 dilation, gboolean ceil_mode);

/* Checks that @in is [N, C, H, W] or [C, H, W] with non-empty C, H and W.
 * Errors are NN_SHAPE_ERROR_MISMATCH; the core prefixes the module. */
gboolean nn_pool_check_input (const NnShape *in, GError **error);

/* Output shape of a sliding-window pool; an empty output is an error that
 * names the input and the window. */
gboolean nn_pool_geom_out_shape (const NnPoolGeom *geom, const NnShape *in,
                                 NnShape *out, GError **error);

/* (transfer full) a new F32 tensor of @shape, or NULL with an error when
 * memory is exhausted. */
NnTensor *nn_pool_alloc (const NnShape *shape, GError **error);

/* The tuple text of two ints as Python prints it: "(3, 3)". */
char *nn_pool_pair_text (const gint64 v[2]);

/* Runs @fn on every [H, W] plane of a pool's input: plane i of @in maps to
 * plane i of @out.  The planes are split over the core's thread pool when
 * the work is big enough to pay for it. */
typedef void (*NnPoolPlaneFunc) (gconstpointer ctx, const float *in,
                                 float *out);
void nn_pool_for_planes (gint64 n_planes, gint64 in_plane, gint64 out_plane,
                         const float *in, float *out, NnPoolPlaneFunc fn,
                         gconstpointer ctx);

/* Extents of one [H, W] plane of a pool's input and output. */
typedef struct {
  gint64 h, w, oh, ow;
} NnPoolExtent;

/* A sliding-window pool's forward: checks @input, computes the output shape
 * from @geom, fills @ext and runs @fn with @ctx over every plane.
 * Returns (transfer full) the output, or NULL with @error set. */
NnValue *nn_pool_run_windows (const NnPoolGeom *geom, NnTensor *input,
                              NnPoolExtent *ext, NnPoolPlaneFunc fn,
                              gconstpointer ctx, GError **error);

/* A sliding-window pool's infer: (transfer full) a meta tensor of the
 * output shape for the meta input @input. */
NnValue *nn_pool_infer_windows (const NnPoolGeom *geom, NnTensor *input,
                                GError **error);

#endif
