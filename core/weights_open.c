/* nnkit core: one entry point for every weights file.  The format comes
 * from the file's first bytes, never its name, so a .pt holding
 * safetensors or a .bin holding a torch.save zip both open. */
#include "weights-private.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define AUTO_STRIP_PREFIX "module."

const char *
nn_weights_format_name (NnWeightsFormat format)
{
  static const char *const names[] = {
    [NN_WEIGHTS_FORMAT_UNKNOWN] = "unknown",
    [NN_WEIGHTS_FORMAT_SAFETENSORS] = "safetensors",
    [NN_WEIGHTS_FORMAT_SHARDED] = "sharded safetensors",
    [NN_WEIGHTS_FORMAT_PTH] = "PyTorch zip (torch.save)",
    [NN_WEIGHTS_FORMAT_PTH_LEGACY] = "legacy PyTorch (torch.save before 1.6)",
  };
  return (guint) format < G_N_ELEMENTS (names) ? names[format] : "unknown";
}

/* JSON whose top object has a "weight_map" object: Hugging Face's index. */
static gboolean
is_shard_index (const char *path)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  if (!json_parser_load_from_mapped_file (parser, path, NULL))
    return FALSE;
  JsonNode *root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return FALSE;
  JsonNode *wm = json_object_get_member (json_node_get_object (root),
                                         "weight_map");
  return wm != NULL && JSON_NODE_HOLDS_OBJECT (wm);
}

NnWeightsFormat
nn_weights_detect_format (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NN_WEIGHTS_FORMAT_UNKNOWN);
  guint8 head[16] = { 0 };
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_IO,
                 "%s: cannot open: %s", path, g_strerror (e));
    return NN_WEIGHTS_FORMAT_UNKNOWN;
  }
  ssize_t n = read (fd, head, sizeof head);
  close (fd);
  if (n < 0) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_IO,
                 "%s: cannot read (a directory?)", path);
    return NN_WEIGHTS_FORMAT_UNKNOWN;
  }
  if (n >= 4 && memcmp (head, "PK\003\004", 4) == 0)
    return NN_WEIGHTS_FORMAT_PTH;
  if (n >= 4 && memcmp (head, "PK\005\006", 4) == 0)
    return NN_WEIGHTS_FORMAT_PTH; /* an empty zip; the reader says so */
  guint64 hlen = 0;
  for (guint i = 0; i < 8; i++)
    hlen |= (guint64) head[i] << (8 * i);
  /* Safetensors first: a header of 0x280..0x5ff bytes starts with the same
   * two bytes as a legacy pickle (0x80, 2..5), but its JSON opens at 8. */
  if (n >= 9 && hlen <= NN_SAFETENSORS_MAX_HEADER && head[8] == '{')
    return NN_WEIGHTS_FORMAT_SAFETENSORS;
  /* Legacy torch.save pickles a magic number first, with protocol 2. */
  if (n >= 2 && head[0] == 0x80 && head[1] >= 2 && head[1] <= 5)
    return NN_WEIGHTS_FORMAT_PTH_LEGACY;
  /* A safetensors header length is small; JSON text read as one is huge. */
  if (n >= 8 && hlen <= NN_SAFETENSORS_MAX_HEADER)
    return NN_WEIGHTS_FORMAT_SAFETENSORS;
  gssize i = 0;
  while (i < n && g_ascii_isspace (head[i]))
    i++;
  if (i < n && head[i] == '{' && is_shard_index (path))
    return NN_WEIGHTS_FORMAT_SHARDED;
  if (i < n && head[i] == '{') {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_HEADER,
                 "%s: JSON without a \"weight_map\" object: not a sharded "
                 "safetensors index (a model descriptor?)", path);
    return NN_WEIGHTS_FORMAT_UNKNOWN;
  }
  g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_HEADER,
               "%s: not a weights file: neither safetensors (8-byte header "
               "length, then JSON), a torch.save zip ('PK'), nor a sharded "
               "safetensors index (JSON); %s", path,
               n < 8 ? "the file is shorter than 8 bytes"
                     : "its first bytes match none of these");
  return NN_WEIGHTS_FORMAT_UNKNOWN;
}

void
nn_weights_rename_plan (NnWeightsRename *r, GPtrArray *names,
                        const NnWeightsOpenOptions *opts)
{
  memset (r, 0, sizeof *r);
  r->add = opts && opts->add_prefix && *opts->add_prefix ? opts->add_prefix
                                                         : NULL;
  if (opts && opts->strip_prefix && *opts->strip_prefix) {
    r->strip = g_strdup (opts->strip_prefix);
    return;
  }
  if ((opts && (opts->flags & NN_WEIGHTS_NO_AUTO_STRIP)) || names->len == 0)
    return;
  /* DataParallel and DistributedDataParallel save every key under
   * "module."; a model never has that as its only child. */
  for (guint i = 0; i < names->len; i++)
    if (!g_str_has_prefix (names->pdata[i], AUTO_STRIP_PREFIX))
      return;
  r->strip = g_strdup (AUTO_STRIP_PREFIX);
  r->auto_stripped = TRUE;
}

char *
nn_weights_rename (const NnWeightsRename *r, const char *name)
{
  if (r->strip && g_str_has_prefix (name, r->strip))
    name += strlen (r->strip);
  return g_strconcat (r->add ? r->add : "", name, NULL);
}

gboolean
nn_weights_rename_is_identity (const NnWeightsRename *r)
{
  return r->strip == NULL && r->add == NULL;
}

void
nn_weights_rename_finish (NnWeightsRename *r, NnStBuilder *b)
{
  if (b && r->auto_stripped)
    nn_st_builder_set_metadata (b, NN_WEIGHTS_META_STRIPPED, r->strip);
  g_clear_pointer (&r->strip, g_free);
}

/* A safetensors file whose keys must be renamed: copied into memory under
 * the new names, bytes unchanged. */
static NnSafetensors *
safetensors_renamed (NnSafetensors *st, NnWeightsRename *r, GError **error)
{
  g_autoptr (NnStBuilder) b = nn_st_builder_new (st->path, error);
  if (b == NULL)
    return NULL;
  for (guint i = 0; i < st->entries->len; i++) {
    NnStEntry *e = st->entries->pdata[i];
    g_autofree char *name = nn_weights_rename (r, e->name);
    guint8 *dst = nn_st_builder_add (b, name, e->dtype, &e->shape, error);
    if (dst == NULL) {
      g_prefix_error (error, "renaming '%s': ", e->name);
      return NULL;
    }
    memcpy (dst, st->data + e->begin, (gsize) (e->end - e->begin));
  }
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init (&it, st->metadata);
  while (g_hash_table_iter_next (&it, &k, &v))
    nn_st_builder_set_metadata (b, k, v);
  nn_weights_rename_finish (r, b);
  return nn_st_builder_finish (g_steal_pointer (&b), error);
}

static NnSafetensors *
open_safetensors (const char *path, const NnWeightsOpenOptions *opts,
                  GError **error)
{
  g_autoptr (NnSafetensors) st = nn_safetensors_open (path, error);
  if (st == NULL)
    return NULL;
  g_autoptr (GPtrArray) names = g_ptr_array_new ();
  for (guint i = 0; i < st->entries->len; i++)
    g_ptr_array_add (names, ((NnStEntry *) st->entries->pdata[i])->name);
  NnWeightsRename r;
  nn_weights_rename_plan (&r, names, opts);
  if (nn_weights_rename_is_identity (&r))
    return g_steal_pointer (&st);
  return safetensors_renamed (st, &r, error);
}

NnSafetensors *
nn_weights_open (const char *path, const NnWeightsOpenOptions *opts,
                 GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (opts == NULL ||
                        opts->struct_size >= sizeof (NnWeightsOpenOptions),
                        NULL);
  NnWeightsFormat f = nn_weights_detect_format (path, error);
  if (opts && opts->key && f != NN_WEIGHTS_FORMAT_PTH &&
      f != NN_WEIGHTS_FORMAT_UNKNOWN) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_NOT_FOUND,
                 "%s: a checkpoint key ('%s') applies to torch.save files, "
                 "but this file is %s", path, opts->key,
                 nn_weights_format_name (f));
    return NULL;
  }
  switch (f) {
  case NN_WEIGHTS_FORMAT_SAFETENSORS:
    return open_safetensors (path, opts, error);
  case NN_WEIGHTS_FORMAT_SHARDED:
    return nn_shards_open (path, opts, error);
  case NN_WEIGHTS_FORMAT_PTH:
    return nn_pth_open (path, opts, error);
  case NN_WEIGHTS_FORMAT_PTH_LEGACY:
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_HEADER,
                 "%s: legacy PyTorch format (torch.save before 1.6, or "
                 "_use_new_zipfile_serialization=False) is not read; "
                 "re-save it with torch >= 1.6: torch.save(torch.load(f), "
                 "'new.pth')", path);
    return NULL;
  case NN_WEIGHTS_FORMAT_UNKNOWN:
    break;
  }
  return NULL;
}

NnSafetensors *
nn_weights_open_for_module (NnModule *m, const char *path,
                            const NnWeightsOpenOptions *opts, GError **error)
{
  NnWeightsOpenOptions o = { sizeof o, 0, NULL, NULL, NULL };
  if (opts)
    o = *opts;
  o.struct_size = sizeof o;
  if (nn_module_get_child (m, "module"))
    o.flags |= NN_WEIGHTS_NO_AUTO_STRIP;
  return nn_weights_open (path, &o, error);
}
