// Training end to end: modes, frozen parameters, optimiser steps against
// torch.optim (train_reference.py, run at test time), optimiser state
// files, and the tape's error paths.
#include "train-test.h"

#include <cmath>
#include <cstring>

using namespace nntrain;

namespace {

class TrainReference : public ::testing::Test {
protected:
  static std::string dir;
  static std::string skip;

  static void SetUpTestSuite ()
  {
    dir = tmp_dir ();
    bool no_torch = false;
    std::string err = run_python (source_path ("tests/train/train_reference.py"), { dir },
                                  &no_torch);
    if (!err.empty ()) {
      if (no_torch) skip = err;
      else ADD_FAILURE () << err;
    }
  }
  static void TearDownTestSuite () { remove_tree (dir); }

  Module load_model (NnRegistry *reg, const char *file = "model.json")
  {
    Error err;
    Module m (nn_model_load (reg, (dir + "/" + file).c_str (), nullptr, FALSE, err.out ()));
    EXPECT_TRUE (m != nullptr) << err.message ();
    return m;
  }

  // Trains @m on the reference batches as train_reference.py does.
  void train (NnRegistry *reg, NnModule *m, NnOptimizer *opt, double clip, guint first,
              guint steps, const char *batches = "batches.safetensors",
              const char *loss_cfg = "{\"label_smoothing\": 0.1}")
  {
    Error err;
    Module loss = make_module (reg, "CrossEntropyLoss", loss_cfg, err, "loss");
    ASSERT_TRUE (loss) << err.message ();
    Safetensors st (nn_safetensors_open ((dir + "/" + batches).c_str (), err.out ()));
    ASSERT_TRUE (st) << err.message ();
    nn_module_train (m, TRUE);
    for (guint i = first; i < first + steps; i++) {
      Tensor x = load (st.get (), "x" + std::to_string (i));
      Tensor y = load (st.get (), "y" + std::to_string (i));
      nn_module_zero_grad (m);
      NnTape *tape = nn_tape_new (0);
      ValueRef a = value_tuple ({ nn_value_new_tensor (x.get ()) });
      ValueRef logits (nn_tape_call (tape, m, a.get (), nullptr, err.out ()));
      ASSERT_TRUE (logits) << err.message ();
      ValueRef la = value_tuple ({ nn_value_ref (logits.get ()), nn_value_new_tensor (y.get ()) });
      ValueRef l (nn_tape_call (tape, loss.get (), la.get (), nullptr, err.out ()));
      ASSERT_TRUE (l) << err.message ();
      ASSERT_TRUE (nn_backward (tape, nn_value_get_tensor (l.get ()), nullptr, err.out ()))
          << err.message ();
      nn_tape_free (tape);
      if (clip > 0) nn_clip_grad_norm (m, clip);
      ASSERT_TRUE (nn_optimizer_step (opt, err.out ())) << err.message ();
    }
  }

  void expect_weights (NnModule *m, const std::string &run)
  {
    Error err;
    Safetensors st (nn_safetensors_open ((dir + "/" + run + ".safetensors").c_str (), err.out ()));
    ASSERT_TRUE (st) << err.message ();
    Array sd (nn_module_state_dict (m));
    ASSERT_GT (sd->len, 0u);
    for (guint i = 0; i < sd->len; i++) {
      NnNamedItem *it = (NnNamedItem *) sd->pdata[i];
      Tensor want = load (st.get (), it->name);
      ASSERT_TRUE (want) << it->name;
      if (want->dtype == NN_DTYPE_I64)
        EXPECT_EQ (*(gint64 *) it->tensor->data, *(gint64 *) want->data) << it->name;
      else
        EXPECT_TRUE (close (it->tensor, want.get ())) << run << ": " << it->name;
    }
  }
};

std::string TrainReference::dir;
std::string TrainReference::skip;

TEST_F (TrainReference, SgdMomentumWithFrozenPrefixMatchesTorch)
{
  if (!skip.empty ()) GTEST_SKIP () << skip;
  Registry reg = default_registry ();
  Module m = load_model (reg.get ());
  ASSERT_TRUE (m);
  Error err;
  guint n = 0;
  ASSERT_TRUE (nn_module_set_requires_grad (m.get (), "1", FALSE, &n, err.out ())) << err.message ();
  EXPECT_EQ (n, 2u);
  Tensor w0 (nn_tensor_copy (nn_module_lookup_tensor (m.get (), "1.weight", nullptr)));
  Tensor b0 (nn_tensor_copy (nn_module_lookup_tensor (m.get (), "1.bias", nullptr)));
  NnOptimConfig cfg;
  nn_optim_config_init (&cfg, NN_OPTIM_SGD);
  cfg.lr = 0.1;
  cfg.momentum = 0.9;
  cfg.weight_decay = 1e-3;
  NnOptimizer *opt = nn_optimizer_new (m.get (), &cfg);
  train (reg.get (), m.get (), opt, 0, 0, 3);
  nn_optimizer_free (opt);
  expect_weights (m.get (), "sgd");
  // Frozen parameters are bit-identical, and got no gradient.
  NnTensor *w = nn_module_lookup_tensor (m.get (), "1.weight", nullptr);
  NnTensor *b = nn_module_lookup_tensor (m.get (), "1.bias", nullptr);
  EXPECT_EQ (memcmp (nn_tensor_f32 (w), nn_tensor_f32 (w0.get ()), nn_tensor_nbytes (w)), 0);
  EXPECT_EQ (memcmp (nn_tensor_f32 (b), nn_tensor_f32 (b0.get ()), nn_tensor_nbytes (b)), 0);
  EXPECT_EQ (nn_module_lookup_grad (m.get (), "1.weight", err.out ()), nullptr);
  EXPECT_NE (nn_module_lookup_grad (m.get (), "6.weight", err.out ()), nullptr);
}

TEST_F (TrainReference, NesterovAdamWAndAdamMatchTorch)
{
  if (!skip.empty ()) GTEST_SKIP () << skip;
  Registry reg = default_registry ();
  struct Run { const char *name; NnOptimKind kind; double lr, mom, wd, clip; gboolean nesterov; };
  const Run runs[] = {
    { "nesterov", NN_OPTIM_SGD, 0.05, 0.8, 0.0, 0, TRUE },
    { "adamw", NN_OPTIM_ADAMW, 0.01, 0, 0.05, 0, FALSE },
    { "adam", NN_OPTIM_ADAM, 0.02, 0, 0.01, 0.5, FALSE },
  };
  for (const Run &r : runs) {
    SCOPED_TRACE (r.name);
    Module m = load_model (reg.get ());
    ASSERT_TRUE (m);
    NnOptimConfig cfg;
    nn_optim_config_init (&cfg, r.kind);
    cfg.lr = r.lr;
    cfg.momentum = r.mom;
    cfg.weight_decay = r.wd;
    cfg.nesterov = r.nesterov;
    NnOptimizer *opt = nn_optimizer_new (m.get (), &cfg);
    train (reg.get (), m.get (), opt, r.clip, 0, 3);
    EXPECT_EQ (nn_optimizer_get_step (opt), 3);
    nn_optimizer_free (opt);
    expect_weights (m.get (), r.name);
  }
}

TEST_F (TrainReference, SmallCnnWithBatchNormMatchesTorch)
{
  if (!skip.empty ()) GTEST_SKIP () << skip;
  Registry reg = default_registry ();
  for (NnOptimKind kind : { NN_OPTIM_SGD, NN_OPTIM_ADAMW }) {
    const char *run = kind == NN_OPTIM_SGD ? "cnn_sgd" : "cnn_adamw";
    SCOPED_TRACE (run);
    Module m = load_model (reg.get (), "cnn.json");
    ASSERT_TRUE (m);
    NnOptimConfig cfg;
    nn_optim_config_init (&cfg, kind);
    if (kind == NN_OPTIM_SGD) {
      cfg.lr = 0.1;
      cfg.momentum = 0.9;
    } else {
      cfg.lr = 0.01;
      cfg.weight_decay = 0.05;
    }
    NnOptimizer *opt = nn_optimizer_new (m.get (), &cfg);
    train (reg.get (), m.get (), opt, 0, 0, 3, "cnn_batches.safetensors", "{}");
    nn_optimizer_free (opt);
    // Parameters and BatchNorm's running statistics and batch count.
    expect_weights (m.get (), run);
  }
}

TEST_F (TrainReference, OptimizerStateResumes)
{
  if (!skip.empty ()) GTEST_SKIP () << skip;
  Registry reg = default_registry ();
  Module m = load_model (reg.get ());
  ASSERT_TRUE (m);
  Error err;
  NnOptimConfig cfg;
  nn_optim_config_init (&cfg, NN_OPTIM_ADAMW);
  cfg.lr = 0.01;
  cfg.weight_decay = 0.05;
  NnOptimizer *opt = nn_optimizer_new (m.get (), &cfg);
  train (reg.get (), m.get (), opt, 0, 0, 2);
  std::string state = dir + "/state.safetensors";
  ASSERT_TRUE (nn_optimizer_save (opt, state.c_str (), err.out ())) << err.message ();
  nn_optimizer_free (opt);
  // A fresh optimiser resumed from the file takes the third step as the
  // uninterrupted run did.
  NnOptimizer *again = nn_optimizer_new (m.get (), &cfg);
  ASSERT_TRUE (nn_optimizer_load (again, state.c_str (), err.out ())) << err.message ();
  EXPECT_EQ (nn_optimizer_get_step (again), 2);
  train (reg.get (), m.get (), again, 0, 2, 1);
  nn_optimizer_free (again);
  expect_weights (m.get (), "adamw");

  // An SGD state does not load into AdamW, nor a file that is no state.
  NnOptimizer *other = nn_optimizer_new (m.get (), &cfg);
  EXPECT_FALSE (nn_optimizer_load (other, (dir + "/batches.safetensors").c_str (), err.out ()));
  EXPECT_TRUE (contains (err.message (), "not an optimizer state")) << err.message ();
  NnOptimConfig sgd;
  nn_optim_config_init (&sgd, NN_OPTIM_SGD);
  NnOptimizer *s = nn_optimizer_new (m.get (), &sgd);
  ASSERT_TRUE (nn_optimizer_save (s, state.c_str (), err.out ())) << err.message ();
  EXPECT_FALSE (nn_optimizer_load (other, state.c_str (), err.out ()));
  EXPECT_TRUE (contains (err.message (), "kind")) << err.message ();
  nn_optimizer_free (s);
  nn_optimizer_free (other);
}

const char *chain =
    "{\"format\": \"nnkit\", \"version\": 2, \"model\": {\"type\": \"Sequential\", \"children\": ["
    "{\"name\": \"0\", \"type\": \"Linear\", \"config\": {\"in_features\": 4, \"out_features\": 3}},"
    "{\"name\": \"1\", \"type\": \"Unflatten\", \"config\": {\"dim\": 1, \"unflattened_size\": [3]}},"
    "{\"name\": \"2\", \"type\": \"Linear\", \"config\": {\"in_features\": 3, \"out_features\": 2}}]}}";

TEST (Train, ModesReachTheWholeSubtree)
{
  Registry reg = default_registry ();
  Module m = load_json (reg.get (), chain);
  ASSERT_TRUE (m);
  NnModule *c = nn_module_lookup_path (m.get (), "2", nullptr);
  EXPECT_FALSE (nn_module_is_training (m.get ()));
  nn_module_train (m.get (), TRUE);
  EXPECT_TRUE (nn_module_is_training (m.get ()));
  EXPECT_TRUE (nn_module_is_training (c));
  nn_module_train (c, FALSE);
  EXPECT_TRUE (nn_module_is_training (m.get ()));
  EXPECT_FALSE (nn_module_is_training (c));
}

TEST (Train, FreezeByGlobAndCount)
{
  Registry reg = default_registry ();
  Module m = load_json (reg.get (), chain);
  ASSERT_TRUE (m);
  Error err;
  gint64 t = 0, f = 0;
  nn_module_count_trainable (m.get (), &t, &f);
  EXPECT_EQ (t, 4 * 3 + 3 + 3 * 2 + 2);
  EXPECT_EQ (f, 0);
  guint n = 0;
  ASSERT_TRUE (nn_module_set_requires_grad (m.get (), "*.weight", FALSE, &n, err.out ()));
  EXPECT_EQ (n, 2u);
  nn_module_count_trainable (m.get (), &t, &f);
  EXPECT_EQ (t, 3 + 2);
  EXPECT_EQ (f, 12 + 6);
  char **names = nn_module_frozen_names (m.get ());
  ASSERT_EQ (g_strv_length (names), 2u);
  EXPECT_STREQ (names[0], "0.weight");
  EXPECT_STREQ (names[1], "2.weight");
  g_strfreev (names);
  ASSERT_TRUE (nn_module_set_requires_grad (m.get (), "0.*", TRUE, &n, err.out ()));
  EXPECT_TRUE (nn_module_param_requires_grad (nn_module_lookup_path (m.get (), "0", nullptr),
                                              "weight"));
  // A glob matching nothing is an error naming it, and changes nothing.
  EXPECT_FALSE (nn_module_set_requires_grad (m.get (), "features.*", FALSE, &n, err.out ()));
  EXPECT_TRUE (contains (err.message (), "'features.*' matches no parameter")) << err.message ();
  nn_module_count_trainable (m.get (), &t, &f);
  EXPECT_EQ (f, 6);
  // Gradients are read by parameter name; a bad name is an error.
  EXPECT_EQ (nn_module_lookup_grad (m.get (), "0.nope", err.out ()), nullptr);
  EXPECT_TRUE (contains (err.message (), "'0.nope' is not a parameter")) << err.message ();
}

TEST (Train, FrozenSetTravelsInTheDescriptor)
{
  Registry reg = default_registry ();
  Module m = load_json (reg.get (), chain);
  ASSERT_TRUE (m);
  Error err;
  ASSERT_TRUE (nn_module_set_requires_grad (m.get (), "2", FALSE, nullptr, err.out ()));
  CStr text (nn_descriptor_to_data (m.get (), nullptr));
  EXPECT_TRUE (contains (text.get (), "\"frozen\": [\"2.weight\", \"2.bias\"]")) << text.get ();
  Module back = load_json (reg.get (), text.get ());
  ASSERT_TRUE (back);
  gint64 t = 0, f = 0;
  nn_module_count_trainable (back.get (), &t, &f);
  EXPECT_EQ (f, 3 * 2 + 2);
  // A glob in the file works as on the command line; one matching nothing
  // or not a string is refused, naming the field.
  std::string globbed = std::string (chain);
  globbed.insert (globbed.find ("\"model\""), "\"frozen\": [\"0.*\"], ");
  Module g = load_json (reg.get (), globbed);
  ASSERT_TRUE (g);
  nn_module_count_trainable (g.get (), &t, &f);
  EXPECT_EQ (f, 4 * 3 + 3);
  for (const char *bad : { "\"frozen\": [\"zz.*\"], ", "\"frozen\": [3], ", "\"frozen\": 1, " }) {
    std::string text2 = std::string (chain);
    text2.insert (text2.find ("\"model\""), bad);
    Module none (nn_descriptor_load_data (reg.get (), text2.c_str (), -1, "t.json", err.out ()));
    EXPECT_FALSE (none) << bad;
    EXPECT_TRUE (contains (err.message (), "t.json: frozen: ")) << err.message ();
  }
}

TEST (Train, TypeWithoutBackwardIsNamedOnlyWhenNeeded)
{
  Registry reg = default_registry ();
  Module m = load_json (reg.get (), chain);
  ASSERT_TRUE (m);
  nn_module_reset_parameters (m.get (), 3);
  Error err;
  Tensor x = tensor_f32 ({ 2, 4 }, [] (gint64 i) { return 0.1f * (float) i - 0.3f; });
  ValueRef a = value_tuple ({ nn_value_new_tensor (x.get ()) });
  NnTape *tape = nn_tape_new (1);
  ValueRef y (nn_tape_call (tape, m.get (), a.get (), nullptr, err.out ()));
  ASSERT_TRUE (y) << err.message ();
  EXPECT_EQ (nn_tape_n_entries (tape), 3u);
  Tensor g = tensor_f32 ({ 2, 2 }, [] (gint64 i) { return 1.0f; });
  EXPECT_FALSE (nn_backward (tape, nn_value_get_tensor (y.get ()), g.get (), err.out ()));
  EXPECT_TRUE (contains (err.message (), "'1': layer type Unflatten has no backward()"))
      << err.message ();
  // Walked once only.
  EXPECT_FALSE (nn_backward (tape, nn_value_get_tensor (y.get ()), g.get (), err.out ()));
  EXPECT_TRUE (contains (err.message (), "already walked")) << err.message ();
  nn_tape_free (tape);

  // With everything before the last Linear frozen, Unflatten is not on the
  // gradient path: nothing before it is recorded and backward succeeds.
  ASSERT_TRUE (nn_module_set_requires_grad (m.get (), "0", FALSE, nullptr, err.out ()));
  tape = nn_tape_new (1);
  ValueRef y2 (nn_tape_call (tape, m.get (), a.get (), nullptr, err.out ()));
  ASSERT_TRUE (y2) << err.message ();
  EXPECT_EQ (nn_tape_n_entries (tape), 1u);
  EXPECT_TRUE (nn_backward (tape, nn_value_get_tensor (y2.get ()), g.get (), err.out ()))
      << err.message ();
  EXPECT_NE (nn_module_lookup_grad (m.get (), "2.weight", err.out ()), nullptr);
  // A wrong seed gradient, or an output not computed by the tape.
  nn_tape_free (tape);
  tape = nn_tape_new (1);
  ValueRef y3 (nn_tape_call (tape, m.get (), a.get (), nullptr, err.out ()));
  Tensor bad = tensor_f32 ({ 3 }, [] (gint64 i) { return 1.0f; });
  EXPECT_FALSE (nn_backward (tape, nn_value_get_tensor (y3.get ()), bad.get (), err.out ()));
  EXPECT_TRUE (contains (err.message (), "output's shape [2, 2]")) << err.message ();
  EXPECT_FALSE (nn_backward (tape, nn_value_get_tensor (y3.get ()), nullptr, err.out ()));
  EXPECT_TRUE (contains (err.message (), "one-element output")) << err.message ();
  EXPECT_FALSE (nn_backward (tape, x.get (), nullptr, err.out ()));
  EXPECT_TRUE (contains (err.message (), "not computed by a recorded call")) << err.message ();
  nn_tape_free (tape);
  nn_module_zero_grad (m.get ());
  EXPECT_EQ (nn_module_lookup_grad (m.get (), "2.weight", err.out ()), nullptr);
}

// A convolution whose input needs no gradient (a network's first layer)
// skips the input gradient (nn_call_input_needs_grad) on every provider;
// its weight and bias gradients still match a direct sum computed here,
// and with the input watched the input gradient matches one too.
TEST (Train, FirstConvSkipsTheInputGradient)
{
  const gint64 N = 2, C = 16, O = 24, H = 9, W = 8, K = 3, S = 2, P = 1;
  const gint64 HO = (H + 2 * P - K) / S + 1, WO = (W + 2 * P - K) / S + 1;
  Tensor x = tensor_f32 ({ N, C, H, W }, [] (gint64 i) { return std::sin (0.37 * i); });
  Tensor g = tensor_f32 ({ N, O, HO, WO }, [] (gint64 i) { return std::cos (0.11 * i); });
  // Direct sums: dw[o,c,ki,kj] = sum g[n,o,oh,ow] x[n,c,oh*S-P+ki,ow*S-P+kj].
  std::vector<double> dw (O * C * K * K, 0.0), db (O, 0.0);
  const float *xd = nn_tensor_f32 (x.get ()), *gd = nn_tensor_f32 (g.get ());
  for (gint64 n = 0; n < N; n++)
    for (gint64 o = 0; o < O; o++)
      for (gint64 oh = 0; oh < HO; oh++)
        for (gint64 ow = 0; ow < WO; ow++) {
          double gv = gd[((n * O + o) * HO + oh) * WO + ow];
          db[o] += gv;
          for (gint64 c = 0; c < C; c++)
            for (gint64 ki = 0; ki < K; ki++)
              for (gint64 kj = 0; kj < K; kj++) {
                gint64 ih = oh * S - P + ki, iw = ow * S - P + kj;
                if (ih >= 0 && ih < H && iw >= 0 && iw < W)
                  dw[((o * C + c) * K + ki) * K + kj]
                      += gv * xd[((n * C + c) * H + ih) * W + iw];
              }
        }
  for (const char *rule : { "", "Conv2d=-dnnl" }) {
    SCOPED_TRACE (rule);
    Registry reg = default_registry ();
    Error err;
    if (*rule) {
      ASSERT_TRUE (nn_registry_set_providers (reg.get (), rule, err.out ())) << err.message ();
    }
    Module m = make_module (reg.get (), "Conv2d",
                            "{\"in_channels\": 16, \"out_channels\": 24, \"kernel_size\": 3, "
                            "\"stride\": 2, \"padding\": 1}", err, "conv");
    ASSERT_TRUE (m) << err.message ();
    nn_module_reset_parameters (m.get (), 5);
    nn_module_train (m.get (), TRUE);
    for (bool watch : { false, true }) {
      SCOPED_TRACE (watch ? "watched" : "not watched");
      nn_module_zero_grad (m.get ());
      NnTape *tape = nn_tape_new (0);
      if (watch)
        nn_tape_watch (tape, x.get ());
      ValueRef a = value_tuple ({ nn_value_new_tensor (x.get ()) });
      ValueRef y (nn_tape_call (tape, m.get (), a.get (), nullptr, err.out ()));
      ASSERT_TRUE (y) << err.message ();
      ASSERT_TRUE (nn_backward (tape, nn_value_get_tensor (y.get ()), g.get (), err.out ()))
          << err.message ();
      NnTensor *gx = nn_tape_grad (tape, x.get ());
      EXPECT_EQ (gx != nullptr, watch);
      if (gx) {
        // dx[n,c,ih,iw] = sum over the taps that read it of g * w.
        const float *wd = nn_tensor_f32 (nn_module_get_parameter (m.get (), "weight"));
        double worst = 0.0;
        for (gint64 n = 0; n < N; n++)
          for (gint64 c = 0; c < C; c++)
            for (gint64 ih = 0; ih < H; ih++)
              for (gint64 iw = 0; iw < W; iw++) {
                double want = 0.0;
                for (gint64 o = 0; o < O; o++)
                  for (gint64 ki = 0; ki < K; ki++)
                    for (gint64 kj = 0; kj < K; kj++) {
                      gint64 oh = ih + P - ki, ow = iw + P - kj;
                      if (oh % S || ow % S || oh < 0 || ow < 0 || oh / S >= HO || ow / S >= WO)
                        continue;
                      want += gd[((n * O + o) * HO + oh / S) * WO + ow / S]
                              * wd[((o * C + c) * K + ki) * K + kj];
                    }
                double got = nn_tensor_f32 (gx)[((n * C + c) * H + ih) * W + iw];
                worst = std::max (worst, std::fabs (got - want) / (1.0 + std::fabs (want)));
              }
        EXPECT_LT (worst, 1e-4);
      }
      NnTensor *gw = nn_module_lookup_grad (m.get (), "weight", err.out ());
      NnTensor *gb = nn_module_lookup_grad (m.get (), "bias", err.out ());
      ASSERT_TRUE (gw && gb);
      double worst = 0.0;
      for (gint64 i = 0; i < O * C * K * K; i++)
        worst = std::max (worst, std::fabs (nn_tensor_f32 (gw)[i] - dw[i]) / (1.0 + std::fabs (dw[i])));
      for (gint64 i = 0; i < O; i++)
        worst = std::max (worst, std::fabs (nn_tensor_f32 (gb)[i] - db[i]) / (1.0 + std::fabs (db[i])));
      EXPECT_LT (worst, 1e-4);
      nn_tape_free (tape);
    }
  }
}

// While a tape is live, blocks from 256 KiB up go through the storage
// pool and stay there between steps (a step's activations and gradients
// are asked for again by the next one); without a tape such blocks are
// the heap's as before, so a forward keeps nothing more.
TEST (Train, TapeKeepsStepSizedBlocksInThePool)
{
  const gsize mib = 1 << 20;
  NnShape s = { 1, { (gint64) (mib / sizeof (float)) } };
  nn_tensor_pool_trim ();
  ASSERT_EQ (nn_tensor_pool_get_bytes (), 0u);
  nn_tensor_unref (nn_tensor_new (NN_DTYPE_F32, &s));
  EXPECT_EQ (nn_tensor_pool_get_bytes (), 0u) << "no tape: 1 MiB is the heap's";

  NnTape *tape = nn_tape_new (0);
  NnTensor *t = nn_tensor_new (NN_DTYPE_F32, &s);
  ASSERT_TRUE (t);
  float *data = nn_tensor_f32 (t);
  for (gint64 i = 0; i < s.dims[0]; i++)
    data[i] = 1.0f + (float) i;
  nn_tensor_unref (t);
  nn_tape_free (tape);
  EXPECT_EQ (nn_tensor_pool_get_bytes (), mib) << "kept after the tape went";

  // Small blocks stay outside the pool even with a tape.
  NnShape small = { 1, { 1024 } };
  tape = nn_tape_new (1);
  nn_tensor_unref (nn_tensor_new (NN_DTYPE_F32, &small));
  EXPECT_EQ (nn_tensor_pool_get_bytes (), mib);
  // The next step gets the block back, zero-filled as nn_tensor_new says.
  t = nn_tensor_new (NN_DTYPE_F32, &s);
  ASSERT_TRUE (t);
  EXPECT_EQ (nn_tensor_f32 (t), data) << "the kept block is reused";
  EXPECT_EQ (nn_tensor_pool_get_bytes (), 0u);
  gint64 nonzero = 0;
  for (gint64 i = 0; i < s.dims[0]; i++)
    nonzero += nn_tensor_f32 (t)[i] != 0.0f;
  EXPECT_EQ (nonzero, 0);
  nn_tape_free (tape);
  nn_tensor_unref (t);  // after its tape: still goes back to the pool
  EXPECT_EQ (nn_tensor_pool_get_bytes (), mib);
  nn_tensor_pool_trim ();
  EXPECT_EQ (nn_tensor_pool_get_bytes (), 0u);
}

// nn_tensor_new_uninitialized: shape, dtype and storage as nn_tensor_new
// (pooled the same way in training), NULL for a size that overflows.
TEST (Train, UninitializedTensorsAreOrdinaryTensors)
{
  NnShape s = { 2, { 3, 70000 } };
  NnTape *tape = nn_tape_new (0);
  NnTensor *t = nn_tensor_new_uninitialized (NN_DTYPE_F32, &s);
  ASSERT_TRUE (t);
  EXPECT_EQ (t->dtype, NN_DTYPE_F32);
  EXPECT_TRUE (nn_shape_equal (&t->shape, &s));
  EXPECT_EQ (nn_tensor_nbytes (t), (gsize) 3 * 70000 * sizeof (float));
  EXPECT_FALSE (nn_tensor_is_read_only (t));
  float *d = nn_tensor_f32 (t);
  for (gint64 i = 0; i < 3 * 70000; i++)
    d[i] = (float) i;
  EXPECT_EQ (d[3 * 70000 - 1], (float) (3 * 70000 - 1));
  nn_tensor_unref (t);
  nn_tape_free (tape);
  NnShape small = { 1, { 5 } };
  t = nn_tensor_new_uninitialized (NN_DTYPE_I64, &small);
  ASSERT_TRUE (t);
  EXPECT_EQ (nn_tensor_nbytes (t), 5 * sizeof (gint64));
  nn_tensor_unref (t);
  NnShape huge = { 3, { G_MAXINT64 / 4, 4, 4 } };
  EXPECT_EQ (nn_tensor_new_uninitialized (NN_DTYPE_F32, &huge), nullptr);
  nn_tensor_pool_trim ();
}

// One Conv2d called twice on a tape in training mode (y2 = conv (conv (x))):
// oneDNN's training forward keeps its reordered input for backward_weights,
// and the second call replaces what the first kept, so the first call's
// backward must reorder its own input.  Gradients against direct sums.
TEST (Train, ConvCalledTwiceUsesOnlyItsOwnKeptInput)
{
  const gint64 N = 2, C = 16, H = 7, W = 6, K = 3, P = 1;
  Tensor x = tensor_f32 ({ N, C, H, W }, [] (gint64 i) { return std::sin (0.23 * i); });
  Tensor g = tensor_f32 ({ N, C, H, W }, [] (gint64 i) { return std::cos (0.17 * i); });
  auto at = [&] (gint64 n, gint64 c, gint64 h, gint64 w) { return ((n * C + c) * H + h) * W + w; };
  for (const char *rule : { "", "Conv2d=-dnnl" }) {
    SCOPED_TRACE (rule);
    Registry reg = default_registry ();
    Error err;
    if (*rule) {
      ASSERT_TRUE (nn_registry_set_providers (reg.get (), rule, err.out ())) << err.message ();
    }
    Module m = make_module (reg.get (), "Conv2d",
                            "{\"in_channels\": 16, \"out_channels\": 16, \"kernel_size\": 3, "
                            "\"padding\": 1}", err, "conv");
    ASSERT_TRUE (m) << err.message ();
    nn_module_reset_parameters (m.get (), 3);
    nn_module_train (m.get (), TRUE);
    const float *wd = nn_tensor_f32 (nn_module_get_parameter (m.get (), "weight"));
    const float *bd = nn_tensor_f32 (nn_module_get_parameter (m.get (), "bias"));
    // Direct sums in double: forward, input gradient, weight gradient.
    auto fwd = [&] (const std::vector<double> &in) {
      std::vector<double> out (N * C * H * W, 0.0);
      for (gint64 n = 0; n < N; n++)
        for (gint64 o = 0; o < C; o++)
          for (gint64 h = 0; h < H; h++)
            for (gint64 w = 0; w < W; w++) {
              double acc = bd[o];
              for (gint64 c = 0; c < C; c++)
                for (gint64 i = 0; i < K; i++)
                  for (gint64 j = 0; j < K; j++) {
                    gint64 ih = h - P + i, iw = w - P + j;
                    if (ih >= 0 && ih < H && iw >= 0 && iw < W)
                      acc += wd[((o * C + c) * K + i) * K + j] * in[at (n, c, ih, iw)];
                  }
              out[at (n, o, h, w)] = acc;
            }
      return out;
    };
    auto bwd_data = [&] (const std::vector<double> &go) {
      std::vector<double> din (N * C * H * W, 0.0);
      for (gint64 n = 0; n < N; n++)
        for (gint64 o = 0; o < C; o++)
          for (gint64 h = 0; h < H; h++)
            for (gint64 w = 0; w < W; w++)
              for (gint64 c = 0; c < C; c++)
                for (gint64 i = 0; i < K; i++)
                  for (gint64 j = 0; j < K; j++) {
                    gint64 ih = h - P + i, iw = w - P + j;
                    if (ih >= 0 && ih < H && iw >= 0 && iw < W)
                      din[at (n, c, ih, iw)] += wd[((o * C + c) * K + i) * K + j]
                                                * go[at (n, o, h, w)];
                  }
      return din;
    };
    auto add_bwd_weights = [&] (const std::vector<double> &go, const std::vector<double> &in,
                                std::vector<double> &dw, std::vector<double> &db) {
      for (gint64 n = 0; n < N; n++)
        for (gint64 o = 0; o < C; o++)
          for (gint64 h = 0; h < H; h++)
            for (gint64 w = 0; w < W; w++) {
              db[o] += go[at (n, o, h, w)];
              for (gint64 c = 0; c < C; c++)
                for (gint64 i = 0; i < K; i++)
                  for (gint64 j = 0; j < K; j++) {
                    gint64 ih = h - P + i, iw = w - P + j;
                    if (ih >= 0 && ih < H && iw >= 0 && iw < W)
                      dw[((o * C + c) * K + i) * K + j] += go[at (n, o, h, w)]
                                                           * in[at (n, c, ih, iw)];
                  }
            }
    };
    std::vector<double> xv (nn_tensor_f32 (x.get ()), nn_tensor_f32 (x.get ()) + N * C * H * W);
    std::vector<double> gv (nn_tensor_f32 (g.get ()), nn_tensor_f32 (g.get ()) + N * C * H * W);
    std::vector<double> y1 = fwd (xv), g1 = bwd_data (gv), dx = bwd_data (g1);
    std::vector<double> dw (C * C * K * K, 0.0), db (C, 0.0);
    add_bwd_weights (gv, y1, dw, db);
    add_bwd_weights (g1, xv, dw, db);

    NnTape *tape = nn_tape_new (0);
    nn_tape_watch (tape, x.get ());
    ValueRef a1 = value_tuple ({ nn_value_new_tensor (x.get ()) });
    ValueRef o1 (nn_tape_call (tape, m.get (), a1.get (), nullptr, err.out ()));
    ASSERT_TRUE (o1) << err.message ();
    ValueRef a2 = value_tuple ({ nn_value_new_tensor (nn_value_get_tensor (o1.get ())) });
    ValueRef o2 (nn_tape_call (tape, m.get (), a2.get (), nullptr, err.out ()));
    ASSERT_TRUE (o2) << err.message ();
    ASSERT_TRUE (nn_backward (tape, nn_value_get_tensor (o2.get ()), g.get (), err.out ()))
        << err.message ();
    auto worst = [] (const float *got, const std::vector<double> &want) {
      double e = 0.0;
      for (size_t i = 0; i < want.size (); i++)
        e = std::max (e, std::fabs (got[i] - want[i]) / (1.0 + std::fabs (want[i])));
      return e;
    };
    NnTensor *gx = nn_tape_grad (tape, x.get ());
    ASSERT_TRUE (gx);
    EXPECT_LT (worst (nn_tensor_f32 (gx), dx), 1e-4);
    NnTensor *gw = nn_module_lookup_grad (m.get (), "weight", err.out ());
    NnTensor *gb = nn_module_lookup_grad (m.get (), "bias", err.out ());
    ASSERT_TRUE (gw && gb);
    EXPECT_LT (worst (nn_tensor_f32 (gw), dw), 1e-4);
    EXPECT_LT (worst (nn_tensor_f32 (gb), db), 1e-4);
    nn_tape_free (tape);
  }
}

// A BatchNorm2d called twice on one tape: the backward of the first call
// cannot use the statistics the provider kept (the second call's), so it
// recomputes them; its gradients match a direct computation here.
TEST (Train, BatchNormCalledTwiceRecomputesItsStatistics)
{
  const gint64 N = 4, C = 32, HW = 35;
  Registry reg = default_registry ();
  Error err;
  Module m = make_module (reg.get (), "BatchNorm2d", "{\"num_features\": 32}", err, "bn");
  ASSERT_TRUE (m) << err.message ();
  nn_module_reset_parameters (m.get (), 1);
  float *wd = nn_tensor_f32 (nn_module_get_parameter (m.get (), "weight"));
  for (gint64 c = 0; c < C; c++)
    wd[c] = 0.5f + 0.03f * (float) c;
  nn_module_train (m.get (), TRUE);
  Tensor x1 = tensor_f32 ({ N, C, 5, 7 }, [] (gint64 i) { return 3.0 + std::sin (0.7 * i); });
  Tensor x2 = tensor_f32 ({ N, C, 5, 7 }, [] (gint64 i) { return std::cos (0.3 * i); });
  Tensor g = tensor_f32 ({ N, C, 5, 7 }, [] (gint64 i) { return std::sin (0.13 * i + 1.0); });
  NnTape *tape = nn_tape_new (0);
  nn_tape_watch (tape, x1.get ());
  ValueRef a1 = value_tuple ({ nn_value_new_tensor (x1.get ()) });
  ValueRef a2 = value_tuple ({ nn_value_new_tensor (x2.get ()) });
  ValueRef y1 (nn_tape_call (tape, m.get (), a1.get (), nullptr, err.out ()));
  ASSERT_TRUE (y1) << err.message ();
  ValueRef y2 (nn_tape_call (tape, m.get (), a2.get (), nullptr, err.out ()));
  ASSERT_TRUE (y2) << err.message ();
  ASSERT_TRUE (nn_backward (tape, nn_value_get_tensor (y1.get ()), g.get (), err.out ()))
      << err.message ();
  NnTensor *gx = nn_tape_grad (tape, x1.get ());
  NnTensor *gw = nn_module_lookup_grad (m.get (), "weight", err.out ());
  NnTensor *gb = nn_module_lookup_grad (m.get (), "bias", err.out ());
  ASSERT_TRUE (gx && gw && gb);
  const float *x = nn_tensor_f32 (x1.get ()), *gd = nn_tensor_f32 (g.get ());
  double worst = 0.0;
  for (gint64 c = 0; c < C; c++) {
    double sum = 0.0, sq = 0.0, sg = 0.0, sgx = 0.0, M = (double) (N * HW);
    for (gint64 n = 0; n < N; n++)
      for (gint64 i = 0; i < HW; i++)
        sum += x[(n * C + c) * HW + i];
    double mean = sum / M;
    for (gint64 n = 0; n < N; n++)
      for (gint64 i = 0; i < HW; i++) {
        double d = x[(n * C + c) * HW + i] - mean, gv = gd[(n * C + c) * HW + i];
        sq += d * d;
        sg += gv;
        sgx += gv * d;
      }
    double inv = 1.0 / std::sqrt (sq / M + 1e-5);
    auto rel = [] (double got, double want) { return std::fabs (got - want) / (1.0 + std::fabs (want)); };
    worst = std::max (worst, rel (nn_tensor_f32 (gw)[c], sgx * inv));
    worst = std::max (worst, rel (nn_tensor_f32 (gb)[c], sg));
    for (gint64 n = 0; n < N; n++)
      for (gint64 i = 0; i < HW; i++) {
        gint64 k = (n * C + c) * HW + i;
        double want = wd[c] * inv * (gd[k] - sg / M - (x[k] - mean) * inv * inv * sgx / M);
        worst = std::max (worst, rel (nn_tensor_f32 (gx)[k], want));
      }
  }
  EXPECT_LT (worst, 1e-4);
  nn_tape_free (tape);
}

// Loading plugins settles libgomp's spin count first (core/omp_setup.c):
// a short one, since a spinning OpenMP worker takes the core nnkit's pool
// needs between oneDNN's primitives; the test's environment sets neither
// GOMP_SPINCOUNT nor OMP_WAIT_POLICY (the user's would win).
// Read at start-up, before any test loads plugins.
const bool omp_env_preset = g_getenv ("OMP_WAIT_POLICY") || g_getenv ("GOMP_SPINCOUNT");

TEST (Train, OpenMpSpinIsShortWhenPluginsLoad)
{
  if (omp_env_preset)
    GTEST_SKIP () << "the environment sets OpenMP's wait policy";
  Registry reg = default_registry ();
  Error err;
  Module m = make_module (reg.get (), "ReLU", "{}", err, "relu");
  ASSERT_TRUE (m) << err.message ();
  EXPECT_STREQ (g_getenv ("GOMP_SPINCOUNT"), "1000");
}

TEST (Train, DropoutInTrainModeIsSeededByTheTape)
{
  Registry reg = default_registry ();
  Error err;
  Module d = make_module (reg.get (), "Dropout", "{\"p\": 0.5}", err, "drop");
  ASSERT_TRUE (d) << err.message ();
  Tensor x = tensor_f32 ({ 200 }, [] (gint64 i) { return 1.0f + (float) i; });
  ValueRef a = value_tuple ({ nn_value_new_tensor (x.get ()) });
  // Eval mode: the identity.
  ValueRef e (nn_module_call (d.get (), a.get (), nullptr, err.out ()));
  EXPECT_EQ (nn_value_get_tensor (e.get ()), x.get ());
  nn_module_train (d.get (), TRUE);
  auto run = [&] (guint32 seed, std::vector<float> &out, std::vector<float> &grad) {
    NnTape *tape = nn_tape_new (seed);
    nn_tape_watch (tape, x.get ());
    ValueRef y (nn_tape_call (tape, d.get (), a.get (), nullptr, err.out ()));
    ASSERT_TRUE (y) << err.message ();
    NnTensor *yt = nn_value_get_tensor (y.get ());
    out.assign (nn_tensor_f32 (yt), nn_tensor_f32 (yt) + 200);
    Tensor g = tensor_f32 ({ 200 }, [] (gint64 i) { return 1.0f; });
    ASSERT_TRUE (nn_backward (tape, yt, g.get (), err.out ())) << err.message ();
    NnTensor *gx = nn_tape_grad (tape, x.get ());
    ASSERT_TRUE (gx);
    grad.assign (nn_tensor_f32 (gx), nn_tensor_f32 (gx) + 200);
    nn_tape_free (tape);
  };
  std::vector<float> o1, g1, o2, g2, o3, g3;
  run (5, o1, g1);
  run (5, o2, g2);
  run (6, o3, g3);
  EXPECT_EQ (o1, o2);
  EXPECT_NE (o1, o3);
  int dropped = 0;
  for (int i = 0; i < 200; i++) {
    float xi = 1.0f + (float) i;
    EXPECT_TRUE (o1[i] == 0.0f || o1[i] == 2.0f * xi) << i;
    EXPECT_EQ (g1[i], o1[i] == 0.0f ? 0.0f : 2.0f) << i;
    dropped += o1[i] == 0.0f;
  }
  EXPECT_GT (dropped, 60);
  EXPECT_LT (dropped, 140);
}

TEST (Train, Schedules)
{
  EXPECT_DOUBLE_EQ (nn_lr_step (0.1, 0, 3, 0.5), 0.1);
  EXPECT_DOUBLE_EQ (nn_lr_step (0.1, 3, 3, 0.5), 0.05);
  EXPECT_DOUBLE_EQ (nn_lr_step (0.1, 7, 3, 0.5), 0.025);
  EXPECT_DOUBLE_EQ (nn_lr_cosine (0.1, 0, 10, 0.0), 0.1);
  EXPECT_NEAR (nn_lr_cosine (0.1, 5, 10, 0.0), 0.05, 1e-12);
  EXPECT_NEAR (nn_lr_cosine (0.1, 10, 10, 0.01), 0.01, 1e-12);
}

} // namespace
