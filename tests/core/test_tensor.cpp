// Tests for core/tensor.c: shapes and reference-counted tensors.
#include "nn-test.h"

#include <cmath>

using namespace nntest;

TEST (Shape, ParsesCommaListAndBrackets)
{
  NnShape s;
  Error e;
  ASSERT_TRUE (nn_shape_parse ("1,3,224,224", &s, e.out ()));
  EXPECT_EQ (take (nn_shape_to_string (&s)), "[1, 3, 224, 224]");
  ASSERT_TRUE (nn_shape_parse (" [2, 5] ", &s, e.out ()));
  EXPECT_EQ (s.ndim, 2u);
  EXPECT_EQ (nn_shape_numel (&s), 10);
}

TEST (Shape, RejectsBadText)
{
  NnShape s;
  Error e;
  EXPECT_FALSE (nn_shape_parse ("1,x,3", &s, e.out ()));
  EXPECT_TRUE (e.matches (NN_SHAPE_ERROR, NN_SHAPE_ERROR_INVALID));
  EXPECT_NE (e.message ().find ("'x'"), std::string::npos) << e.message ();
  EXPECT_FALSE (nn_shape_parse ("1,0", &s, e.out ()));
  EXPECT_NE (e.message ().find ("'0'"), std::string::npos);
  EXPECT_FALSE (nn_shape_parse ("1,2,3,4,5,6,7,8,9", &s, e.out ()));
  EXPECT_NE (e.message ().find ("more than 8"), std::string::npos);
  EXPECT_FALSE (nn_shape_parse ("", &s, e.out ()));
}

TEST (Tensor, NewIsZeroedAndRefcounted)
{
  NnShape s = shape ({2, 3});
  NnTensor *t = nn_tensor_new (NN_DTYPE_F32, &s);
  ASSERT_NE (t, nullptr);
  EXPECT_EQ (nn_tensor_numel (t), 6);
  EXPECT_EQ (nn_tensor_nbytes (t), 24u);
  for (int i = 0; i < 6; i++)
    EXPECT_EQ (nn_tensor_f32 (t)[i], 0.0f);
  nn_tensor_ref (t);
  nn_tensor_unref (t);
  nn_tensor_unref (t);
  NnShape big = shape ({G_MAXINT64 / 2, 4});
  EXPECT_EQ (nn_tensor_new (NN_DTYPE_F32, &big), nullptr);
}

TEST (Tensor, ReshapeSharesStorageAndCopyDoesNot)
{
  NnShape s = shape ({2, 3});
  Tensor t (nn_tensor_new (NN_DTYPE_F32, &s));
  nn_tensor_f32 (t.get ())[4] = 7.0f;
  NnShape flat = shape ({6});
  Tensor r (nn_tensor_reshape (t.get (), &flat));
  ASSERT_TRUE (r);
  EXPECT_EQ (r->data, t->data);
  NnShape wrong = shape ({5});
  EXPECT_EQ (nn_tensor_reshape (t.get (), &wrong), nullptr);
  Tensor c (nn_tensor_copy (t.get ()));
  EXPECT_NE (c->data, t->data);
  EXPECT_EQ (nn_tensor_f32 (c.get ())[4], 7.0f);
  Tensor i64 (nn_tensor_new (NN_DTYPE_I64, &s));
  EXPECT_EQ (nn_tensor_f32 (i64.get ()), nullptr);
  EXPECT_EQ (nn_tensor_nbytes (i64.get ()), 48u);
}

static int released;
static void release_counter (gpointer p) { released += GPOINTER_TO_INT (p); }

TEST (Tensor, BorrowedReleasesOwnerOnce)
{
  float data[4] = { 1, 2, 3, 4 };
  NnShape s = shape ({4});
  released = 0;
  NnTensor *t = nn_tensor_new_borrowed (NN_DTYPE_F32, &s, data, TRUE, release_counter,
                                        GINT_TO_POINTER (1));
  EXPECT_TRUE (nn_tensor_is_read_only (t));
  EXPECT_EQ (nn_tensor_f32 (t)[2], 3.0f);
  nn_tensor_unref (t);
  EXPECT_EQ (released, 1);
}

// --- dtypes (ABI 2) ----------------------------------------------------------

TEST (DType, NamesSizesAndParsing)
{
  struct { NnDType d; const char *st, *torch; gsize size; bool fl; } all[] = {
    { NN_DTYPE_F32, "F32", "torch.float32", 4, true }, { NN_DTYPE_I64, "I64", "torch.int64", 8, false },
    { NN_DTYPE_F16, "F16", "torch.float16", 2, true }, { NN_DTYPE_BF16, "BF16", "torch.bfloat16", 2, true },
    { NN_DTYPE_F64, "F64", "torch.float64", 8, true }, { NN_DTYPE_I32, "I32", "torch.int32", 4, false },
    { NN_DTYPE_I8, "I8", "torch.int8", 1, false }, { NN_DTYPE_U8, "U8", "torch.uint8", 1, false },
    { NN_DTYPE_BOOL, "BOOL", "torch.bool", 1, false },
  };
  for (auto &a : all) {
    EXPECT_STREQ (nn_dtype_name (a.d), a.st);
    EXPECT_STREQ (nn_dtype_torch_name (a.d), a.torch);
    EXPECT_EQ (nn_dtype_size (a.d), a.size);
    EXPECT_EQ ((bool) nn_dtype_is_float (a.d), a.fl);
    NnDType got;
    ASSERT_TRUE (nn_dtype_parse (a.st, &got));
    EXPECT_EQ (got, a.d);
    ASSERT_TRUE (nn_dtype_parse (a.torch, &got));
    EXPECT_EQ (got, a.d);
    ASSERT_TRUE (nn_dtype_parse (a.torch + 6, &got)) << a.torch + 6;
    EXPECT_EQ (got, a.d);
  }
  NnDType d;
  EXPECT_TRUE (nn_dtype_parse ("long", &d) && d == NN_DTYPE_I64);
  EXPECT_TRUE (nn_dtype_parse ("torch.half", &d) && d == NN_DTYPE_F16);
  EXPECT_TRUE (nn_dtype_parse ("double", &d) && d == NN_DTYPE_F64);
  EXPECT_FALSE (nn_dtype_parse ("f32", &d));
  EXPECT_FALSE (nn_dtype_parse ("torch.complex64", &d));
  EXPECT_EQ (take (nn_dtype_mask_to_string (0)), "F32");
  EXPECT_EQ (take (nn_dtype_mask_to_string (NN_DTYPE_BIT (NN_DTYPE_F32) | NN_DTYPE_BIT (NN_DTYPE_F16))),
             "F32 or F16");
  EXPECT_EQ (take (nn_dtype_mask_to_string (NN_DTYPES_INT)), "I64, I32, I8 or U8");
}

TEST (Tensor, MetaTensorsHaveNoDataAndStayMeta)
{
  NnShape s = shape ({2, 3});
  Tensor m (nn_tensor_new_meta (NN_DTYPE_BF16, &s));
  ASSERT_TRUE (m);
  EXPECT_TRUE (nn_tensor_is_meta (m.get ()));
  EXPECT_EQ (m->data, nullptr);
  EXPECT_EQ (nn_tensor_nbytes (m.get ()), 12u);
  Tensor c (nn_tensor_copy (m.get ()));
  EXPECT_TRUE (nn_tensor_is_meta (c.get ()));
  NnShape flat = shape ({6});
  Tensor r (nn_tensor_reshape (m.get (), &flat));
  ASSERT_TRUE (r);
  EXPECT_TRUE (nn_tensor_is_meta (r.get ()));
  Tensor f (nn_tensor_to_dtype (m.get (), NN_DTYPE_F32));
  EXPECT_TRUE (nn_tensor_is_meta (f.get ()));
  EXPECT_EQ (f->dtype, NN_DTYPE_F32);
  Tensor real (nn_tensor_new (NN_DTYPE_F32, &s));
  EXPECT_FALSE (nn_tensor_is_meta (real.get ()));
  NnShape huge = shape ({G_MAXINT64 / 2, 4});
  EXPECT_EQ (nn_tensor_new_meta (NN_DTYPE_F32, &huge), nullptr);
  EXPECT_EQ (nn_shape_numel (&huge), G_MAXINT64) << "saturates instead of wrapping";
}

// Independent reference: the representable value nearest to v among all
// finite halves (or bfloats), ties to the even pattern; beyond the largest
// finite value plus half an ulp, infinity.
static guint16
nearest (double v, double (*decode) (guint16), double max_finite, double half_ulp_at_max)
{
  if (std::isnan (v))
    return 0;
  guint16 sign = std::signbit (v) ? 0x8000 : 0;
  double a = std::fabs (v);
  if (a >= max_finite + half_ulp_at_max)
    return sign | 0x7fff; // not reached: callers handle overflow first
  guint16 best = 0;
  double best_err = INFINITY;
  for (guint32 p = 0; p < 0x8000; p++) {
    double x = decode ((guint16) p);
    if (!std::isfinite (x))
      continue;
    double err = std::fabs (x - a);
    if (err < best_err || (err == best_err && (p & 1) == 0)) {
      best = (guint16) p;
      best_err = err;
    }
  }
  return sign | best;
}

static double
half_decode (guint16 h)
{
  int e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e == 31)
    return (h & 0x8000) ? -INFINITY : INFINITY;
  double v = e == 0 ? std::ldexp ((double) m, -24) : std::ldexp (1024.0 + m, e - 25);
  return (h & 0x8000) ? -v : v;
}

static double
bf16_decode (guint16 h)
{
  int e = (h >> 7) & 0xff, m = h & 0x7f;
  if (e == 255)
    return (h & 0x8000) ? -INFINITY : INFINITY;
  double v = e == 0 ? std::ldexp ((double) m, -133) : std::ldexp (128.0 + m, e - 134);
  return (h & 0x8000) ? -v : v;
}

TEST (DType, ConversionsFollowPyTorchRounding)
{
  std::vector<float> vals = { 0.0f, -0.0f, 1.0f, -1.5f, 0.1f, 65504.0f, 65519.0f, 65520.0f, 1e-8f,
                              5.96e-8f, 2.98e-8f, 3.0e-8f, 1.0009765625f, 1.00048828125f,
                              1.00146484375f, 3.14159265f, -2.71828f, 1e30f, -1e30f };
  GRand *r = g_rand_new_with_seed (5);
  for (int i = 0; i < 300; i++)
    vals.push_back ((float) (g_rand_double_range (r, -1, 1) * std::pow (2.0, g_rand_int_range (r, -30, 20))));
  g_rand_free (r);
  NnShape s = shape ({(gint64) vals.size ()});
  Tensor f (nn_tensor_new (NN_DTYPE_F32, &s));
  std::copy (vals.begin (), vals.end (), nn_tensor_f32 (f.get ()));
  Tensor h (nn_tensor_to_dtype (f.get (), NN_DTYPE_F16));
  Tensor b (nn_tensor_to_dtype (f.get (), NN_DTYPE_BF16));
  const guint16 *hp = (const guint16 *) h->data, *bp = (const guint16 *) b->data;
  for (size_t i = 0; i < vals.size (); i++) {
    double v = vals[i];
    guint16 want_h = std::fabs (v) >= 65520.0 ? (std::signbit (v) ? 0xfc00 : 0x7c00)
                                              : nearest (v, half_decode, 65504.0, 16.0);
    EXPECT_EQ (hp[i], want_h) << "F16 of " << vals[i];
    double bmax = bf16_decode (0x7f7f), bhalf = std::ldexp (1.0, 127 - 8);
    guint16 want_b = std::fabs (v) >= bmax + bhalf ? (std::signbit (v) ? 0xff80 : 0x7f80)
                                                   : nearest (v, bf16_decode, bmax, bhalf);
    EXPECT_EQ (bp[i], want_b) << "BF16 of " << vals[i];
  }
  // Back to F32 is exact.
  Tensor back (nn_tensor_to_dtype (h.get (), NN_DTYPE_F32));
  for (size_t i = 0; i < vals.size (); i++)
    EXPECT_EQ ((double) nn_tensor_f32 (back.get ())[i], half_decode (hp[i]));

  // Float to int truncates toward zero; anything to BOOL is != 0.
  std::vector<float> iv = { 2.9f, -2.9f, 0.5f, -0.5f, 7.0f, 0.0f, -0.0f, NAN };
  NnShape si = shape ({(gint64) iv.size ()});
  Tensor fi (nn_tensor_new (NN_DTYPE_F32, &si));
  std::copy (iv.begin (), iv.end (), nn_tensor_f32 (fi.get ()));
  Tensor i64 (nn_tensor_to_dtype (fi.get (), NN_DTYPE_I64));
  Tensor bo (nn_tensor_to_dtype (fi.get (), NN_DTYPE_BOOL));
  gint64 want_i[] = { 2, -2, 0, 0, 7, 0, 0 };
  guint8 want_b[] = { 1, 1, 1, 1, 1, 0, 0, 1 };
  for (size_t i = 0; i < 7; i++)
    EXPECT_EQ (nn_tensor_i64 (i64.get ())[i], want_i[i]) << iv[i];
  for (size_t i = 0; i < iv.size (); i++)
    EXPECT_EQ (((guint8 *) bo->data)[i], want_b[i]) << iv[i];
  // I64 to I8 wraps as PyTorch's .to(torch.int8); I64 to F32 rounds once.
  NnShape s2 = shape ({3});
  Tensor big (nn_tensor_new (NN_DTYPE_I64, &s2));
  gint64 bigv[] = { 300, -129, (1LL << 53) + 1 };
  std::copy (bigv, bigv + 3, nn_tensor_i64 (big.get ()));
  Tensor i8 (nn_tensor_to_dtype (big.get (), NN_DTYPE_I8));
  EXPECT_EQ (((gint8 *) i8->data)[0], (gint8) 44);
  EXPECT_EQ (((gint8 *) i8->data)[1], (gint8) 127);
  Tensor f32 (nn_tensor_to_dtype (big.get (), NN_DTYPE_F32));
  EXPECT_EQ (nn_tensor_f32 (f32.get ())[2], (float) ((1LL << 53) + 1));
  // The same dtype is a reference, not a copy.
  Tensor same (nn_tensor_to_dtype (big.get (), NN_DTYPE_I64));
  EXPECT_EQ (same.get (), big.get ());
}
