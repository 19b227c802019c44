/* norm plugin: statistics and the normalise-then-affine step shared by
 * LayerNorm, GroupNorm, InstanceNorm and BatchNorm1d.  Private. */
#ifndef NN_NORM_STATS_H
#define NN_NORM_STATS_H

#include <nnkit/plugin.h>

/* Mean and biased variance of @count contiguous floats, in double. */
void nn_norm_moments (const float *x, gint64 count, double *mean,
                      double *var);

/* Per-channel mean and biased variance of an [n, c, hw] array over n and
 * hw: @mean and @var hold @c entries. */
void nn_norm_channel_moments (const float *x, gint64 n, gint64 c, gint64 hw,
                              double *mean, double *var);

/* y[b, ch, :] = (x[b, ch, :] - mean) / sqrt (var + eps) * w[ch] + bias[ch]
 * over an [n, c, hw] array, with the statistics of entry b * c + ch when
 * @per_sample, else of entry ch.  @w and @bias (nullable) are absent
 * without affine parameters. */
void nn_norm_apply (const float *x, float *y, gint64 n, gint64 c, gint64 hw,
                    const double *mean, const double *var,
                    gboolean per_sample, const float *w, const float *bias,
                    double eps);

/* BatchNorm's and InstanceNorm's extra_repr: "4, eps=1e-05, momentum=0.1,
 * affine=True, track_running_stats=True".  Returns (transfer full). */
char *nn_norm_batch_extra_repr (NnModule *self);

/* torchinfo's Mult-Adds: output_size[0] * numel of weight and of bias. */
guint64 nn_norm_count_macs (NnModule *self, const NnArgs *args,
                            const NnValue *out);

#endif
