/* nnctl convert IN -o OUT: any weights file nnkit reads (.pth/.pt,
 * safetensors, a sharded index) to one safetensors file or to shards,
 * with the key selection and renaming of nn_weights_open(). */
#include "nnctl.h"

#include <string.h>

/* "500MB", "2GB", "1.5GiB", "4096": bytes, decimal and binary units. */
static gboolean
parse_size (const char *text, guint64 *out, GError **error)
{
  static const struct { const char *unit; double mult; } units[] = {
    { "", 1 }, { "B", 1 }, { "KB", 1e3 }, { "MB", 1e6 }, { "GB", 1e9 },
    { "TB", 1e12 }, { "KiB", 1024.0 }, { "MiB", 1048576.0 },
    { "GiB", 1073741824.0 }, { "K", 1e3 }, { "M", 1e6 }, { "G", 1e9 },
  };
  char *end = NULL;
  double v = g_ascii_strtod (text, &end);
  if (end != text && v > 0) {
    for (guint i = 0; i < G_N_ELEMENTS (units); i++) {
      if (g_ascii_strcasecmp (end, units[i].unit) == 0 &&
          v * units[i].mult >= 1 && v * units[i].mult < 9.2e18) {
        *out = (guint64) (v * units[i].mult);
        return TRUE;
      }
    }
  }
  g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_INVALID,
               "--max-shard-size: expected a size such as 500MB, 2GB or "
               "1GiB, found '%s'", text);
  return FALSE;
}

/* The index path for @out: itself if it ends in .json, else
 * "<out>.index.json" (model.safetensors -> model.safetensors.index.json,
 * Hugging Face's name). */
static char *
index_path_for (const char *out)
{
  if (g_str_has_suffix (out, ".json"))
    return g_strdup (out);
  return g_strconcat (out, ".index.json", NULL);
}

static gboolean
convert (NnctlGlobal *g, const char *in, const char *out,
         const NnWeightsOpenOptions *o, guint64 shard, GError **error)
{
  g_autoptr (NnSafetensors) st = nnctl_open_weights (g, in, o, FALSE, error);
  if (st == NULL)
    return FALSE;
  guint n = nn_safetensors_n_tensors (st);
  g_autoptr (GPtrArray) tensors = g_ptr_array_new_with_free_func (
    (GDestroyNotify) nn_tensor_unref);
  g_autofree const char **names = g_new0 (const char *, n + 1);
  guint64 bytes = 0;
  for (guint i = 0; i < n; i++) {
    names[i] = nn_safetensors_name_at (st, i);
    NnDType d = NN_DTYPE_F32;
    nn_dtype_parse (nn_safetensors_get_info (st, names[i], NULL), &d);
    NnTensor *t = nn_safetensors_get (st, names[i], d, error);
    if (t == NULL)
      return FALSE;
    bytes += nn_tensor_nbytes (t);
    g_ptr_array_add (tensors, t);
  }
  /* A single-file model's descriptor travels with its weights; the notes
   * of what nn_weights_open() did stay behind. */
  g_autoptr (GHashTable) md = g_hash_table_new (g_str_hash, g_str_equal);
  const char *desc = nn_safetensors_get_metadata (st, NNCTL_DESCRIPTOR_KEY);
  if (desc)
    g_hash_table_insert (md, (gpointer) NNCTL_DESCRIPTOR_KEY, (gpointer) desc);
  g_hash_table_insert (md, (gpointer) "format", (gpointer) "pt");
  NnTensor *const *ts = (NnTensor *const *) tensors->pdata;
  if (shard) {
    g_autofree char *index = index_path_for (out);
    if (!nn_safetensors_write_sharded (index, names, ts, n, md, shard, error))
      return FALSE;
    nnctl_info (g, "%s: %u tensors, %.2f MB, written as shards of at most "
                "%" G_GUINT64_FORMAT " bytes, index %s\n", in, n, bytes / 1e6,
                shard, index);
    return TRUE;
  }
  if (!nn_safetensors_write (out, names, ts, n, md, error))
    return FALSE;
  nnctl_info (g, "%s: %u tensors, %.2f MB, written to %s\n", in, n,
              bytes / 1e6, out);
  return TRUE;
}

int
nnctl_cmd_convert (NnctlGlobal *g, const NnctlCommand *cmd, int argc,
                   char **argv)
{
  char *output = NULL, *key = NULL, *strip = NULL, *add = NULL,
       *shard_text = NULL;
  gboolean no_auto = FALSE;
  GError *err = NULL;
  const GOptionEntry entries[] = {
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &output,
      "Write to FILE (.safetensors; with --max-shard-size, the index "
      "FILE or FILE.index.json)", "FILE" },
    { "key", 'k', 0, G_OPTION_ARG_STRING, &key,
      "Entry of a .pth checkpoint dict holding the state_dict (default: "
      "the only dict of tensors)", "NAME" },
    { "strip-prefix", 0, 0, G_OPTION_ARG_STRING, &strip,
      "Remove PREFIX from keys that start with it", "PREFIX" },
    { "add-prefix", 0, 0, G_OPTION_ARG_STRING, &add,
      "Prepend PREFIX to every key", "PREFIX" },
    { "no-auto-strip", 0, 0, G_OPTION_ARG_NONE, &no_auto,
      "Keep a 'module.' prefix even when every key has it", NULL },
    { "max-shard-size", 0, 0, G_OPTION_ARG_STRING, &shard_text,
      "Write Hugging Face shards of at most SIZE each (500MB, 2GB)", "SIZE" },
    { NULL }
  };
  int rc = nnctl_parse (g, cmd, entries, 0, &argc, &argv, 1, 1);
  guint64 shard = 0;

  if (rc != NNCTL_CONTINUE)
    goto out;
  if (!output) {
    rc = nnctl_usage ("convert", "-o OUT is required");
    goto out;
  }
  if (!shard_text && !nnctl_has_suffix (output, ".safetensors")) {
    rc = nnctl_usage ("convert", "%s: nnctl writes safetensors; name the "
                      "output FILE.safetensors (or give --max-shard-size "
                      "for shards)", output);
    goto out;
  }
  if (shard_text && !parse_size (shard_text, &shard, &err)) {
    rc = nnctl_usage ("convert", "%s", err->message);
    g_clear_error (&err);
    goto out;
  }
  NnWeightsOpenOptions o = { sizeof o, no_auto ? NN_WEIGHTS_NO_AUTO_STRIP : 0,
                             key, strip, add };
  if (!convert (g, argv[1], output, &o, shard, &err))
    rc = nnctl_fail ("convert", err);
  else
    rc = NNCTL_EXIT_OK;
out:
  g_free (output);
  g_free (key);
  g_free (strip);
  g_free (add);
  g_free (shard_text);
  return rc;
}
