/* misc plugin: the layer types it registers.  Private to the plugin. */
#ifndef NN_MISC_H
#define NN_MISC_H

#include <nnkit/plugin.h>

extern const NnLayerType nn_dropout_type;
extern const NnLayerType nn_flatten_type;
extern const NnLayerType nn_identity_type;
extern const NnLayerType nn_stochastic_depth_type;
extern const NnLayerType nn_zero_pad2d_type;
extern const NnLayerType nn_constant_pad1d_type;
extern const NnLayerType nn_constant_pad2d_type;
extern const NnLayerType nn_reflection_pad1d_type;
extern const NnLayerType nn_reflection_pad2d_type;
extern const NnLayerType nn_replication_pad1d_type;
extern const NnLayerType nn_replication_pad2d_type;
extern const NnLayerType nn_unflatten_type;
extern const NnLayerType nn_dropout1d_type;
extern const NnLayerType nn_dropout2d_type;
extern const NnLayerType nn_dropout3d_type;
extern const NnLayerType nn_alpha_dropout_type;
extern const NnLayerType nn_feature_alpha_dropout_type;
/* distance.c */
extern const NnLayerType nn_cosine_similarity_type;
extern const NnLayerType nn_pairwise_distance_type;
extern const NnLayerType nn_cosine_similarity_fn_type;
extern const NnLayerType nn_pairwise_distance_fn_type;

/* The first argument, a tensor of any dtype: the eval-mode identities
 * pass integer and bool tensors through as PyTorch does. */
#define NN_MISC_INPUT_ARG                                                \
  { "input", NN_ARG_TENSOR, NN_DTYPES_ALL, 0, NULL,                      \
    "the tensor, any shape and dtype" }

/* The forward (and infer) of a layer that is the identity in eval mode:
 * returns a new reference to argument 0, sharing its storage; a meta
 * tensor stays one. */
NnValue *nn_misc_forward_identity (NnModule *self, NnCall *call,
                                   const NnArgs *args, GError **error);

/* The create of a type that registers nothing. */
gboolean nn_misc_create_nothing (NnModule *self, GError **error);

#endif
