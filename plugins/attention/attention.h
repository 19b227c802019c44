/* attention plugin: MultiheadAttention and the Transformer composites,
 * and the helpers they share.  Private to the plugin. */
#ifndef NN_ATTENTION_H
#define NN_ATTENTION_H

#include <nnkit/plugin.h>

extern const NnLayerType nn_multihead_attention_type;
extern const NnLayerType nn_transformer_encoder_layer_type;
extern const NnLayerType nn_transformer_decoder_layer_type;
extern const NnLayerType nn_transformer_encoder_type;
extern const NnLayerType nn_transformer_decoder_type;
extern const NnLayerType nn_transformer_type;

/* Masks: bool (True = not allowed) or float (added). */
#define NN_ATT_MASK_DTYPES \
  (NN_DTYPE_BIT (NN_DTYPE_BOOL) | NN_DTYPE_BIT (NN_DTYPE_F32))

/* Y[rows, out] = X[rows, in] W^T (+ b), W [out, in] row-major; @b
 * nullable.  The caller has checked nn_blas_ready(). */
void nn_att_linear (const float *x, gint64 rows, gint64 in, const float *w,
                    const float *b, gint64 out, float *y);

/* Checks that @self has a child @name, for check(); @what says what the
 * forward expects there ("a LayerNorm").  Any type is accepted, as in
 * PyTorch: the child is called through the core, and a replacement that
 * does not fit fails the shape check instead. */
gboolean nn_att_require_child (NnModule *self, const char *name,
                               const char *what, GError **error);

/* Calls descendant @path of @self through the core (hooks fire, a
 * replacement is seen) with the tuple @args and the dict @kwargs
 * (nullable), both transfer full; returns (transfer full) its result. */
NnValue *nn_att_call (NnCall *call, NnModule *self, const char *path,
                      NnValue *args, NnValue *kwargs, GError **error);

/* Returns (transfer full) a tensor value of @t (transfer none), or None
 * when @t is NULL. */
NnValue *nn_att_tensor_or_none (NnTensor *t);

/* Calls @path with one tensor and returns its tensor result (transfer
 * full), or NULL with an error (also when the result is no tensor). */
NnTensor *nn_att_call_tensor (NnCall *call, NnModule *self, const char *path,
                              NnTensor *x, GError **error);

/* Item 0 of a tuple result (transfer full of @v, which is released),
 * which must be a tensor; returns (transfer full). */
NnTensor *nn_att_first (NnValue *v, const char *path, GError **error);

/* @a + @b (same shape; meta in, meta out).  Returns (transfer full). */
NnTensor *nn_att_add (NnTensor *a, NnTensor *b, GError **error);

/* Elementwise relu or gelu (exact, erf) of @x: the Transformer layers'
 * activation, F.relu / F.gelu rather than a child.  Returns (transfer
 * full). */
NnTensor *nn_att_activation (NnTensor *x, gboolean gelu);

/* The `activation` config key of the Transformer types. */
#define NN_ATT_ACTIVATION_KEY                                                \
  { "activation", NN_KIND_ENUM, 0, NN_KEY_OPTIONAL, "\"relu\"", 0, 0,        \
    nn_att_activations, "F.relu or F.gelu between linear1 and linear2" }
extern const char *const nn_att_activations[];

#endif
