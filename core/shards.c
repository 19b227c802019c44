/* nnkit core: sharded safetensors as Hugging Face writes them: an index
 * "model.safetensors.index.json" mapping each key to one shard file in
 * the index's own folder.  Reading merges the shards into one map after
 * checking that index and shards agree; writing splits a state_dict. */
#include "weights-private.h"

#include <string.h>

/* Indexes of the largest models are a few MB. */
#define INDEX_MAX_BYTES (64u * 1024u * 1024u)

/* A shard is named by a bare file name: no folder, so nothing outside the
 * index's folder is ever opened. */
static gboolean
shard_name_ok (const char *s)
{
  return *s && strchr (s, '/') == NULL && strchr (s, '\\') == NULL &&
         strcmp (s, ".") != 0 && strcmp (s, "..") != 0;
}

static JsonObject *
index_parse (const char *path, JsonParser *parser, GError **error)
{
  g_autofree char *text = NULL;
  gsize len;
  g_autoptr (GError) ioerr = NULL;
  if (!g_file_get_contents (path, &text, &len, &ioerr)) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_IO, "%s: %s",
                 path, ioerr->message);
    return NULL;
  }
  g_autoptr (GError) jerr = NULL;
  if (len > INDEX_MAX_BYTES ||
      !json_parser_load_from_data (parser, text, (gssize) len, &jerr) ||
      !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser))) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_HEADER,
                 "%s: not a sharded safetensors index (expected a JSON "
                 "object with a \"weight_map\"%s%s)", path,
                 jerr ? "): " : "", jerr ? jerr->message : "");
    return NULL;
  }
  JsonObject *root = json_node_get_object (json_parser_get_root (parser));
  JsonNode *wm = json_object_get_member (root, "weight_map");
  if (wm == NULL || !JSON_NODE_HOLDS_OBJECT (wm)) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_HEADER,
                 "%s: no \"weight_map\" object: not a sharded safetensors "
                 "index", path);
    return NULL;
  }
  return json_node_get_object (wm);
}

/* Opens every shard named in @wm, in order of first mention, and checks
 * that each key the index lists is in its shard. */
static GPtrArray *
shards_load (const char *path, JsonObject *wm, GError **error)
{
  g_autofree char *dir = g_path_get_dirname (path);
  g_autoptr (GPtrArray) shards = g_ptr_array_new_with_free_func (
    (GDestroyNotify) nn_safetensors_free);
  g_autoptr (GHashTable) by_file = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GList) keys = json_object_get_members (wm);
  for (GList *l = keys; l; l = l->next) {
    JsonNode *v = json_object_get_member (wm, l->data);
    const char *file = JSON_NODE_HOLDS_VALUE (v) &&
                       json_node_get_value_type (v) == G_TYPE_STRING
                       ? json_node_get_string (v) : NULL;
    if (file == NULL || !shard_name_ok (file)) {
      g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_HEADER,
                   "%s: key '%s' maps to %s%s%s, expected a shard file name "
                   "in the index's folder (no '/' or '..')", path,
                   (const char *) l->data, file ? "'" : "a non-string",
                   file ? file : "", file ? "'" : "");
      return NULL;
    }
    NnSafetensors *st = g_hash_table_lookup (by_file, file);
    if (st == NULL) {
      g_autofree char *full = g_build_filename (dir, file, NULL);
      if (!g_file_test (full, G_FILE_TEST_EXISTS)) {
        g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_IO,
                     "%s: shard %s (holding '%s') does not exist", path,
                     full, (const char *) l->data);
        return NULL;
      }
      st = nn_safetensors_open (full, error);
      if (st == NULL)
        return NULL;
      g_ptr_array_add (shards, st);
      g_hash_table_insert (by_file, (gpointer) file, st);
    }
    if (!g_hash_table_contains (st->by_name, l->data)) {
      g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_NOT_FOUND,
                   "%s: the index puts '%s' in %s, but that shard does not "
                   "hold it", path, (const char *) l->data, file);
      return NULL;
    }
  }
  /* The reverse: a shard key the index does not send there. */
  for (guint s = 0; s < shards->len; s++) {
    NnSafetensors *st = shards->pdata[s];
    for (guint i = 0; i < st->entries->len; i++) {
      const char *name = ((NnStEntry *) st->entries->pdata[i])->name;
      JsonNode *v = json_object_get_member (wm, name);
      if (v == NULL || g_hash_table_lookup (by_file, json_node_get_string (v))
                       != st) {
        g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_HEADER,
                     "%s: shard %s holds '%s', which the index %s", path,
                     st->path, name, v ? "puts in another shard"
                                       : "does not list");
        return NULL;
      }
    }
  }
  return g_steal_pointer (&shards);
}

NnSafetensors *
nn_shards_open (const char *path, const NnWeightsOpenOptions *opts,
                GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *wm = index_parse (path, parser, error);
  if (wm == NULL)
    return NULL;
  g_autoptr (GPtrArray) shards = shards_load (path, wm, error);
  if (shards == NULL)
    return NULL;

  g_autoptr (GPtrArray) names = g_ptr_array_new ();
  for (guint s = 0; s < shards->len; s++) {
    NnSafetensors *st = shards->pdata[s];
    for (guint i = 0; i < st->entries->len; i++)
      g_ptr_array_add (names, ((NnStEntry *) st->entries->pdata[i])->name);
  }
  NnWeightsRename r;
  nn_weights_rename_plan (&r, names, opts);
  g_autoptr (NnStBuilder) b = nn_st_builder_new (path, error);
  if (b == NULL) {
    nn_weights_rename_finish (&r, NULL);
    return NULL;
  }
  for (guint s = 0; s < shards->len; s++) {
    NnSafetensors *st = shards->pdata[s];
    for (guint i = 0; i < st->entries->len; i++) {
      NnStEntry *e = st->entries->pdata[i];
      g_autofree char *name = nn_weights_rename (&r, e->name);
      guint8 *dst = nn_st_builder_add (b, name, e->dtype, &e->shape, error);
      if (dst == NULL) {
        nn_weights_rename_finish (&r, NULL);
        return NULL;
      }
      memcpy (dst, st->data + e->begin, (gsize) (e->end - e->begin));
    }
    /* Shard metadata (a descriptor, "format") carries over; first wins. */
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init (&it, st->metadata);
    while (g_hash_table_iter_next (&it, &k, &v))
      if (!nn_st_builder_has_metadata (b, k))
        nn_st_builder_set_metadata (b, k, v);
  }
  nn_st_builder_set_metadata (b, NN_WEIGHTS_META_FORMAT, "sharded");
  nn_weights_rename_finish (&r, b);
  return nn_st_builder_finish (g_steal_pointer (&b), error);
}

/* --- writing ---------------------------------------------------------------- */

static char *
index_stem (const char *index_path)
{
  g_autofree char *base = g_path_get_basename (index_path);
  static const char *const suffixes[] = { ".safetensors.index.json",
                                          ".index.json", ".json" };
  for (guint i = 0; i < G_N_ELEMENTS (suffixes); i++)
    if (g_str_has_suffix (base, suffixes[i]) &&
        strlen (base) > strlen (suffixes[i]))
      return g_strndup (base, strlen (base) - strlen (suffixes[i]));
  return g_steal_pointer (&base);
}

gboolean
nn_safetensors_write_sharded (const char *index_path,
                              const char *const *names,
                              NnTensor *const *tensors, guint n,
                              GHashTable *metadata, guint64 max_shard_bytes,
                              GError **error)
{
  g_return_val_if_fail (index_path != NULL && max_shard_bytes > 0, FALSE);
  /* Shard i holds tensors [first[i], first[i + 1]). */
  g_autoptr (GArray) first = g_array_new (FALSE, FALSE, sizeof (guint));
  guint64 in_shard = 0, total = 0;
  for (guint i = 0; i < n; i++) {
    guint64 nb = nn_tensor_nbytes (tensors[i]);
    if (i == 0 || in_shard + nb > max_shard_bytes) {
      g_array_append_val (first, i);
      in_shard = 0;
    }
    in_shard += nb;
    total += nb;
  }
  guint n_shards = MAX (first->len, 1);
  if (first->len == 0) {
    guint zero = 0;
    g_array_append_val (first, zero);
  }
  g_array_append_val (first, n);

  g_autofree char *dir = g_path_get_dirname (index_path);
  g_autofree char *stem = index_stem (index_path);
  g_autoptr (JsonBuilder) jb = json_builder_new ();
  json_builder_begin_object (jb);
  json_builder_set_member_name (jb, "metadata");
  json_builder_begin_object (jb);
  json_builder_set_member_name (jb, "total_size");
  json_builder_add_int_value (jb, (gint64) total);
  json_builder_end_object (jb);
  json_builder_set_member_name (jb, "weight_map");
  json_builder_begin_object (jb);
  for (guint s = 0; s < n_shards; s++) {
    g_autofree char *file = g_strdup_printf ("%s-%05u-of-%05u.safetensors",
                                             stem, s + 1, n_shards);
    g_autofree char *full = g_build_filename (dir, file, NULL);
    guint a = g_array_index (first, guint, s);
    guint z = g_array_index (first, guint, s + 1);
    if (!nn_safetensors_write (full, names + a, tensors + a, z - a, metadata,
                               error))
      return FALSE;
    for (guint i = a; i < z; i++) {
      json_builder_set_member_name (jb, names[i]);
      json_builder_add_string_value (jb, file);
    }
  }
  json_builder_end_object (jb);
  json_builder_end_object (jb);

  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (jb);
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  gsize len;
  g_autofree char *body = json_generator_to_data (gen, &len);
  g_autofree char *text = g_strconcat (body, "\n", NULL);
  g_autoptr (GError) ioerr = NULL;
  if (!g_file_set_contents (index_path, text, (gssize) len + 1, &ioerr)) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_IO, "%s: %s",
                 index_path, ioerr->message);
    return FALSE;
  }
  return TRUE;
}
