/* nnkit core: plugins loaded on demand (docs/PLUGIN_LOADING.md, "Loading
 * on demand").  A file the plugin index (plugin_index.c) knows, unchanged,
 * is not dlopen()ed by the scan but recorded as deferred with the names it
 * registers; a lookup of one of those names loads it.  Whatever would need
 * every plugin (listings, failures, an unknown name) loads them all first,
 * so what callers see is what an eager scan gives. */
#include "registry-private.h"

#include <string.h>
#include <sys/stat.h>

struct _NnPendingPlugin {
  char *path;
  char *canonical;
  char *name;          /* plugin name, from the index */
  GHashTable *types;   /* type name -> effective rank, from the index */
  GHashTable *aliases; /* its aliases, from the index */
};

static gboolean
registers (const NnPendingPlugin *p, const char *name)
{
  return g_hash_table_contains (p->types, name)
         || g_hash_table_contains (p->aliases, name);
}

void
nn_pending_plugin_free (gpointer p)
{
  NnPendingPlugin *pp = p;

  g_free (pp->path);
  g_free (pp->canonical);
  g_free (pp->name);
  g_clear_pointer (&pp->types, g_hash_table_unref);
  g_clear_pointer (&pp->aliases, g_hash_table_unref);
  g_free (pp);
}

gboolean
nn_registry_lazy_default (void)
{
  const char *v = g_getenv ("NN_PLUGIN_LAZY");
  return !(v && (strcmp (v, "0") == 0 || g_ascii_strcasecmp (v, "no") == 0));
}

/* Whether @a's aliases or types collide with @b's names in an order-
 * dependent way: an alias has one owner, so any common alias, or alias
 * and type name; a type name only when both rank it the same (a tie: the
 * second is refused). */
static gboolean
collides (const NnPendingPlugin *a, const NnPendingPlugin *b)
{
  GHashTableIter it;
  gpointer key, value, other;

  g_hash_table_iter_init (&it, a->aliases);
  while (g_hash_table_iter_next (&it, &key, NULL))
    if (registers (b, key))
      return TRUE;
  g_hash_table_iter_init (&it, a->types);
  while (g_hash_table_iter_next (&it, &key, &value))
    if (g_hash_table_contains (b->aliases, key)
        || (g_hash_table_lookup_extended (b->types, key, NULL, &other)
            && other == value))
      return TRUE;
  return FALSE;
}

/* Two plugins whose load order decides something: the same plugin name
 * (the first wins) or a collision of names (the second is refused).
 * Providers of one type at different ranks may load in any order. */
static gboolean
shares (const NnPendingPlugin *a, const NnPendingPlugin *b)
{
  return strcmp (a->name, b->name) == 0 || collides (a, b) || collides (b, a);
}

/* Removes from the pending list, and returns in discovery order, the
 * plugins marked in @mark (reg->pending->len entries) together with every
 * earlier pending plugin that shares a name with one of them: those must
 * load first, as the scan would have loaded them.  Call with @reg->lock. */
static GPtrArray *
take_closure_locked (NnRegistry *reg, gboolean *mark)
{
  GPtrArray *pending = reg->pending;
  GPtrArray *out = g_ptr_array_new_with_free_func (nn_pending_plugin_free);
  gboolean changed = TRUE;

  while (changed)
    {
      changed = FALSE;
      for (guint j = 0; j < pending->len; j++)
        for (guint i = 0; mark[j] && i < j; i++)
          if (!mark[i] && shares (pending->pdata[i], pending->pdata[j]))
            mark[i] = changed = TRUE;
    }
  for (guint i = 0, k = 0; i < pending->len; k++)
    {
      if (mark[k])
        g_ptr_array_add (out, g_ptr_array_steal_index (pending, i));
      else
        i++;
    }
  return out;
}

/* Loads @todo in order.  Call with @reg->load_lock held. */
static void
load_taken (NnRegistry *reg, GPtrArray *todo)
{
  for (guint i = 0; i < todo->len; i++)
    {
      NnPendingPlugin *p = g_ptr_array_index (todo, i);
      g_debug ("loading deferred plugin %s", p->path);
      nn_registry_load_file_serialised (reg, p->path, NULL);
    }
  g_ptr_array_unref (todo);
}

gboolean
nn_registry_lazy_wants_locked (NnRegistry *reg, const char *name)
{
  for (guint i = 0; i < reg->pending->len; i++)
    {
      NnPendingPlugin *p = g_ptr_array_index (reg->pending, i);
      if (!name || registers (p, name))
        return TRUE;
    }
  return FALSE;
}

/* Takes the plugins to load for @name (every one when NULL).  Call with
 * @reg->lock. */
static GPtrArray *
take_for_name_locked (NnRegistry *reg, const char *name)
{
  gboolean *mark = g_new0 (gboolean, MAX (reg->pending->len, 1));
  GPtrArray *todo;

  for (guint i = 0; i < reg->pending->len; i++)
    {
      NnPendingPlugin *p = g_ptr_array_index (reg->pending, i);
      mark[i] = !name || registers (p, name);
    }
  todo = take_closure_locked (reg, mark);
  g_free (mark);
  return todo;
}

/* Plugin init runs with the load lock held: a lookup it makes must not
 * wait for that lock, so it sees only what is loaded. */
static _Thread_local guint init_depth;

void
nn_registry_lazy_init_depth (int delta)
{
  init_depth += delta;
}

void
nn_registry_lazy_load (NnRegistry *reg, const char *name)
{
  GPtrArray *todo;

  if (init_depth > 0)
    return;
  g_mutex_lock (&reg->lock);
  gboolean wanted = nn_registry_lazy_wants_locked (reg, name);
  g_mutex_unlock (&reg->lock);
  if (!wanted)
    return;

  g_mutex_lock (&reg->load_lock);
  g_mutex_lock (&reg->lock);
  todo = take_for_name_locked (reg, name);
  g_mutex_unlock (&reg->lock);
  load_taken (reg, todo);
  g_mutex_unlock (&reg->load_lock);
}

void
nn_registry_lazy_before_file (NnRegistry *reg, const char *canonical,
                              gboolean everything_before)
{
  gboolean *mark;
  guint at = G_MAXUINT;
  GPtrArray *todo;

  g_mutex_lock (&reg->lock);
  for (guint i = 0; i < reg->pending->len && at == G_MAXUINT; i++)
    if (strcmp (((NnPendingPlugin *) reg->pending->pdata[i])->canonical,
                canonical) == 0)
      at = i;
  if (at == G_MAXUINT && !(everything_before && reg->pending->len > 0))
    {
      g_mutex_unlock (&reg->lock);
      return;
    }
  mark = g_new0 (gboolean, MAX (reg->pending->len, 1));
  if (at != G_MAXUINT)
    mark[at] = TRUE;
  else
    for (guint i = 0; i < reg->pending->len; i++)
      mark[i] = TRUE;
  todo = take_closure_locked (reg, mark);
  g_free (mark);
  g_mutex_unlock (&reg->lock);

  /* The file itself is loaded by the caller, after what comes before it. */
  for (guint i = 0; i < todo->len; i++)
    if (strcmp (((NnPendingPlugin *) todo->pdata[i])->canonical, canonical) == 0)
      g_ptr_array_remove_index (todo, i--);
  load_taken (reg, todo);
}

gboolean
nn_registry_defer (NnRegistry *reg, const char *path, const char *canonical)
{
  struct stat st;
  NnPendingPlugin *p;

  g_mutex_lock (&reg->lock);
  gboolean lazy = reg->lazy;
  g_mutex_unlock (&reg->lock);
  if (!lazy || !canonical || stat (canonical, &st) != 0 || !S_ISREG (st.st_mode))
    return FALSE;

  p = g_new0 (NnPendingPlugin, 1);
  if (!nn_plugin_index_lookup (canonical, &st, &p->name, &p->types,
                               &p->aliases))
    {
      g_free (p);
      return FALSE;
    }
  p->path = g_strdup (path);
  p->canonical = g_strdup (canonical);
  g_debug ("deferring plugin %s (%s)", path, p->name);
  g_mutex_lock (&reg->lock);
  g_hash_table_add (reg->seen, g_strdup (canonical));
  g_ptr_array_add (reg->pending, p);
  g_mutex_unlock (&reg->lock);
  return TRUE;
}

void
nn_registry_note_discovered (NnRegistry *reg, const char *canonical)
{
  g_mutex_lock (&reg->lock);
  if (!g_hash_table_contains (reg->discovered, canonical))
    g_hash_table_insert (reg->discovered, g_strdup (canonical),
                         GUINT_TO_POINTER (g_hash_table_size (reg->discovered) + 1));
  g_mutex_unlock (&reg->lock);
}

/* --- public API ----------------------------------------------------------- */

/* MT safe. */
void
nn_registry_set_lazy (NnRegistry *reg, gboolean lazy)
{
  g_return_if_fail (reg != NULL);

  g_mutex_lock (&reg->lock);
  reg->lazy = !!lazy;
  g_mutex_unlock (&reg->lock);
  if (!lazy)
    nn_registry_lazy_load (reg, NULL);
}

/* Returns: (transfer full) NULL-terminated paths, discovery order.  MT
 * safe; loads nothing. */
char **
nn_registry_list_deferred (NnRegistry *reg)
{
  GPtrArray *out = g_ptr_array_new ();

  g_return_val_if_fail (reg != NULL, NULL);
  g_mutex_lock (&reg->lock);
  for (guint i = 0; i < reg->pending->len; i++)
    g_ptr_array_add (out, g_strdup (((NnPendingPlugin *)
                                     reg->pending->pdata[i])->path));
  g_mutex_unlock (&reg->lock);
  g_ptr_array_add (out, NULL);
  return (char **) g_ptr_array_free (out, FALSE);
}

/* MT safe. */
void
nn_registry_load_deferred (NnRegistry *reg)
{
  g_return_if_fail (reg != NULL);
  nn_registry_lazy_load (reg, NULL);
}
