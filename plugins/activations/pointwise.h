/* activations plugin: the machinery of the elementwise types added with
 * the sequence layers (LeakyReLU, ELU, Softplus, the shrinks, ...), each
 * both a module type (parameters in its config) and a functional op
 * (parameters as call arguments, as F.leaky_relu takes them).  Private. */
#ifndef NN_POINTWISE_H
#define NN_POINTWISE_H

#include <nnkit/plugin.h>

/* y[i] = f(x[i]) for @n elements with the type's numeric parameters @p. */
typedef void (*NnPwKernel) (const float *restrict x, float *restrict y,
                            gint64 n, const double *p);

/* One elementwise function. */
typedef struct {
  NnPwKernel kernel;
  /* Names of its numeric parameters, in Python's order: config keys of
   * the module type and argument names (after input) of the op. */
  const char *const *params;
  guint n_params;
  /* (nullable) Call-time check of the parameters, as PyTorch checks them
   * when called (Softshrink's lambd >= 0). */
  gboolean (*check) (const double *p, GError **error);
  /* dy/dx at input @x with output @y, as PyTorch's backward formula (its
   * choice at kinks); the type's backward multiplies it by the gradient. */
  double (*deriv) (float x, float y, const double *p);
} NnPwFunc;

#define NN_PW_MAX_PARAMS 4

/* A number-valued config key kept as written (an int stays an int), so
 * the repr prints it as PyTorch does: Softplus(beta=1, threshold=20). */
#define NN_PW_NUMBER_KEY(name_, default_, doc_)                          \
  { name_, NN_KIND_JSON, 0, NN_KEY_OPTIONAL, default_, 0, 0, NULL, doc_ }

#define NN_PW_INPLACE_KEY                                                \
  { "inplace", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "false", 0, 0, NULL,    \
    "in PyTorch, overwrite the input (repr only: nnkit returns a new tensor)" }

/* create of a module type: checks that each of @f's parameter keys holds
 * a number. */
gboolean nn_pw_create (NnModule *self, const NnPwFunc *f, GError **error);

/* forward and infer of a module type: parameters from the config. */
NnValue *nn_pw_module_forward (NnModule *self, const NnPwFunc *f,
                               const NnArgs *args, GError **error);

/* forward and infer of an op type: parameters from arguments 1..n. */
NnValue *nn_pw_op_forward (const NnPwFunc *f, const NnArgs *args,
                           GError **error);

/* backward of a module type and of an op type: a one-item tuple holding
 * grad_out * f->deriv elementwise (the op's numeric arguments get None). */
NnValue *nn_pw_module_backward (NnModule *self, const NnPwFunc *f,
                                const NnArgs *args, const NnValue *out,
                                const NnValue *grad_out, GError **error);
NnValue *nn_pw_op_backward (const NnPwFunc *f, const NnArgs *args,
                            const NnValue *out, const NnValue *grad_out,
                            GError **error);

/* Config key @key (a JSON number) as a double. */
double nn_pw_number (NnModule *self, const char *key);

/* ", inplace=True" or "" (transfer none). */
const char *nn_pw_inplace_suffix (NnModule *self);

/* create of a type that registers nothing. */
gboolean nn_pw_create_nothing (NnModule *self, GError **error);

/* Defines `const NnLayerType var_` for module type @name_ computing @func_
 * (an NnPwFunc) with @n_schema_ config keys @schema_ (nullable) and
 * extra_repr @repr_ (nullable). */
#define NN_PW_MODULE_TYPE(var_, name_, doc_, schema_, n_schema_, func_, repr_) \
  static gboolean var_##_create (NnModule *self, GError **error)           \
  {                                                                       \
    return nn_pw_create (self, &func_, error);                            \
  }                                                                       \
  static NnValue *var_##_forward (NnModule *self, NnCall *call,           \
                                  const NnArgs *args, GError **error)     \
  {                                                                       \
    return nn_pw_module_forward (self, &func_, args, error);              \
  }                                                                       \
  static NnValue *var_##_backward (NnModule *self, NnCall *call,          \
                                   const NnArgs *args, const NnValue *out, \
                                   const NnValue *grad_out, GError **error) \
  {                                                                       \
    return nn_pw_module_backward (self, &func_, args, out, grad_out, error); \
  }                                                                       \
  const NnLayerType var_ = {                                              \
    .struct_size = sizeof (NnLayerType), .name = name_, .doc = doc_,      \
    .schema = schema_, .n_schema = n_schema_,                             \
    .create = var_##_create, .forward = var_##_forward,                   \
    .infer = var_##_forward, .extra_repr = repr_,                         \
    .backward = var_##_backward,                                          \
  }

/* Defines `const NnLayerType var_`, the functional op @name_ computing
 * @func_ with signature @args_ (input first, then @func_'s parameters in
 * order) and NULL-terminated @aliases_. */
#define NN_PW_OP_TYPE(var_, name_, doc_, args_, aliases_, func_)           \
  static NnValue *var_##_forward (NnModule *self, NnCall *call,           \
                                  const NnArgs *args, GError **error)     \
  {                                                                       \
    return nn_pw_op_forward (&func_, args, error);                        \
  }                                                                       \
  static NnValue *var_##_backward (NnModule *self, NnCall *call,          \
                                   const NnArgs *args, const NnValue *out, \
                                   const NnValue *grad_out, GError **error) \
  {                                                                       \
    return nn_pw_op_backward (&func_, args, out, grad_out, error);        \
  }                                                                       \
  const NnLayerType var_ = {                                              \
    .struct_size = sizeof (NnLayerType), .name = name_, .doc = doc_,      \
    .flags = NN_LAYER_OP, .args = args_, .n_args = G_N_ELEMENTS (args_),  \
    .aliases = aliases_, .create = nn_pw_create_nothing,                  \
    .forward = var_##_forward, .infer = var_##_forward,                   \
    .backward = var_##_backward,                                          \
  }

/* The op signature's first argument. */
#define NN_PW_INPUT_ARG                                                   \
  { "input", NN_ARG_TENSOR, 0, 0, NULL, "float32 tensor of any shape" }
#define NN_PW_INPLACE_ARG                                                 \
  { "inplace", NN_ARG_BOOL, 0, NN_ARG_OPTIONAL, "false",                  \
    "ignored: nnkit returns a new tensor" }

#endif
