/* nnkit core: whole models on disk.  A model is a descriptor plus its
 * weights: either a descriptor file with a safetensors file beside it, or
 * one safetensors file whose __metadata__ carries the descriptor. */
#include "nn-private.h"
#include "nn-weights-private.h"
#include "weights-private.h"

#include <string.h>

#define NN_MODEL_DESCRIPTOR_KEY "nnkit.descriptor"

static gboolean
is_single_file (const char *path)
{
  return g_str_has_suffix (path, ".safetensors");
}

char *
nn_model_weights_path_for (const char *path)
{
  g_return_val_if_fail (path != NULL, NULL);
  /* Only the last extension of the file name goes: "a.v1/model.json" ->
   * "a.v1/model.safetensors", "model" -> "model.safetensors". */
  const char *base = strrchr (path, G_DIR_SEPARATOR);
  base = base ? base + 1 : path;
  const char *dot = strrchr (base, '.');
  gsize stem = dot && dot != base ? (gsize) (dot - path) : strlen (path);
  g_autofree char *prefix = g_strndup (path, stem);
  return g_strconcat (prefix, ".safetensors", NULL);
}

static gboolean
load_weights (NnModule *m, NnSafetensors *st, const char *weights_path,
              GError **error)
{
  if (!nn_module_load_state_dict (m, st, NULL, NULL, error)) {
    g_prefix_error (error, "%s: ", weights_path);
    return FALSE;
  }
  return TRUE;
}

static NnModule *
load_single_file (NnRegistry *reg, const char *path, const char *weights_path,
                  const NnWeightsOpenOptions *wopts, GError **error)
{
  g_autoptr (NnSafetensors) st = nn_safetensors_open (path, error);
  if (st == NULL)
    return NULL;
  const char *desc = nn_safetensors_get_metadata (st, NN_MODEL_DESCRIPTOR_KEY);
  if (desc == NULL) {
    g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_INVALID,
                 "%s: no '" NN_MODEL_DESCRIPTOR_KEY "' in its __metadata__: "
                 "a weights file, not a single-file model (expected a "
                 "descriptor .json with these weights beside it)", path);
    return NULL;
  }
  g_autoptr (NnModule) m = nn_descriptor_load_data (reg, desc, -1, path, error);
  if (m == NULL)
    return NULL;
  if (weights_path) {
    g_autoptr (NnSafetensors) wst = nn_weights_open_for_module (
        m, weights_path, wopts, error);
    if (wst == NULL || !load_weights (m, wst, weights_path, error))
      return NULL;
  } else if (!load_weights (m, st, path, error)) {
    return NULL;
  }
  return g_steal_pointer (&m);
}

static NnModule *
load_descriptor_file (NnRegistry *reg, const char *path,
                      const char *weights_path,
                      const NnWeightsOpenOptions *wopts,
                      gboolean allow_no_weights, GError **error)
{
  g_autofree char *beside = weights_path ? NULL : nn_model_weights_path_for (path);
  const char *wpath = weights_path ? weights_path : beside;
  /* The descriptor itself first, then its weights, before building the
   * tree so the cheaper errors come first. */
  if (!g_file_test (path, G_FILE_TEST_EXISTS)) {
    g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_IO,
                 "%s: no such file", path);
    return NULL;
  }
  gboolean have_weights = g_file_test (wpath, G_FILE_TEST_EXISTS);
  if (!have_weights && (weights_path || !allow_no_weights)) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_IO,
                 "%s: weights file %s does not exist%s", path, wpath,
                 weights_path ? "" : " (expected beside the descriptor; "
                 "give a weights path, or allow loading without weights)");
    return NULL;
  }
  g_autoptr (NnModule) m = nn_descriptor_load_file (reg, path, error);
  if (m == NULL || !have_weights)
    return g_steal_pointer (&m);
  g_autoptr (NnSafetensors) st = nn_weights_open_for_module (m, wpath, wopts,
                                                             error);
  if (st == NULL || !load_weights (m, st, wpath, error))
    return NULL;
  return g_steal_pointer (&m);
}

NnModule *
nn_model_load_with_options (NnRegistry *reg, const char *path,
                            const char *weights_path,
                            const NnWeightsOpenOptions *wopts,
                            gboolean allow_no_weights, GError **error)
{
  g_return_val_if_fail (reg != NULL && path != NULL, NULL);
  if (is_single_file (path))
    return load_single_file (reg, path, weights_path, wopts, error);
  return load_descriptor_file (reg, path, weights_path, wopts,
                               allow_no_weights, error);
}

NnModule *
nn_model_load (NnRegistry *reg, const char *path, const char *weights_path,
               gboolean allow_no_weights, GError **error)
{
  return nn_model_load_with_options (reg, path, weights_path, NULL,
                                     allow_no_weights, error);
}

gboolean
nn_model_save (NnModule *root, const char *path, GError **error)
{
  g_return_val_if_fail (root != NULL && path != NULL, FALSE);
  gsize len;
  g_autofree char *desc = nn_descriptor_to_data (root, &len);
  if (is_single_file (path)) {
    g_autoptr (GHashTable) md = g_hash_table_new (g_str_hash, g_str_equal);
    g_hash_table_insert (md, (gpointer) NN_MODEL_DESCRIPTOR_KEY, desc);
    return nn_module_save_state_dict (root, path, md, error);
  }
  /* Both files are written and flushed before either replaces an old one,
   * so a failure leaves the previous pair intact; weights go in first, so
   * a descriptor never names weights that are not there. */
  g_autofree char *wpath = nn_model_weights_path_for (path);
  g_autoptr (NnPendingFile) w = nn_module_state_dict_pending (root, wpath,
                                                             NULL, error);
  if (w == NULL)
    return FALSE;
  g_autoptr (NnPendingFile) d = nn_pending_file_new_data (
      path, desc, len, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_IO, error);
  return d && nn_pending_file_check (w, error) &&
         nn_pending_file_check (d, error) &&
         nn_pending_file_commit (w, error) && nn_pending_file_commit (d, error);
}
