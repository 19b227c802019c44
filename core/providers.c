/* nnkit core: several providers of one layer type, ranked as GStreamer
 * ranks its elements; the choice is made per module when it is created
 * (include/nnkit/providers.h).  The registry's @types keeps the top-ranked
 * provider, so lookups and listings behave as with one provider. */
#include "registry-private.h"
#include "nn-engine-private.h"

#include <nnkit/providers.h>

#include <string.h>

struct NnProviderRulesState {
  gboolean decided;        /* set by the API, or NN_PROVIDERS read */
  NnProviderRules *rules;  /* (nullable) */
};

static GPtrArray *
providers_of_locked (NnRegistry *reg, const char *name)
{
  return reg->providers ? g_hash_table_lookup (reg->providers, name) : NULL;
}

NnTypeEntry *
nn_providers_conflict_locked (NnRegistry *reg, const NnLayerType *type)
{
  GPtrArray *list = providers_of_locked (reg, type->name);
  int rank = nn_provider_effective_rank (type->rank);

  if (!list)
    return g_hash_table_lookup (reg->types, type->name);
  for (guint i = 0; i < list->len; i++)
    {
      NnTypeEntry *e = g_ptr_array_index (list, i);
      if (nn_provider_effective_rank (e->type->rank) == rank)
        return e;
    }
  return NULL;
}

void
nn_providers_add_locked (NnRegistry *reg, const NnLayerType *type,
                         NnPlugin *plugin)
{
  NnTypeEntry *top = g_hash_table_lookup (reg->types, type->name);
  NnTypeEntry *copy = g_new0 (NnTypeEntry, 1);
  GPtrArray *list;

  if (!reg->providers)
    reg->providers = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                            (GDestroyNotify) g_ptr_array_unref);
  list = providers_of_locked (reg, type->name);
  if (!list)
    {
      list = g_ptr_array_new_with_free_func (g_free);
      g_hash_table_insert (reg->providers, (gpointer) type->name, list);
    }
  copy->type = type;
  copy->plugin = plugin;
  g_ptr_array_add (list, copy);

  if (!top)
    {
      top = g_new0 (NnTypeEntry, 1);
      top->type = type;
      top->plugin = plugin;
      g_hash_table_insert (reg->types, (gpointer) type->name, top);
    }
  else if (nn_provider_effective_rank (type->rank)
           > nn_provider_effective_rank (top->type->rank))
    {
      /* Updated in place: @aliases point at this entry. */
      top->type = type;
      top->plugin = plugin;
    }
  /* Whichever provider declares the aliases, they name the type. */
  for (guint k = 0; type->aliases && type->aliases[k]; k++)
    g_hash_table_insert (reg->aliases, (gpointer) type->aliases[k], top);
}

void
nn_providers_clear (NnRegistry *reg)
{
  if (reg->providers)
    g_hash_table_unref (reg->providers);
  reg->providers = NULL;
  if (reg->provider_rules)
    nn_provider_rules_free (reg->provider_rules->rules);
  g_clear_pointer (&reg->provider_rules, g_free);
}

static struct NnProviderRulesState *
rules_state_locked (NnRegistry *reg)
{
  if (!reg->provider_rules)
    reg->provider_rules = g_new0 (struct NnProviderRulesState, 1);
  return reg->provider_rules;
}

/* NN_PROVIDERS is read on the registry's first choice; a malformed value
 * is reported once per registry and ignored, as nothing can fail then. */
static const NnProviderRules *
rules_locked (NnRegistry *reg)
{
  struct NnProviderRulesState *st = rules_state_locked (reg);

  if (!st->decided)
    {
      const char *env = g_getenv ("NN_PROVIDERS");
      char *why = NULL;

      st->decided = TRUE;
      if (env && *env)
        {
          st->rules = nn_provider_rules_parse (env, &why);
          if (!st->rules)
            g_printerr ("nnkit: warning: NN_PROVIDERS ignored: %s\n", why);
          g_free (why);
        }
    }
  return st->rules;
}

gboolean
nn_registry_set_providers (NnRegistry *reg, const char *rules, GError **error)
{
  NnProviderRules *parsed = NULL;
  char *why = NULL;

  g_return_val_if_fail (reg != NULL, FALSE);
  if (rules && *rules)
    {
      parsed = nn_provider_rules_parse (rules, &why);
      if (!parsed)
        {
          g_set_error (error, NN_PLUGIN_ERROR, NN_PLUGIN_ERROR_INVALID,
                       "providers: %s", why);
          g_free (why);
          return FALSE;
        }
    }
  g_mutex_lock (&reg->lock);
  struct NnProviderRulesState *st = rules_state_locked (reg);
  nn_provider_rules_free (st->rules);
  st->rules = parsed;
  st->decided = TRUE;
  g_mutex_unlock (&reg->lock);
  return TRUE;
}

char *
nn_registry_get_providers (NnRegistry *reg)
{
  char *text = NULL;

  g_return_val_if_fail (reg != NULL, NULL);
  g_mutex_lock (&reg->lock);
  const NnProviderRules *r = rules_locked (reg);
  if (r && r->text && *r->text)
    text = g_strdup (r->text);
  g_mutex_unlock (&reg->lock);
  return text;
}

/* Returns: (transfer full) the ordered candidates of @type's name, each
 * holding a reference on its plugin (release with cands_free). */
static NnProviderCand *
ordered_cands (NnRegistry *reg, const NnLayerType *type, guint *n_out)
{
  NnProviderCand *c;
  guint n;

  g_mutex_lock (&reg->lock);
  GPtrArray *list = providers_of_locked (reg, type->name);
  n = list ? list->len : 0;
  c = g_new0 (NnProviderCand, MAX (n, 1));
  for (guint i = 0; i < n; i++)
    {
      NnTypeEntry *e = g_ptr_array_index (list, i);
      c[i].plugin = nn_plugin_get_name (e->plugin);
      c[i].rank = nn_provider_effective_rank (e->type->rank);
      c[i].load_order = i;
      c[i].data = e;
      nn_plugin_ref (e->plugin);
    }
  nn_provider_rules_order (rules_locked (reg), type->name, c, n);
  g_mutex_unlock (&reg->lock);
  *n_out = n;
  return c;
}

static void
cands_free (NnProviderCand *c, guint n)
{
  for (guint i = 0; i < n; i++)
    nn_plugin_unref (((NnTypeEntry *) c[i].data)->plugin);
  g_free (c);
}

const NnLayerType *
nn_providers_choose (NnRegistry *reg, const char *type_name,
                     JsonObject *config, const char *path,
                     NnPlugin **plugin_out, GError **error)
{
  NnPlugin *plugin = NULL;
  const NnLayerType *top = nn_registry_resolve_type (reg, type_name, &plugin,
                                                     error);
  const NnLayerType *chosen = NULL;
  GError *first = NULL;
  GString *refused = NULL;
  guint n = 0;

  *plugin_out = plugin;
  if (!top)
    return NULL;
  g_mutex_lock (&reg->lock);
  GPtrArray *list = providers_of_locked (reg, top->name);
  gboolean single = !list || list->len <= 1;
  g_mutex_unlock (&reg->lock);
  /* One provider: nothing to choose, and its own errors stay as they are. */
  if (single)
    return top;

  NnProviderCand *c = ordered_cands (reg, top, &n);
  const NnCpuInfo *cpu = nn_cpu_info_get ();
  refused = g_string_new (NULL);
  for (guint i = 0; i < n && !chosen; i++)
    {
      NnTypeEntry *e = c[i].data;
      GError *err = NULL;

      if (c[i].excluded)
        {
          g_string_append_printf (refused, "%s%s (excluded)",
                                  refused->len ? ", " : "", c[i].plugin);
          continue;
        }
      /* No path: the caller prefixes it to whatever fails here. */
      JsonObject *cfg = nn_schema_validate (e->type, config, NULL, &err);
      if (!cfg)
        {
          g_string_append_printf (refused, "%s%s (%s)", refused->len ? ", " : "",
                                  c[i].plugin, err->message);
          if (!first)
            first = err;
          else
            g_error_free (err);
          continue;
        }
      if (!e->type->supports || e->type->supports (e->type, cfg, NULL, cpu))
        {
          chosen = e->type;
          *plugin_out = e->plugin;
        }
      else
        g_string_append_printf (refused, "%s%s (does not support this config)",
                                refused->len ? ", " : "", c[i].plugin);
      json_object_unref (cfg);
    }
  cands_free (c, n);

  if (!chosen && first)
    g_propagate_error (error, g_steal_pointer (&first));
  else if (!chosen)
    g_set_error (error, NN_PLUGIN_ERROR, NN_PLUGIN_ERROR_NO_PROVIDER,
                 "no provider of '%s' takes this config: %s", top->name,
                 refused->str);
  g_clear_error (&first);
  g_string_free (refused, TRUE);
  return chosen;
}

static void
provider_info_free (gpointer p)
{
  NnProviderInfo *info = p;

  g_free (info->plugin);
  g_free (info->path);
  g_free (info);
}

GPtrArray *
nn_registry_list_providers (NnRegistry *reg, const char *type_name,
                            GError **error)
{
  const NnLayerType *top;
  GPtrArray *out;
  guint n = 0;

  g_return_val_if_fail (reg != NULL && type_name != NULL, NULL);
  top = nn_registry_resolve_type (reg, type_name, NULL, error);
  if (!top)
    return NULL;
  NnProviderCand *c = ordered_cands (reg, top, &n);
  out = g_ptr_array_new_with_free_func (provider_info_free);
  for (guint i = 0; i < n; i++)
    {
      NnTypeEntry *e = c[i].data;
      NnProviderInfo *info = g_new0 (NnProviderInfo, 1);

      info->plugin = g_strdup (c[i].plugin);
      info->path = g_strdup (nn_plugin_get_path (e->plugin));
      info->rank = c[i].rank;
      info->selected = c[i].selected;
      info->excluded = c[i].excluded;
      g_ptr_array_add (out, info);
    }
  cands_free (c, n);
  return out;
}
