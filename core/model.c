/* nnkit core: whole models on disk.  A model is a descriptor plus its
 * weights: either a descriptor file with a safetensors file beside it, or
 * one safetensors file whose __metadata__ carries the descriptor. */
#include "nn-private.h"
#include "nn-weights-private.h"
#include "weights-private.h"
#include "json_guard.h"

#include <string.h>

#define NN_MODEL_DESCRIPTOR_KEY "nnkit.descriptor"
/* A two-file save writes the SHA-256 of the state_dict into the weights'
 * __metadata__ and the descriptor, so a pair mixed by an interrupted save
 * is detected, and saving the same model twice gives the same bytes. */
#define NN_MODEL_SAVE_ID_KEY "nnkit.weights_id"
#define NN_MODEL_WEIGHTS_ID_FIELD "weights_id"

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
              const NnWeightsOpenOptions *wopts, GError **error)
{
  NnLoadOptions lo = { sizeof lo, 0, NULL, NULL };
  if (wopts && wopts->struct_size >= G_STRUCT_OFFSET (NnWeightsOpenOptions, flags)
      + sizeof wopts->flags && (wopts->flags & NN_WEIGHTS_KEEP_DTYPE))
    lo.flags |= NN_LOAD_KEEP_DTYPE;
  if (!nn_module_load_model_weights (m, st, &lo, error)) {
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
    if (wst == NULL || !load_weights (m, wst, weights_path, wopts, error))
      return NULL;
  } else if (!load_weights (m, st, path, wopts, error)) {
    return NULL;
  }
  return g_steal_pointer (&m);
}

/* The descriptor's "weights_id" (transfer full), or NULL if it has none or
 * is not readable JSON (the descriptor loader then says why). */
static char *
descriptor_weights_id (const char *data, gsize len)
{
  if (!nn_json_guard_scan (data, len, NN_DESCRIPTOR_MAX_JSON_DEPTH, 0, "", 0,
                           0, NULL))
    return NULL;
  g_autoptr (JsonParser) p = json_parser_new_immutable ();
  if (!json_parser_load_from_data (p, data, (gssize) len, NULL))
    return NULL;
  JsonNode *root = json_parser_get_root (p);
  if (!root || !JSON_NODE_HOLDS_OBJECT (root))
    return NULL;
  JsonNode *n = json_object_get_member (json_node_get_object (root),
                                        NN_MODEL_WEIGHTS_ID_FIELD);
  if (!n || !JSON_NODE_HOLDS_VALUE (n) ||
      json_node_get_value_type (n) != G_TYPE_STRING)
    return NULL;
  return g_strdup (json_node_get_string (n));
}

/* A save killed between its two renames leaves the previous weights
 * linked under a temp name beside the new ones: finds the one whose id is
 * @id (transfer full), or NULL. */
static char *
find_previous_weights (const char *wpath, const char *id)
{
  g_autofree char *dir = g_path_get_dirname (wpath);
  g_autofree char *base = g_path_get_basename (wpath);
  g_autofree char *prefix = g_strconcat (base, ".nnkit-tmp-", NULL);
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;
  while (d && (name = g_dir_read_name (d)) != NULL) {
    if (!g_str_has_prefix (name, prefix) || !strstr (name, "-bak"))
      continue;
    g_autofree char *full = g_build_filename (dir, name, NULL);
    g_autoptr (NnSafetensors) st = nn_safetensors_open (full, NULL);
    if (st && g_strcmp0 (nn_safetensors_get_metadata (st, NN_MODEL_SAVE_ID_KEY),
                         id) == 0)
      return g_steal_pointer (&full);
  }
  return NULL;
}

static gboolean
check_pair (const char *path, const char *id, NnSafetensors *st,
            const char *wpath, GError **error)
{
  const char *have = nn_safetensors_get_metadata (st, NN_MODEL_SAVE_ID_KEY);
  if (id == NULL || g_strcmp0 (have, id) == 0)
    return TRUE;
  g_autofree char *prev = find_previous_weights (wpath, id);
  g_autofree char *hint = prev
      ? g_strdup_printf ("the weights saved with it are in %s (pass them "
                         "with --weights, or save the model again)", prev)
      : g_strdup ("save the model again, or pass --weights to load these "
                  "weights anyway");
  g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_MISMATCH,
               "%s: its weights file %s is not the one saved with it "
               "(descriptor weights_id %s, weights " NN_MODEL_SAVE_ID_KEY
               " %s): a save was interrupted or one file was replaced; %s",
               path, wpath, id, have ? have : "absent", hint);
  return FALSE;
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
  g_autofree char *data = NULL;
  gsize len = 0;
  GError *ioerr = NULL;
  if (!g_file_get_contents (path, &data, &len, &ioerr)) {
    g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_IO, "%s",
                 ioerr->message);
    g_error_free (ioerr);
    return NULL;
  }
  g_autoptr (NnModule) m = nn_descriptor_load_data (reg, data, (gssize) len,
                                                    path, error);
  if (m == NULL || !have_weights)
    return g_steal_pointer (&m);
  g_autoptr (NnSafetensors) st = nn_weights_open_for_module (m, wpath, wopts,
                                                             error);
  if (st == NULL)
    return NULL;
  /* Weights named explicitly are the caller's choice; the ones beside the
   * descriptor must be the ones saved with it. */
  g_autofree char *id = weights_path ? NULL : descriptor_weights_id (data, len);
  if (!check_pair (path, id, st, wpath, error) ||
      !load_weights (m, st, wpath, wopts, error))
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

/* SHA-256 over each state_dict entry's name, dtype, shape and bytes, in
 * order (transfer full): the same weights give the same id. */
static char *
state_dict_digest (NnModule *root)
{
  g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autoptr (GPtrArray) sd = nn_module_state_dict (root);
  for (guint i = 0; i < sd->len; i++) {
    NnNamedItem *it = sd->pdata[i];
    const NnTensor *t = it->tensor;
    g_autoptr (GString) head = g_string_new (it->name);
    g_string_append_printf (head, "%c%s", 0, nn_dtype_name (t->dtype));
    for (guint d = 0; d < t->shape.ndim; d++)
      g_string_append_printf (head, ",%" G_GINT64_FORMAT, t->shape.dims[d]);
    g_checksum_update (sum, (const guchar *) head->str, (gssize) head->len + 1);
    if (t->data)
      g_checksum_update (sum, t->data, (gssize) nn_tensor_nbytes (t));
  }
  return g_strdup (g_checksum_get_string (sum));
}

/* @desc with a top-level "weights_id": @id added (transfer full). */
static char *
descriptor_with_id (const char *desc, gsize len, const char *id,
                    gsize *len_out)
{
  g_autoptr (JsonNode) doc = json_from_string (desc, NULL);
  g_return_val_if_fail (doc && JSON_NODE_HOLDS_OBJECT (doc), NULL);
  json_object_set_string_member (json_node_get_object (doc),
                                 NN_MODEL_WEIGHTS_ID_FIELD, id);
  return nn_json_to_text (doc, len_out);
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
    g_autoptr (NnPendingFile) one = nn_module_state_dict_pending (root, path, md,
                                                                TRUE, error);
    return one && nn_pending_file_commit (one, error);
  }
  /* Both files are written and flushed, then committed together: weights
   * first, and if the descriptor cannot follow, the old weights go back.
   * A kill between the two renames leaves a pair whose ids differ, which
   * loading names (docs/WEIGHTS.md, "Saving"). */
  g_autofree char *id = state_dict_digest (root);
  gsize dlen = 0;
  g_autofree char *ddesc = descriptor_with_id (desc, len, id, &dlen);
  g_autofree char *wpath = nn_model_weights_path_for (path);
  g_autoptr (GHashTable) md = g_hash_table_new (g_str_hash, g_str_equal);
  g_hash_table_insert (md, (gpointer) NN_MODEL_SAVE_ID_KEY, id);
  /* A refused output (a device, a directory) writes nothing at all. */
  if (!nn_save_check_output (path, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_IO,
                             error))
    return FALSE;
  g_autoptr (NnPendingFile) w = nn_module_state_dict_pending (root, wpath,
                                                             md, TRUE, error);
  if (w == NULL)
    return FALSE;
  g_autoptr (NnPendingFile) d = nn_pending_file_new_data (
      path, ddesc, dlen, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_IO, error);
  if (d == NULL)
    return FALSE;
  NnPendingFile *both[] = { w, d };
  return nn_pending_file_commit_all (both, 2, error);
}
