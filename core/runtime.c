/* nnkit core: running modules.  Every module call goes through
 * run_module(), which fires hooks and prefixes errors with the module
 * path; composites reach their children only through nn_call_child(). */
#include "nn-private.h"

#include <stdlib.h>

/* Errors from a type's code carry no location: the innermost call adds
 * "path: Class: ", outer calls see the prefix and leave it alone. */
static void
locate_error (NnCall *call, NnModule *m, GError **error, gboolean *located)
{
  if (*located)
    return;
  if (error && !*error)
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "failed without a reason");
  nn_error_prefix (error, call->path->str, nn_module_get_class_name (m));
  *located = TRUE;
}

typedef struct {
  NnCall call;
  gboolean located;
  GArray *events; /* ShapeEvent, entry order, for the observer */
} Run;

typedef struct {
  NnModule *module;
  char *path;
  guint depth;
  NnShape in, out;
} ShapeEvent;

static gboolean
no_forward (NnCall *call, NnModule *m, GError **error)
{
  if (m->type->forward)
    return FALSE;
  g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_NO_FORWARD,
               "%s has no forward(): it is a container, not a layer; call its "
               "children instead", m->type->name);
  return TRUE;
}

static NnTensor *
run_module (Run *run, NnModule *m, NnTensor *input, GError **error)
{
  NnCall *call = &run->call;
  if (no_forward (call, m, error)) {
    locate_error (call, m, error, &run->located);
    return NULL;
  }
  NnTensor *out = nn_hooks_run (m, call, input, error);
  if (!out)
    locate_error (call, m, error, &run->located);
  return out;
}

static gboolean
run_shape (Run *run, NnModule *m, const NnShape *in, NnShape *out,
           GError **error)
{
  NnCall *call = &run->call;
  if (no_forward (call, m, error)) {
    locate_error (call, m, error, &run->located);
    return FALSE;
  }
  guint slot = 0;
  if (run->events) {
    ShapeEvent ev = { m, g_strdup (call->path->str), call->depth, *in, { 0 } };
    g_array_append_val (run->events, ev);
    slot = run->events->len - 1;
  }
  if (m->type->infer_shape) {
    if (!m->type->infer_shape (m, call, in, out, error)) {
      locate_error (call, m, error, &run->located);
      return FALSE;
    }
  } else {
    *out = *in;
  }
  if (run->events)
    g_array_index (run->events, ShapeEvent, slot).out = *out;
  return TRUE;
}

/* Enters child @name of @self: extends the path for the child's errors. */
static NnModule *
enter_child (NnCall *call, NnModule *self, const char *name, gsize *saved,
             GError **error)
{
  NnModule *child = nn_module_get_child (self, name);
  if (!child) {
    g_autoptr (GPtrArray) kids = nn_module_named_children (self);
    GString *names = g_string_new (NULL);
    for (guint i = 0; i < kids->len; i++)
      g_string_append_printf (names, "%s%s", i ? ", " : "",
                              ((NnNamedItem *) kids->pdata[i])->name);
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_NOT_FOUND,
                 "no child '%s' to call (children: %s)", name,
                 names->len ? names->str : "none");
    g_string_free (names, TRUE);
    return NULL;
  }
  *saved = call->path->len;
  if (call->path->len)
    g_string_append_c (call->path, '.');
  g_string_append (call->path, name);
  call->depth++;
  return child;
}

static void
leave_child (NnCall *call, gsize saved)
{
  g_string_truncate (call->path, saved);
  call->depth--;
}

NnTensor *
nn_call_child (NnCall *call, NnModule *self, const char *name,
               NnTensor *input, GError **error)
{
  gsize saved;
  NnModule *child = enter_child (call, self, name, &saved, error);
  if (!child)
    return NULL;
  NnTensor *out = run_module ((Run *) call, child, input, error);
  leave_child (call, saved);
  return out;
}

gboolean
nn_call_child_shape (NnCall *call, NnModule *self, const char *name,
                     const NnShape *in, NnShape *out, GError **error)
{
  gsize saved;
  NnModule *child = enter_child (call, self, name, &saved, error);
  if (!child)
    return FALSE;
  gboolean ok = run_shape ((Run *) call, child, in, out, error);
  leave_child (call, saved);
  return ok;
}

NnTensor *
nn_call_functional (NnCall *call, NnModule *fn, NnTensor *input,
                    GError **error)
{
  if (!fn->type->forward) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_NO_FORWARD,
                 "functional %s has no forward()", fn->type->name);
    return NULL;
  }
  /* Functional ops are not modules in PyTorch: no hooks, the caller's path. */
  return fn->type->forward (fn, call, input, error);
}

gboolean
nn_call_functional_shape (NnCall *call, NnModule *fn, const NnShape *in,
                          NnShape *out, GError **error)
{
  if (!fn->type->infer_shape) {
    *out = *in;
    return TRUE;
  }
  return fn->type->infer_shape (fn, call, in, out, error);
}

const char *
nn_call_get_path (NnCall *call)
{
  return call->path->str;
}

static void
run_init (Run *run)
{
  run->call.path = g_string_new (NULL);
  run->call.depth = 0;
  run->located = FALSE;
  run->events = NULL;
}

NnTensor *
nn_module_forward (NnModule *m, NnTensor *input, GError **error)
{
  g_return_val_if_fail (m != NULL && input != NULL, NULL);
  nn_get_num_threads (); /* settles the thread count before BLAS runs */
  Run run;
  run_init (&run);
  NnTensor *out = run_module (&run, m, input, error);
  g_string_free (run.call.path, TRUE);
  return out;
}

static void
event_clear (gpointer p)
{
  g_free (((ShapeEvent *) p)->path);
}

gboolean
nn_module_infer_shape_observed (NnModule *m, const NnShape *in, NnShape *out,
                                NnShapeObserver observer, gpointer user_data,
                                GError **error)
{
  g_return_val_if_fail (m != NULL && in != NULL && out != NULL, FALSE);
  Run run;
  run_init (&run);
  if (observer) {
    run.events = g_array_new (FALSE, TRUE, sizeof (ShapeEvent));
    g_array_set_clear_func (run.events, event_clear);
  }
  gboolean ok = run_shape (&run, m, in, out, error);
  /* Reported in call-entry order, as torchinfo lists layers. */
  if (ok && observer)
    for (guint i = 0; i < run.events->len; i++) {
      ShapeEvent *ev = &g_array_index (run.events, ShapeEvent, i);
      observer (ev->module, ev->path, ev->depth, &ev->in, &ev->out, user_data);
    }
  if (run.events)
    g_array_unref (run.events);
  g_string_free (run.call.path, TRUE);
  return ok;
}

gboolean
nn_module_infer_shape (NnModule *m, const NnShape *in, NnShape *out,
                       GError **error)
{
  return nn_module_infer_shape_observed (m, in, out, NULL, NULL, error);
}
