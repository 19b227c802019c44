/* Graph functional ops: the built-in table (elementwise arithmetic with
 * PyTorch broadcasting, cat) and the aliases that map PyTorch's functional
 * spellings onto layer types (flatten -> Flatten, ...). */
#include "graph.h"

#include <string.h>

/* --- errors ------------------------------------------------------------ */

static gboolean
check_f32 (const NnGraphNode *node, NnTensor *const *args, guint n,
           GError **error)
{
  for (guint i = 0; i < n; i++)
    if (args[i]->dtype != NN_DTYPE_F32)
      {
        g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                     "node '%s': %s expects float32 tensors, arg %u is %s",
                     node->name, node->target, i,
                     nn_dtype_name (args[i]->dtype));
        return FALSE;
      }
  return TRUE;
}

static NnTensor *
new_output (const NnGraphNode *node, const NnShape *shape, GError **error)
{
  NnTensor *t = nn_tensor_new (NN_DTYPE_F32, shape);
  if (t == NULL)
    {
      char *s = nn_shape_to_string (shape);
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                   "node '%s': cannot allocate a tensor of shape %s",
                   node->name, s);
      g_free (s);
    }
  return t;
}

/* --- broadcasting ------------------------------------------------------ */

/* PyTorch's rule: align shapes on the right; each pair of extents must be
 * equal or one of them 1. */
static gboolean
broadcast_shape (const NnGraphNode *node, const NnShape *a, const NnShape *b,
                 NnShape *out, GError **error)
{
  guint nd = MAX (a->ndim, b->ndim);

  out->ndim = nd;
  for (guint d = 0; d < nd; d++)
    {
      gint64 ea = d + a->ndim >= nd ? a->dims[d + a->ndim - nd] : 1;
      gint64 eb = d + b->ndim >= nd ? b->dims[d + b->ndim - nd] : 1;
      if (ea != eb && ea != 1 && eb != 1)
        {
          char *sa = nn_shape_to_string (a), *sb = nn_shape_to_string (b);
          g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                       "node '%s': cannot broadcast %s with %s", node->name,
                       sa, sb);
          g_free (sa);
          g_free (sb);
          return FALSE;
        }
      out->dims[d] = ea == 1 ? eb : ea;
    }
  return TRUE;
}

/* Strides (in elements) of @s read as @out's shape: 0 where broadcast. */
static void
broadcast_strides (const NnShape *s, const NnShape *out, gint64 *strides)
{
  gint64 step = 1;
  for (guint d = out->ndim; d-- > 0;)
    {
      guint sd = d + s->ndim - out->ndim;
      gboolean present = d + s->ndim >= out->ndim;
      gint64 extent = present ? s->dims[sd] : 1;
      strides[d] = extent == 1 ? 0 : step;
      step *= extent;
    }
}

/* An iteration plan over the output: unit dims dropped and adjacent dims
 * merged where both operands step uniformly across them, so [N,C,H,W] *
 * [N,C,1,1] becomes [N*C, H*W] with a scalar inner operand. */
typedef struct {
  guint ndim;
  gint64 size[NN_MAX_DIMS];
  gint64 sa[NN_MAX_DIMS];
  gint64 sb[NN_MAX_DIMS];
} BcastPlan;

static void
plan_broadcast (const NnShape *a, const NnShape *b, const NnShape *out,
                BcastPlan *plan)
{
  gint64 sa[NN_MAX_DIMS], sb[NN_MAX_DIMS];
  broadcast_strides (a, out, sa);
  broadcast_strides (b, out, sb);

  /* Built innermost first, reversed at the end. */
  BcastPlan rev = { 0 };
  for (guint d = out->ndim; d-- > 0;)
    {
      if (out->dims[d] == 1)
        continue;
      guint k = rev.ndim;
      if (k > 0 && sa[d] == rev.sa[k - 1] * rev.size[k - 1]
          && sb[d] == rev.sb[k - 1] * rev.size[k - 1])
        {
          rev.size[k - 1] *= out->dims[d];
          continue;
        }
      rev.size[k] = out->dims[d];
      rev.sa[k] = sa[d];
      rev.sb[k] = sb[d];
      rev.ndim++;
    }
  plan->ndim = rev.ndim;
  for (guint k = 0; k < rev.ndim; k++)
    {
      plan->size[k] = rev.size[rev.ndim - 1 - k];
      plan->sa[k] = rev.sa[rev.ndim - 1 - k];
      plan->sb[k] = rev.sb[rev.ndim - 1 - k];
    }
}

/* One inner row: out[i] = a[i*sa] OP b[i*sb], specialised for the strides
 * that occur (contiguous, or one side broadcast) so the compiler
 * vectorises them. */
typedef void (*RowKernel) (float *restrict out, const float *a, gint64 sa,
                           const float *b, gint64 sb, gint64 n);

#define DEFINE_ROW_KERNEL(fname, EXPR)                                        \
  static void fname (float *restrict out, const float *a, gint64 sa,          \
                     const float *b, gint64 sb, gint64 n)                     \
  {                                                                           \
    if (sa == 1 && sb == 1)                                                   \
      for (gint64 i = 0; i < n; i++)                                          \
        { float x = a[i], y = b[i]; out[i] = (EXPR); }                        \
    else if (sa == 1 && sb == 0)                                              \
      for (gint64 i = 0; i < n; i++)                                          \
        { float x = a[i], y = b[0]; out[i] = (EXPR); }                        \
    else if (sa == 0 && sb == 1)                                              \
      for (gint64 i = 0; i < n; i++)                                          \
        { float x = a[0], y = b[i]; out[i] = (EXPR); }                        \
    else                                                                      \
      for (gint64 i = 0; i < n; i++)                                          \
        { float x = a[i * sa], y = b[i * sb]; out[i] = (EXPR); }              \
  }

DEFINE_ROW_KERNEL (row_add, x + y)
DEFINE_ROW_KERNEL (row_sub, x - y)
DEFINE_ROW_KERNEL (row_mul, x * y)
DEFINE_ROW_KERNEL (row_div, x / y)

static void
run_broadcast (const BcastPlan *plan, RowKernel row, float *out,
               const float *a, const float *b)
{
  if (plan->ndim == 0)
    {
      row (out, a, 1, b, 1, 1);
      return;
    }

  guint inner = plan->ndim - 1;
  gint64 n = plan->size[inner];
  gint64 idx[NN_MAX_DIMS] = { 0 };
  gint64 oa = 0, ob = 0;

  for (;;)
    {
      row (out, a + oa, plan->sa[inner], b + ob, plan->sb[inner], n);
      out += n;

      /* Odometer over the outer dims. */
      guint d = inner;
      while (d-- > 0)
        {
          idx[d]++;
          oa += plan->sa[d];
          ob += plan->sb[d];
          if (idx[d] < plan->size[d])
            break;
          oa -= plan->sa[d] * plan->size[d];
          ob -= plan->sb[d] * plan->size[d];
          idx[d] = 0;
        }
      if (d == G_MAXUINT)
        return;
    }
}

static gboolean
binary_shape (const NnGraphNode *node, const NnShape *const *args, guint n,
              NnShape *out, GError **error)
{
  return broadcast_shape (node, args[0], args[1], out, error);
}

static NnTensor *
binary_apply (const NnGraphNode *node, NnTensor *const *args, RowKernel row,
              GError **error)
{
  NnShape out_shape;
  BcastPlan plan;

  if (!check_f32 (node, args, 2, error)
      || !broadcast_shape (node, &args[0]->shape, &args[1]->shape,
                           &out_shape, error))
    return NULL;
  NnTensor *out = new_output (node, &out_shape, error);
  if (out == NULL)
    return NULL;
  if (nn_tensor_numel (out) > 0)
    {
      plan_broadcast (&args[0]->shape, &args[1]->shape, &out_shape, &plan);
      run_broadcast (&plan, row, nn_tensor_f32 (out), nn_tensor_f32 (args[0]),
                     nn_tensor_f32 (args[1]));
    }
  return out;
}

static NnTensor *
add_apply (const NnGraphNode *node, NnTensor *const *args, guint n,
           GError **error)
{
  return binary_apply (node, args, row_add, error);
}

static NnTensor *
sub_apply (const NnGraphNode *node, NnTensor *const *args, guint n,
           GError **error)
{
  return binary_apply (node, args, row_sub, error);
}

static NnTensor *
mul_apply (const NnGraphNode *node, NnTensor *const *args, guint n,
           GError **error)
{
  return binary_apply (node, args, row_mul, error);
}

static NnTensor *
div_apply (const NnGraphNode *node, NnTensor *const *args, guint n,
           GError **error)
{
  return binary_apply (node, args, row_div, error);
}

/* --- cat ----------------------------------------------------------------- */

static const char *const cat_kwargs[] = { "dim", NULL };

static gboolean
cat_parse (NnGraphNode *node, JsonObject *kwargs, GError **error)
{
  node->dim = 0;
  if (kwargs == NULL || !json_object_has_member (kwargs, "dim"))
    return TRUE;
  JsonNode *v = json_object_get_member (kwargs, "dim");
  if (!JSON_NODE_HOLDS_VALUE (v) || json_node_get_value_type (v) != G_TYPE_INT64)
    {
      g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_WRONG_KIND,
                   "node '%s': cat: kwarg 'dim' must be an integer",
                   node->name);
      return FALSE;
    }
  node->dim = json_node_get_int (v);
  return TRUE;
}

/* Shapes must agree except along dim, which may be negative. */
static gboolean
cat_shape (const NnGraphNode *node, const NnShape *const *args, guint n,
           NnShape *out, GError **error)
{
  gint64 nd = args[0]->ndim;
  gint64 dim = node->dim < 0 ? node->dim + nd : node->dim;

  if (nd == 0 || dim < 0 || dim >= nd)
    {
      g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                   "node '%s': cat dim %" G_GINT64_FORMAT " is out of range "
                   "for %" G_GINT64_FORMAT "-D tensors (expected %"
                   G_GINT64_FORMAT "..%" G_GINT64_FORMAT ")",
                   node->name, node->dim, nd, -nd, nd - 1);
      return FALSE;
    }
  *out = *args[0];
  for (guint i = 1; i < n; i++)
    {
      gboolean fits = args[i]->ndim == (guint) nd;
      for (gint64 d = 0; fits && d < nd; d++)
        fits = d == dim || args[i]->dims[d] == args[0]->dims[d];
      if (!fits)
        {
          char *s0 = nn_shape_to_string (args[0]);
          char *si = nn_shape_to_string (args[i]);
          g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                       "node '%s': cannot cat %s with %s along dim %"
                       G_GINT64_FORMAT ": sizes must match except in that dim",
                       node->name, s0, si, node->dim);
          g_free (s0);
          g_free (si);
          return FALSE;
        }
      out->dims[dim] += args[i]->dims[dim];
    }
  return TRUE;
}

static NnTensor *
cat_apply (const NnGraphNode *node, NnTensor *const *args, guint n,
           GError **error)
{
  const NnShape **shapes = g_newa (const NnShape *, n);
  NnShape out_shape;

  for (guint i = 0; i < n; i++)
    shapes[i] = &args[i]->shape;
  if (!check_f32 (node, args, n, error)
      || !cat_shape (node, shapes, n, &out_shape, error))
    return NULL;
  NnTensor *out = new_output (node, &out_shape, error);
  if (out == NULL)
    return NULL;

  gint64 dim = node->dim < 0 ? node->dim + out_shape.ndim : node->dim;
  gint64 outer = 1, inner = 1;
  for (gint64 d = 0; d < dim; d++)
    outer *= out_shape.dims[d];
  for (guint d = dim + 1; d < out_shape.ndim; d++)
    inner *= out_shape.dims[d];

  /* Each input contributes one contiguous chunk per outer index. */
  float *dst = nn_tensor_f32 (out);
  for (gint64 o = 0; o < outer; o++)
    for (guint i = 0; i < n; i++)
      {
        gint64 chunk = args[i]->shape.dims[dim] * inner;
        memcpy (dst, nn_tensor_f32 (args[i]) + o * chunk,
                (gsize) chunk * sizeof (float));
        dst += chunk;
      }
  return out;
}

/* --- the tables ---------------------------------------------------------- */

static const NnGraphOp graph_ops[] = {
  { "add", 2, 2, NULL, NULL, add_apply, binary_shape },
  { "sub", 2, 2, NULL, NULL, sub_apply, binary_shape },
  { "mul", 2, 2, NULL, NULL, mul_apply, binary_shape },
  { "div", 2, 2, NULL, NULL, div_apply, binary_shape },
  { "cat", 1, 0, cat_kwargs, cat_parse, cat_apply, cat_shape },
};

/* torch.flatten's start_dim defaults to 0, unlike nn.Flatten's 1. */
static const NnGraphAliasArg flatten_args[] = {
  { "start_dim", "start_dim", "0", FALSE },
  { "end_dim", "end_dim", "-1", FALSE },
};
static const NnGraphAliasArg relu_args[] = {
  { "inplace", "inplace", NULL, FALSE },
};
static const NnGraphAliasArg adaptive_avg_pool2d_args[] = {
  { "output_size", "output_size", NULL, TRUE },
};

static const NnGraphAlias graph_aliases[] = {
  { "flatten", "Flatten", flatten_args, G_N_ELEMENTS (flatten_args) },
  { "relu", "ReLU", relu_args, G_N_ELEMENTS (relu_args) },
  { "adaptive_avg_pool2d", "AdaptiveAvgPool2d", adaptive_avg_pool2d_args,
    G_N_ELEMENTS (adaptive_avg_pool2d_args) },
};

const NnGraphOp *
nn_graph_op_lookup (const char *name)
{
  for (gsize i = 0; i < G_N_ELEMENTS (graph_ops); i++)
    if (strcmp (graph_ops[i].name, name) == 0)
      return &graph_ops[i];
  return NULL;
}

const NnGraphAlias *
nn_graph_alias_lookup (const char *name)
{
  for (gsize i = 0; i < G_N_ELEMENTS (graph_aliases); i++)
    if (strcmp (graph_aliases[i].name, name) == 0)
      return &graph_aliases[i];
  return NULL;
}

char *
nn_graph_known_ops (void)
{
  GString *s = g_string_new (NULL);
  for (gsize i = 0; i < G_N_ELEMENTS (graph_ops); i++)
    g_string_append_printf (s, "%s%s", s->len ? ", " : "", graph_ops[i].name);
  for (gsize i = 0; i < G_N_ELEMENTS (graph_aliases); i++)
    g_string_append_printf (s, ", %s", graph_aliases[i].name);
  return g_string_free (s, FALSE);
}

static char *
join_names (const char *const *names)
{
  GString *s = g_string_new (NULL);
  for (guint i = 0; names != NULL && names[i] != NULL; i++)
    g_string_append_printf (s, "%s'%s'", i ? ", " : "", names[i]);
  if (s->len == 0)
    g_string_append (s, "none");
  return g_string_free (s, FALSE);
}

gboolean
nn_graph_op_parse (const NnGraphOp *op, NnGraphNode *node, JsonObject *kwargs,
                   GError **error)
{
  if (kwargs != NULL)
    {
      GList *members = json_object_get_members (kwargs);
      for (GList *l = members; l != NULL; l = l->next)
        if (op->kwargs == NULL
            || !g_strv_contains ((const char *const *) op->kwargs, l->data))
          {
            char *known = join_names (op->kwargs);
            g_set_error (error, NN_DESCRIPTOR_ERROR,
                         NN_DESCRIPTOR_ERROR_UNKNOWN_KEY,
                         "node '%s': op '%s' has no kwarg '%s' (accepted: %s)",
                         node->name, op->name, (const char *) l->data, known);
            g_free (known);
            g_list_free (members);
            return FALSE;
          }
      g_list_free (members);
    }
  return op->parse == NULL || op->parse (node, kwargs, error);
}

static char *
alias_kwarg_names (const NnGraphAlias *alias)
{
  const char **names = g_newa (const char *, alias->n_args + 1);
  for (guint i = 0; i < alias->n_args; i++)
    names[i] = alias->args[i].kwarg;
  names[alias->n_args] = NULL;
  return join_names (names);
}

static const NnGraphAliasArg *
alias_find_arg (const NnGraphAlias *alias, const char *kwarg)
{
  for (guint i = 0; i < alias->n_args; i++)
    if (strcmp (alias->args[i].kwarg, kwarg) == 0)
      return &alias->args[i];
  return NULL;
}

JsonObject *
nn_graph_alias_config (const NnGraphAlias *alias, const NnGraphNode *node,
                       JsonObject *kwargs, GError **error)
{
  JsonObject *config = json_object_new ();

  if (kwargs != NULL)
    {
      GList *members = json_object_get_members (kwargs);
      for (GList *l = members; l != NULL; l = l->next)
        {
          const NnGraphAliasArg *arg = alias_find_arg (alias, l->data);
          if (arg == NULL)
            {
              char *known = alias_kwarg_names (alias);
              g_set_error (error, NN_DESCRIPTOR_ERROR,
                           NN_DESCRIPTOR_ERROR_UNKNOWN_KEY,
                           "node '%s': op '%s' has no kwarg '%s' "
                           "(accepted: %s)", node->name, alias->name,
                           (const char *) l->data, known);
              g_free (known);
              g_list_free (members);
              json_object_unref (config);
              return NULL;
            }
          json_object_set_member (config, arg->config_key,
                                  json_object_dup_member (kwargs, l->data));
        }
      g_list_free (members);
    }

  for (guint i = 0; i < alias->n_args; i++)
    {
      const NnGraphAliasArg *arg = &alias->args[i];
      if (json_object_has_member (config, arg->config_key))
        continue;
      if (arg->required)
        {
          g_set_error (error, NN_DESCRIPTOR_ERROR,
                       NN_DESCRIPTOR_ERROR_MISSING_KEY,
                       "node '%s': op '%s' needs kwarg '%s'", node->name,
                       alias->name, arg->kwarg);
          json_object_unref (config);
          return NULL;
        }
      if (arg->default_json != NULL)
        json_object_set_member (config, arg->config_key,
                                json_from_string (arg->default_json, NULL));
    }
  return config;
}
