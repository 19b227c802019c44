/* nnctl run: the forward's arguments from the command line.
 *
 *   --input FILE            one tensor per forward parameter, by name; a
 *                           file of a single tensor feeds a single-input
 *                           model whatever the tensor's key
 *   --input FILE:NAME       tensor NAME of FILE: bound to the parameter of
 *                           that name, else positionally in the order given
 *   --random NAME:DTYPE:SHAPE[:LO..HI]   a random tensor for parameter NAME
 *   --random SHAPE          for a single-input model: a random tensor of
 *                           the recorded input's name and dtype, else a
 *                           standard normal float32 one, positional
 *
 * Tensors keep the file's dtype: the core's binding checks it against the
 * signature and names the parameter when it does not fit. */
#include "nnctl.h"
#include "run_inputs.h"

#include <math.h>
#include <string.h>

void
nnctl_inputs_init (NnctlInputs *in)
{
  in->names = g_ptr_array_new_with_free_func (g_free);
  in->tensors = g_ptr_array_new_with_free_func ((GDestroyNotify) nn_tensor_unref);
  in->positional = g_array_new (FALSE, FALSE, sizeof (gboolean));
}

void
nnctl_inputs_clear (NnctlInputs *in)
{
  g_clear_pointer (&in->args, nn_value_unref);
  g_clear_pointer (&in->kwargs, nn_value_unref);
  g_clear_pointer (&in->names, g_ptr_array_unref);
  g_clear_pointer (&in->tensors, g_ptr_array_unref);
  g_clear_pointer (&in->positional, g_array_unref);
}

gboolean
nnctl_inputs_add (NnctlInputs *in, const char *name, gboolean positional,
                  NnTensor *t, GError **error)
{
  for (guint i = 0; !positional && i < in->names->len; i++)
    if (!g_array_index (in->positional, gboolean, i)
        && strcmp (in->names->pdata[i], name) == 0) {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "argument '%s' given twice", name);
      nn_tensor_unref (t);
      return FALSE;
    }
  g_ptr_array_add (in->names, g_strdup (name));
  g_ptr_array_add (in->tensors, t);
  g_array_append_val (in->positional, positional);
  return TRUE;
}

static gint
find_named (NnctlInputs *in, const char *name)
{
  for (guint i = 0; i < in->names->len; i++)
    if (!g_array_index (in->positional, gboolean, i)
        && strcmp (in->names->pdata[i], name) == 0)
      return (gint) i;
  return -1;
}

void
nnctl_inputs_finish (NnctlInputs *in, char **params)
{
  guint n = in->names->len;
  g_autoptr (GArray) order = g_array_new (FALSE, FALSE, sizeof (guint));
  g_autofree gboolean *used = g_new0 (gboolean, MAX (n, 1));
  guint next_pos = 0, n_positional;

  g_clear_pointer (&in->args, nn_value_unref);
  g_clear_pointer (&in->kwargs, nn_value_unref);
  in->args = nn_value_new_tuple ();
  in->kwargs = nn_value_new_dict ();
  /* Each parameter in the forward's order takes the tensor named after it,
   * else the next positional one, up to the first it cannot fill: so a
   * Graph's "x" takes a recorded "input", and names mix with positions. */
  for (guint p = 0; params && params[p]; p++) {
    gint i = find_named (in, params[p]);
    while (i < 0 && next_pos < n
           && !g_array_index (in->positional, gboolean, next_pos))
      next_pos++;
    if (i < 0 && next_pos < n)
      i = (gint) next_pos++;
    if (i < 0)
      break;
    used[i] = TRUE;
    g_array_append_val (order, i);
  }
  /* Positional tensors left over go after them, in the order given. */
  for (guint i = 0; i < n; i++)
    if (!used[i] && g_array_index (in->positional, gboolean, i)) {
      used[i] = TRUE;
      g_array_append_val (order, i);
    }
  n_positional = order->len;
  for (guint i = 0; i < n; i++)
    if (!used[i])
      g_array_append_val (order, i);
  for (guint k = 0; k < order->len; k++) {
    guint i = g_array_index (order, guint, k);
    NnValue *v = nn_value_new_tensor (in->tensors->pdata[i]);
    if (k < n_positional)
      nn_value_append (in->args, v);
    else
      nn_value_dict_set (in->kwargs, in->names->pdata[i], v);
  }
  /* Reports list the inputs in the order of the call. */
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  GPtrArray *tensors = g_ptr_array_new_with_free_func ((GDestroyNotify) nn_tensor_unref);
  GArray *positional = g_array_new (FALSE, FALSE, sizeof (gboolean));
  for (guint k = 0; k < order->len; k++) {
    guint i = g_array_index (order, guint, k);
    gboolean pos = k < n_positional;
    g_ptr_array_add (names, g_strdup (in->names->pdata[i]));
    g_ptr_array_add (tensors, nn_tensor_ref (in->tensors->pdata[i]));
    g_array_append_val (positional, pos);
  }
  g_ptr_array_unref (in->names);
  g_ptr_array_unref (in->tensors);
  g_array_unref (in->positional);
  in->names = names;
  in->tensors = tensors;
  in->positional = positional;
}

static gboolean
is_param (char **params, const char *name)
{
  return params && g_strv_contains ((const char *const *) params, name);
}

/* Adds @t (transfer full) under @name: by name when the forward has such a
 * parameter (or @by_name forces it), else positionally. */
static gboolean
add_tensor (NnctlInputs *in, char **params, const char *name, gboolean by_name,
            NnTensor *t, GError **error)
{
  return nnctl_inputs_add (in, name, !(by_name || is_param (params, name)), t,
                           error);
}

static char *
list_names (NnSafetensors *st)
{
  GString *s = g_string_new (NULL);
  for (guint i = 0; i < nn_safetensors_n_tensors (st); i++)
    g_string_append_printf (s, "%s%s", i ? ", " : "",
                            nn_safetensors_name_at (st, i));
  return g_string_free (s, FALSE);
}

/* Tensor @name of @st in the file's own dtype. */
static NnTensor *
read_tensor (NnSafetensors *st, const char *file, const char *name,
             GError **error)
{
  NnDType dtype;
  const char *info = nn_safetensors_get_info (st, name, NULL);
  if (!info) {
    g_autofree char *names = list_names (st);
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_NOT_FOUND,
                 "%s: no tensor '%s' (it has: %s)", file, name, names);
    return NULL;
  }
  if (!nn_dtype_parse (info, &dtype)) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_DTYPE,
                 "%s: tensor '%s' has dtype %s, which nnkit does not read",
                 file, name, info);
    return NULL;
  }
  return nn_safetensors_get (st, name, dtype, error);
}

/* FILE or FILE:NAME; a FILE that exists as typed wins over a split. */
static gboolean
add_file (NnctlInputs *in, char **params, const char *spec, gboolean only,
          GError **error)
{
  g_autofree char *file = g_strdup (spec);
  const char *name = NULL;
  g_autoptr (NnSafetensors) st = NULL;

  if (!g_file_test (file, G_FILE_TEST_EXISTS)) {
    char *colon = strrchr (file, ':');
    if (colon) {
      *colon = '\0';
      name = colon + 1;
    }
  }
  st = nn_safetensors_open (file, error);
  if (!st)
    return FALSE;
  if (name) {
    NnTensor *t = read_tensor (st, file, name, error);
    return t && add_tensor (in, params, name, FALSE, t, error);
  }
  guint n = nn_safetensors_n_tensors (st);
  /* The single-input case of ABI 1: one tensor, any key. */
  if (only && n == 1) {
    NnTensor *t = read_tensor (st, file, nn_safetensors_name_at (st, 0), error);
    if (!t)
      return FALSE;
    return nnctl_inputs_add (in, nn_safetensors_name_at (st, 0), TRUE, t,
                             error);
  }
  /* One tensor per parameter, by name; other tensors (labels beside the
   * inputs, say) are not arguments and stay unread. */
  guint used = 0;
  for (guint i = 0; i < n; i++) {
    const char *key = nn_safetensors_name_at (st, i);
    if (!is_param (params, key))
      continue;
    NnTensor *t = read_tensor (st, file, key, error);
    if (!t || !add_tensor (in, params, key, TRUE, t, error))
      return FALSE;
    used++;
  }
  if (used == 0) {
    g_autofree char *names = list_names (st);
    g_autofree char *want = params ? g_strjoinv (", ", params)
                                   : g_strdup ("(unknown)");
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_NOT_FOUND,
                 "%s: none of its tensors (%s) is named after a forward "
                 "argument (%s): say which with %s:NAME", file, names, want,
                 file);
    return FALSE;
  }
  return TRUE;
}

/* "LO..HI" with numbers as strtod reads them. */
static gboolean
parse_range (const char *text, double *lo, double *hi)
{
  const char *dots = strstr (text, "..");
  char *end;
  if (!dots)
    return FALSE;
  g_autofree char *a = g_strndup (text, dots - text);
  *lo = g_ascii_strtod (a, &end);
  if (!*a || *end)
    return FALSE;
  *hi = g_ascii_strtod (dots + 2, &end);
  return dots[2] && !*end && isfinite (*lo) && isfinite (*hi);
}

/* numel of @shape, or -1 when it would not fit in memory. */
static gint64
checked_numel (const NnShape *shape)
{
  gint64 n = 1;
  for (guint i = 0; i < shape->ndim; i++) {
    if (shape->dims[i] != 0 && n > G_MAXINT64 / 8 / shape->dims[i])
      return -1;
    n *= shape->dims[i];
  }
  return n;
}

/* Vigna's splitmix64: a 64-bit generator of one add and two multiplies
 * per draw, enough for test inputs (it passes BigCrush). */
static inline guint64
splitmix64 (guint64 *state)
{
  guint64 z = (*state += G_GUINT64_CONSTANT (0x9e3779b97f4a7c15));
  z = (z ^ (z >> 30)) * G_GUINT64_CONSTANT (0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * G_GUINT64_CONSTANT (0x94d049bb133111eb);
  return z ^ (z >> 31);
}

/* A random tensor: floats standard normal (as torch.randn) or uniform in
 * [LO, HI) when a range is given; integers and bools uniform in [LO, HI)
 * as torch.randint, [0, 2) for bool by default.  Drawn as F32 or I64 and
 * converted, so every dtype shares one generator.  Returns (transfer full). */
NnTensor *
nnctl_random_tensor (NnDType dtype, const NnShape *shape, gboolean has_range,
                     double lo, double hi, GRand *rng, GError **error)
{
  g_autofree char *text = nnctl_shape_str (shape);
  gboolean is_float = nn_dtype_is_float (dtype);
  gint64 n = checked_numel (shape);
  g_autoptr (NnTensor) base = NULL;

  if (!has_range && !is_float) {
    lo = 0;
    hi = dtype == NN_DTYPE_BOOL ? 2 : 10;
  }
  if (has_range && !(hi > lo)) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_INVALID,
                 "range %g..%g is empty: HI must be greater than LO", lo, hi);
    return NULL;
  }
  if (!is_float && (lo != floor (lo) || hi != floor (hi))) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_INVALID,
                 "range %g..%g of an integer dtype needs integer bounds", lo, hi);
    return NULL;
  }
  if (n >= 0)
    base = nn_tensor_new (is_float ? NN_DTYPE_F32 : NN_DTYPE_I64, shape);
  if (!base) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_INVALID,
                 "cannot allocate a random tensor %s", text);
    return NULL;
  }
  if (is_float) {
    float *x = nn_tensor_f32 (base);
    guint64 state = has_range ? 0
                    : ((guint64) g_rand_int (rng) << 32) | g_rand_int (rng);
    for (gint64 i = 0; i < n; i++) {
      if (has_range) {
        x[i] = (float) (lo + (hi - lo) * g_rand_double (rng));
        continue;
      }
      /* Marsaglia's polar method: two normals per accepted pair of
       * uniforms in (-1, 1), one logarithm and no sine or cosine, in
       * float (the tensor's precision).  The pair is the two halves of
       * one splitmix64 output, seeded from @rng so the values stay
       * seed-stable.  `--random 1,3,224,224` took 1.44 ms with GLib's
       * Mersenne Twister called twice a pair and a double logarithm,
       * 0.85 ms this way (the tensor's allocation included). */
      float u, v, q;
      do {
        guint64 z = splitmix64 (&state);
        u = (float) (gint32) (guint32) (z >> 32) * (1.0f / 2147483648.0f);
        v = (float) (gint32) (guint32) z * (1.0f / 2147483648.0f);
        q = u * u + v * v;
      } while (q >= 1.0f || q == 0.0f);
      float r = sqrtf (-2.0f * logf (q) / q);
      x[i] = u * r;
      if (i + 1 < n)
        x[++i] = v * r;
    }
  } else {
    gint64 *x = nn_tensor_i64 (base);
    double span = hi - lo;
    for (gint64 i = 0; i < n; i++)
      x[i] = (gint64) lo + (gint64) floor (g_rand_double (rng) * span);
  }
  return nn_tensor_to_dtype (base, dtype);
}

/* The values an integer dtype holds, as bounds of a [LO, HI) range: a
 * range outside them would wrap on conversion, where torch.randint
 * refuses it.  I64 stops at 2^53, where doubles stop being exact. */
static void
int_dtype_bounds (NnDType dtype, double *min, double *max)
{
  switch (dtype) {
  case NN_DTYPE_BOOL: *min = 0; *max = 2; break;
  case NN_DTYPE_U8: *min = 0; *max = 256; break;
  case NN_DTYPE_I8: *min = -128; *max = 128; break;
  case NN_DTYPE_I32: *min = -2147483648.0; *max = 2147483648.0; break;
  default: *min = -9007199254740992.0; *max = 9007199254740992.0; break;
  }
}

/* NAME:DTYPE:SHAPE[:LO..HI], or a bare SHAPE (no ':'). */
static gboolean
add_random (NnctlInputs *in, const NnValue *recorded, char **params,
            const char *spec, GRand *rng, GError **error)
{
  NnShape shape;
  NnDType dtype = NN_DTYPE_F32;
  double lo = 0, hi = 0;
  gboolean has_range = FALSE;
  /* The same syntax serves nnctl summary, which needs no values. */
  const char *option = in->option ? in->option : "--random";

  if (!strchr (spec, ':')) {
    const char *name = "input";
    gboolean by_name = FALSE;
    GError *shape_err = NULL;
    if (!nnctl_parse_shape (spec, &shape, &shape_err)) {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "%s '%s': %s", option, spec, shape_err->message);
      g_error_free (shape_err);
      return FALSE;
    }
    /* One recorded input: its name and dtype, the shape given here. */
    if (recorded && nn_value_n_items (recorded) == 1
        && nn_value_get_tensor (nn_value_item (recorded, 0))) {
      name = nn_value_dict_key (recorded, 0);
      dtype = nn_value_get_tensor (nn_value_item (recorded, 0))->dtype;
      by_name = TRUE;
    }
    NnTensor *t = in->meta ? nn_tensor_new_meta (dtype, &shape)
                           : nnctl_random_tensor (dtype, &shape, FALSE, 0, 0,
                                                  rng, error);
    return t && add_tensor (in, params, name, by_name, t, error);
  }
  g_auto (GStrv) parts = g_strsplit (spec, ":", -1);
  guint np = g_strv_length (parts);
  if (np < 3 || np > (in->meta ? 3u : 4u) || !*parts[0]) {
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                 "%s '%s': expected NAME:DTYPE:SHAPE%s or SHAPE", option,
                 spec, in->meta ? "" : "[:LO..HI]");
    return FALSE;
  }
  if (!nn_dtype_parse (parts[1], &dtype)) {
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                 "%s '%s': unknown dtype '%s' (float32, float16, "
                 "bfloat16, float64, int64, int32, int8, uint8, bool)",
                 option, spec, parts[1]);
    return FALSE;
  }
  GError *shape_err = NULL;
  if (!nnctl_parse_shape (parts[2], &shape, &shape_err)) {
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                 "%s '%s': %s", option, spec, shape_err->message);
    g_error_free (shape_err);
    return FALSE;
  }
  if (np == 4) {
    if (!parse_range (parts[3], &lo, &hi)) {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "%s '%s': expected a range LO..HI, found '%s'",
                   option, spec, parts[3]);
      return FALSE;
    }
    if (!(hi > lo)) {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "%s '%s': range %s is empty: HI must be greater than LO",
                   option, spec, parts[3]);
      return FALSE;
    }
    if (!nn_dtype_is_float (dtype) && (lo != floor (lo) || hi != floor (hi))) {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "%s '%s': range %s of an integer dtype needs integer "
                   "bounds", option, spec, parts[3]);
      return FALSE;
    }
    double min, max;
    int_dtype_bounds (dtype, &min, &max);
    if (!nn_dtype_is_float (dtype) && (lo < min || hi > max)) {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "%s '%s': range %s does not fit %s (values in [%.0f, %.0f))",
                   option, spec, parts[3], nn_dtype_torch_name (dtype), min,
                   max);
      return FALSE;
    }
    has_range = TRUE;
  }
  GError *gen_err = NULL;
  NnTensor *t = in->meta ? nn_tensor_new_meta (dtype, &shape)
                         : nnctl_random_tensor (dtype, &shape, has_range, lo,
                                                hi, rng, &gen_err);
  if (!t) {
    g_set_error (error, gen_err->domain, gen_err->code, "--random '%s': %s",
                 spec, gen_err->message);
    g_error_free (gen_err);
    return FALSE;
  }
  return add_tensor (in, params, parts[0], TRUE, t, error);
}

gboolean
nnctl_inputs_from_options (NnctlInputs *in, const NnValue *recorded,
                           char **params, char **files, char **randoms,
                           guint32 seed, GError **error)
{
  g_autoptr (GRand) rng = g_rand_new_with_seed (seed);
  guint n_files = files ? g_strv_length (files) : 0;
  guint n_random = randoms ? g_strv_length (randoms) : 0;

  for (guint i = 0; i < n_files; i++)
    if (!add_file (in, params, files[i], n_files == 1 && n_random == 0, error))
      return FALSE;
  for (guint i = 0; i < n_random; i++)
    if (!add_random (in, recorded, params, randoms[i], rng, error))
      return FALSE;
  return TRUE;
}
