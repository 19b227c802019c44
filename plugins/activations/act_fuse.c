/* activations plugin: what each pointwise activation is to the execution
 * plan's fusion (docs/ENGINE.md, "Fusion"): a producer before it (Conv2d,
 * Linear) may apply it in its epilogue when nothing observes the value in
 * between.  One declaration per type, referenced from its vtable. */
#include "activations.h"
#include "pointwise.h"

#include <string.h>

#define ACT_FUSE(name_, fn_)                                   \
  const NnFuseInfo name_ = {                                   \
    .struct_size = sizeof (NnFuseInfo), .describe = fn_,       \
  }

static gboolean
as_act (NnFuseOp *op, NnActKind act, float alpha, float beta)
{
  op->role = NN_FUSE_AS_ACTIVATION;
  op->act = act;
  op->alpha = alpha;
  op->beta = beta;
  return TRUE;
}

static gboolean
relu_describe (NnModule *self, NnFuseOp *op)
{
  return as_act (op, NN_ACT_RELU, 0.0f, 0.0f);
}

static gboolean
relu6_describe (NnModule *self, NnFuseOp *op)
{
  return as_act (op, NN_ACT_CLIP, 0.0f, 6.0f);
}

static gboolean
hardtanh_describe (NnModule *self, NnFuseOp *op)
{
  return as_act (op, NN_ACT_CLIP,
                 (float) nn_pw_number (self, "min_val"),
                 (float) nn_pw_number (self, "max_val"));
}

static gboolean
silu_describe (NnModule *self, NnFuseOp *op)
{
  return as_act (op, NN_ACT_SILU, 0.0f, 0.0f);
}

static gboolean
hardswish_describe (NnModule *self, NnFuseOp *op)
{
  return as_act (op, NN_ACT_HARDSWISH, 0.0f, 0.0f);
}

static gboolean
gelu_describe (NnModule *self, NnFuseOp *op)
{
  const char *form = nn_module_config_string (self, "approximate");
  if (g_strcmp0 (form, "tanh") == 0)
    return as_act (op, NN_ACT_GELU_TANH, 0.0f, 0.0f);
  if (g_strcmp0 (form, "none") == 0)
    return as_act (op, NN_ACT_GELU_ERF, 0.0f, 0.0f);
  return FALSE; /* the forward names the bad form */
}

static gboolean
sigmoid_describe (NnModule *self, NnFuseOp *op)
{
  return as_act (op, NN_ACT_SIGMOID, 0.0f, 0.0f);
}

static gboolean
tanh_describe (NnModule *self, NnFuseOp *op)
{
  return as_act (op, NN_ACT_TANH, 0.0f, 0.0f);
}

ACT_FUSE (nn_relu_fuse, relu_describe);
ACT_FUSE (nn_relu6_fuse, relu6_describe);
ACT_FUSE (nn_hardtanh_fuse, hardtanh_describe);
ACT_FUSE (nn_silu_fuse, silu_describe);
ACT_FUSE (nn_hardswish_fuse, hardswish_describe);
ACT_FUSE (nn_gelu_fuse, gelu_describe);
ACT_FUSE (nn_sigmoid_fuse, sigmoid_describe);
ACT_FUSE (nn_tanh_fuse, tanh_describe);
