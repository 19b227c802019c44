/* nnkit core: the rules that select and exclude providers (NN_PROVIDERS,
 * nn_registry_set_providers) and the order providers are tried in.  Pure
 * functions over names and ranks; providers.c applies them to the
 * registry. */
#include "nn-private.h"
#include "nn-engine-private.h"

#include <stdlib.h>
#include <string.h>

static void
rule_free (gpointer p)
{
  NnProviderRule *r = p;

  g_free (r->type);
  g_free (r->plugin);
  g_free (r);
}

void
nn_provider_rules_free (NnProviderRules *rules)
{
  if (!rules)
    return;
  g_ptr_array_unref (rules->rules);
  g_free (rules->text);
  g_free (rules);
}

/* Type and plugin names: what a C identifier, a dotted name or a plugin
 * file stem may hold. */
static gboolean
name_ok (const char *s)
{
  if (!*s)
    return FALSE;
  for (; *s; s++)
    if (!g_ascii_isalnum (*s) && !strchr ("_.-", *s))
      return FALSE;
  return TRUE;
}

NnProviderRules *
nn_provider_rules_parse (const char *text, char **why)
{
  NnProviderRules *rules = g_new0 (NnProviderRules, 1);
  char **items = g_strsplit (text ? text : "", ",", -1);
  GString *norm = g_string_new (NULL);

  *why = NULL;
  rules->rules = g_ptr_array_new_with_free_func (rule_free);
  for (guint i = 0; items[i] && !*why; i++)
    {
      char *item = g_strstrip (items[i]);
      char *eq = strchr (item, '=');
      const char *plugin = eq ? eq + 1 : item;
      NnProviderRule *r;

      if (!*item)
        continue;
      if (eq)
        *eq = '\0';
      while (g_ascii_isspace (*plugin))
        plugin++;
      gboolean exclude = *plugin == '-';
      if (exclude)
        plugin++;
      if ((eq && !name_ok (g_strstrip (item))) || !name_ok (plugin))
        {
          if (eq)
            *eq = '=';
          *why = g_strdup_printf ("bad provider rule '%s': expected "
                                  "[TYPE=][-]PLUGIN, e.g. 'Conv2d=dnnl' or "
                                  "'-dnnl'", item);
          break;
        }
      r = g_new0 (NnProviderRule, 1);
      r->type = eq ? g_strdup (item) : NULL;
      r->plugin = g_strdup (plugin);
      r->exclude = exclude;
      g_ptr_array_add (rules->rules, r);
      g_string_append_printf (norm, "%s%s%s%s%s", norm->len ? "," : "",
                              eq ? item : "", eq ? "=" : "",
                              exclude ? "-" : "", plugin);
    }
  g_strfreev (items);
  if (*why)
    {
      g_string_free (norm, TRUE);
      nn_provider_rules_free (rules);
      return NULL;
    }
  rules->text = g_string_free (norm, FALSE);
  return rules;
}

int
nn_provider_effective_rank (int rank)
{
  return rank == 0 ? NN_RANK_PRIMARY : rank;
}

/* Position of the first rule selecting @c for @type, G_MAXINT for none;
 * sets @c->excluded when a rule excludes it. */
static int
apply_rules (const NnProviderRules *rules, const char *type,
             NnProviderCand *c)
{
  int sel = G_MAXINT;

  for (guint i = 0; rules && i < rules->rules->len; i++)
    {
      const NnProviderRule *r = g_ptr_array_index (rules->rules, i);
      if ((r->type && strcmp (r->type, type) != 0)
          || strcmp (r->plugin, c->plugin) != 0)
        continue;
      if (r->exclude)
        c->excluded = TRUE;
      else if (sel == G_MAXINT)
        sel = (int) i;
    }
  return sel;
}

typedef struct {
  NnProviderCand cand;
  int sel;
} Keyed;

static int
keyed_compare (const void *pa, const void *pb)
{
  const Keyed *a = pa, *b = pb;

  if (a->cand.excluded != b->cand.excluded)
    return a->cand.excluded ? 1 : -1;
  if (a->sel != b->sel)
    return a->sel < b->sel ? -1 : 1;
  if (a->cand.rank != b->cand.rank)
    return a->cand.rank > b->cand.rank ? -1 : 1;
  return a->cand.load_order < b->cand.load_order ? -1
         : a->cand.load_order > b->cand.load_order;
}

void
nn_provider_rules_order (const NnProviderRules *rules, const char *type,
                         NnProviderCand *cands, guint n)
{
  Keyed *k = g_new (Keyed, n);

  for (guint i = 0; i < n; i++)
    {
      k[i].cand = cands[i];
      k[i].cand.excluded = FALSE;
      k[i].sel = apply_rules (rules, type, &k[i].cand);
      /* An exclusion beats a selection of the same provider. */
      k[i].cand.selected = k[i].sel != G_MAXINT && !k[i].cand.excluded;
      if (k[i].cand.excluded)
        k[i].sel = G_MAXINT;
      if (k[i].cand.rank < 0 && !k[i].cand.selected)
        k[i].cand.excluded = TRUE;
    }
  qsort (k, n, sizeof *k, keyed_compare);
  for (guint i = 0; i < n; i++)
    cands[i] = k[i].cand;
  g_free (k);
}
