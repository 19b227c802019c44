/* Conv1d, ConvTranspose1d and ConvTranspose2d: configuration, repr and
 * initialisation shared by the three (the forwards are in conv1d.c and
 * conv_transpose.c, the kernels in conv_nd_kernels.c). */
#include "conv_nd.h"
#include "../common/nn-layer-util.h"

static const char *const pad_modes[] = {
  "zeros", "reflect", "replicate", "circular", NULL
};

static void
read_pair (NnModule *self, const char *key, guint nd, gint64 *out, gint64 unit)
{
  gint64 t[2] = { unit, unit };
  nn_module_config_ints (self, key, t, nd);
  out[0] = nd == 2 ? t[0] : unit;
  out[1] = nd == 2 ? t[1] : t[0];
}

void
nn_convnd_same_padding (guint n, const gint64 *k, const gint64 *d,
                        gint64 *pad0, gint64 *pad1)
{
  for (guint i = 0; i < n; i++) {
    gint64 total = d[i] * (k[i] - 1);
    pad0[i] = total / 2;
    pad1[i] = total - total / 2;
  }
}

/* Padding ints, or 'valid' / 'same' (stride 1 only, the odd tap after). */
static gboolean
read_padding (NnModule *self, NnConvNd *g, GError **error)
{
  gint64 t[2] = { 0, 0 };
  if (nn_module_config_ints (self, "padding", t, g->nd)) {
    read_pair (self, "padding", g->nd, g->pad0, 0);
    g->pad1[0] = g->pad0[0];
    g->pad1[1] = g->pad0[1];
    return TRUE;
  }
  const char *s = nn_module_config_string (self, "padding");
  if (g_strcmp0 (s, "valid") == 0)
    return TRUE;
  if (g->s[0] != 1 || g->s[1] != 1) {
    g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_INVALID,
                 "padding='same' is not supported for strided convolutions");
    return FALSE;
  }
  nn_convnd_same_padding (2, g->k, g->d, g->pad0, g->pad1);
  return TRUE;
}

gboolean
nn_convnd_create (NnModule *self, guint nd, gboolean transposed, GError **error)
{
  NnConvNd *g = g_new0 (NnConvNd, 1);
  nn_module_set_private (self, g);
  g->nd = nd;
  g->transposed = transposed;
  g->in_channels = nn_module_config_int (self, "in_channels");
  g->out_channels = nn_module_config_int (self, "out_channels");
  g->groups = nn_module_config_int (self, "groups");
  g->has_bias = nn_module_config_bool (self, "bias");
  read_pair (self, "kernel_size", nd, g->k, 1);
  read_pair (self, "stride", nd, g->s, 1);
  read_pair (self, "dilation", nd, g->d, 1);
  if (transposed)
    read_pair (self, "output_padding", nd, g->out_pad, 0);
  const char *mode = nn_module_config_string (self, "padding_mode");
  for (guint i = 0; pad_modes[i]; i++)
    if (g_strcmp0 (mode, pad_modes[i]) == 0)
      g->pad_mode = (NnConvNdPad) i;
  if (g->in_channels % g->groups || g->out_channels % g->groups) {
    g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_OUT_OF_RANGE,
                 "%s must be divisible by groups (found %" G_GINT64_FORMAT
                 ", groups=%" G_GINT64_FORMAT ")",
                 g->in_channels % g->groups ? "in_channels" : "out_channels",
                 g->in_channels % g->groups ? g->in_channels : g->out_channels,
                 g->groups);
    return FALSE;
  }
  if (transposed && g->pad_mode != NN_CONVND_ZEROS) {
    g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_INVALID,
                 "Only \"zeros\" padding mode is supported for %s",
                 nn_module_get_type_name (self));
    return FALSE;
  }
  if (!read_padding (self, g, error))
    return FALSE;
  NnShape ws = { 2 + nd, { 0 } };
  ws.dims[0] = transposed ? g->in_channels : g->out_channels;
  ws.dims[1] = transposed ? g->out_channels / g->groups : g->in_channels / g->groups;
  for (guint i = 0; i < nd; i++)
    ws.dims[2 + i] = g->k[2 - nd + i];
  return nn_lu_add_weight_bias (self, &ws, g->has_bias, g->out_channels, error);
}

void
nn_convnd_destroy (NnModule *self)
{
  g_free (nn_module_get_private (self));
}

/* Appends ", key=(a, b)" unless every element equals @dflt. */
static void
append_tuple (GString *s, NnModule *self, const char *key, gint64 dflt,
              gboolean always)
{
  const NnConvNd *g = nn_module_get_private (self);
  gint64 t[2] = { dflt, dflt };
  if (!nn_module_config_ints (self, key, t, g->nd)) {
    g_string_append_printf (s, ", %s=%s", key, nn_module_config_string (self, key));
    return;
  }
  gboolean dflt_all = TRUE;
  for (guint i = 0; i < g->nd; i++)
    dflt_all = dflt_all && t[i] == dflt;
  if (dflt_all && !always)
    return;
  if (g->nd == 1)
    g_string_append_printf (s, ", %s=(%" G_GINT64_FORMAT ",)", key, t[0]);
  else
    g_string_append_printf (s, ", %s=(%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ")",
                            key, t[0], t[1]);
}

char *
nn_convnd_extra_repr (NnModule *self)
{
  const NnConvNd *g = nn_module_get_private (self);
  GString *s = g_string_new (NULL);
  g_string_append_printf (s, "%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT,
                          g->in_channels, g->out_channels);
  append_tuple (s, self, "kernel_size", 0, TRUE);
  append_tuple (s, self, "stride", 1, TRUE);
  append_tuple (s, self, "padding", 0, FALSE);
  append_tuple (s, self, "dilation", 1, FALSE);
  if (g->transposed)
    append_tuple (s, self, "output_padding", 0, FALSE);
  if (g->groups != 1)
    g_string_append_printf (s, ", groups=%" G_GINT64_FORMAT, g->groups);
  if (!g->has_bias)
    g_string_append (s, ", bias=False");
  if (g->pad_mode != NN_CONVND_ZEROS)
    g_string_append_printf (s, ", padding_mode=%s", pad_modes[g->pad_mode]);
  return g_string_free (s, FALSE);
}

void
nn_convnd_reset_parameters (NnModule *self, GRand *rng)
{
  NnTensor *w = nn_module_get_parameter (self, "weight");
  /* fan_in as torch.nn.init computes it: size(1) times the kernel. */
  double fan_in = (double) nn_tensor_numel (w) / (double) w->shape.dims[0];
  /* kaiming_uniform_(a=sqrt(5)): gain sqrt(2 / 6), bound gain * sqrt(3 /
   * fan_in) = 1 / sqrt(fan_in); the bias uses the same bound. */
  double bound = fan_in > 0 ? 1.0 / sqrt (fan_in) : 0.0;
  nn_module_init_uniform (self, "weight", bound, rng);
  nn_module_init_uniform (self, "bias", bound, rng);
}

guint64
nn_convnd_count_macs (NnModule *self, const NnArgs *args, const NnValue *out)
{
  return nn_lu_count_macs_params (self, out, TRUE);
}
