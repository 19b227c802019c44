/* The recurrence's per-step product h W_hh^T on a weight packed once per
 * layer direction.  OpenBLAS packs both operands on every call: for a
 * step's few rows that copy of the whole W_hh took a third of an LSTM's
 * product time.  With AVX2 and FMA the step runs here on W_hh transposed
 * ([out, gate], packed by nn_rnn_hidden_init); elsewhere on OpenBLAS as
 * before. */
#include "recurrent.h"

#include <cblas.h>
#include "nn-blas.h"
#include <nnkit/cpu.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define NN_RNN_HAVE_AVX2 1
#include <immintrin.h>
#endif

gboolean
nn_rnn_hidden_packable (void)
{
#ifdef NN_RNN_HAVE_AVX2
  static gsize once;
  static gboolean yes;

  if (g_once_init_enter (&once)) {
    yes = nn_cpu_has (nn_cpu_info_get (), NN_CPU_AVX2 | NN_CPU_FMA);
    g_once_init_leave (&once, 1);
  }
  return yes;
#else
  return FALSE;
#endif
}

/* Columns per packed panel: the kernel's two 8-float registers. */
#define NR 16

void
nn_rnn_hidden_init (NnRnnHidden *hd, const float *w_hh, gint64 gate,
                    gint64 out)
{
  hd->w_hh = w_hh;
  hd->gate = gate;
  hd->out = out;
  hd->wt = NULL;
  if (!nn_rnn_hidden_packable () || gate * out == 0)
    return;
  /* Panels of NR columns of W_hh^T, each [out, NR] contiguous (the last
   * one zero-padded), so the kernel streams one panel per column block:
   * wt[(j / NR) * out * NR + k * NR + j % NR] = w_hh[j * out + k]. */
  gint64 panels = (gate + NR - 1) / NR;
  hd->wt = g_new0 (float, panels * out * NR);
  for (gint64 j = 0; j < gate; j++) {
    float *panel = hd->wt + (j / NR) * out * NR + j % NR;
    const float *row = w_hh + j * out;
    for (gint64 k = 0; k < out; k++)
      panel[k * NR] = row[k];
  }
}

void
nn_rnn_hidden_clear (NnRnnHidden *hd)
{
  g_clear_pointer (&hd->wt, g_free);
}

#ifdef NN_RNN_HAVE_AVX2

/* Rows per block: 6 rows x 16 columns keep 12 accumulators, 2 weight
 * loads and a broadcast in AVX2's 16 registers. */
#define MR 6

/* C[0..mr)[0..16) (+)= A[0..mr)[0..k) wt[0..k)[0..16) (row stride @ldw). */
__attribute__ ((target ("avx2,fma"), always_inline)) static inline void
block_16 (int mr, gint64 k, const float *a, gint64 lda, const float *wt,
          gint64 ldw, float *c, gint64 ldc, gboolean acc)
{
  __m256 c0[MR], c1[MR];
#pragma GCC unroll 6
  for (int r = 0; r < MR; r++) {
    if (r < mr && acc) {
      c0[r] = _mm256_loadu_ps (c + r * ldc);
      c1[r] = _mm256_loadu_ps (c + r * ldc + 8);
    } else {
      c0[r] = _mm256_setzero_ps ();
      c1[r] = _mm256_setzero_ps ();
    }
  }
  for (gint64 p = 0; p < k; p++) {
    __m256 w0 = _mm256_loadu_ps (wt + p * ldw);
    __m256 w1 = _mm256_loadu_ps (wt + p * ldw + 8);
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++)
      if (r < mr) {
        __m256 x = _mm256_broadcast_ss (a + r * lda + p);
        c0[r] = _mm256_fmadd_ps (x, w0, c0[r]);
        c1[r] = _mm256_fmadd_ps (x, w1, c1[r]);
      }
  }
#pragma GCC unroll 6
  for (int r = 0; r < MR; r++)
    if (r < mr) {
      _mm256_storeu_ps (c + r * ldc, c0[r]);
      _mm256_storeu_ps (c + r * ldc + 8, c1[r]);
    }
}

/* Each row count its own copy, so the unrolled loops drop the unused
 * rows at compile time. */
__attribute__ ((target ("avx2,fma"))) static void
block_rows (int mr, gint64 k, const float *a, gint64 lda, const float *wt,
            gint64 ldw, float *c, gint64 ldc, gboolean acc)
{
  switch (mr) {
  case 6: block_16 (6, k, a, lda, wt, ldw, c, ldc, acc); break;
  case 5: block_16 (5, k, a, lda, wt, ldw, c, ldc, acc); break;
  case 4: block_16 (4, k, a, lda, wt, ldw, c, ldc, acc); break;
  case 3: block_16 (3, k, a, lda, wt, ldw, c, ldc, acc); break;
  case 2: block_16 (2, k, a, lda, wt, ldw, c, ldc, acc); break;
  default: block_16 (1, k, a, lda, wt, ldw, c, ldc, acc); break;
  }
}

__attribute__ ((target ("avx2,fma"))) static void
product_avx2 (const NnRnnHidden *hd, gint64 rows, const float *h, float *c,
              gboolean acc)
{
  const gint64 n = hd->gate, k = hd->out, full = n / NR;
  /* Column blocks outside: a block's [k, NR] panel stays in L1 while
   * every row block reads it. */
  for (gint64 jb = 0; jb < full; jb++)
    for (gint64 r = 0; r < rows; r += MR)
      block_rows ((int) MIN (MR, rows - r), k, h + r * k, k,
                  hd->wt + jb * k * NR, NR, c + r * n + jb * NR, n, acc);
  if (full * NR == n)
    return;
  /* The padded last panel, through a row of NR floats. */
  gint64 j0 = full * NR, w = n - j0;
  float tmp[NR];
  for (gint64 r = 0; r < rows; r++) {
    memset (tmp, 0, sizeof tmp);
    if (acc)
      memcpy (tmp, c + r * n + j0, sizeof (float) * w);
    block_rows (1, k, h + r * k, k, hd->wt + full * k * NR, NR, tmp, NR, acc);
    memcpy (c + r * n + j0, tmp, sizeof (float) * w);
  }
}

#endif

void
nn_rnn_hidden_product (const NnRnnHidden *hd, gint64 rows, const float *h,
                       float *c, gboolean accumulate)
{
  if (rows <= 0 || hd->gate <= 0)
    return;
#ifdef NN_RNN_HAVE_AVX2
  if (hd->wt) {
    product_avx2 (hd, rows, h, c, accumulate);
    return;
  }
#endif
  if (hd->out == 0) {
    if (!accumulate)
      memset (c, 0, sizeof (float) * rows * hd->gate);
    return;
  }
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, (int) rows,
               (int) hd->gate, (int) hd->out, 1.0f, h, (int) hd->out, hd->w_hh,
               (int) hd->out, accumulate ? 1.0f : 0.0f, c, (int) hd->gate);
}
