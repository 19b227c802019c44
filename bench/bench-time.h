/* Timing helpers shared by the bench drivers (nn-bench, nn-bench-train). */
#ifndef NN_BENCH_TIME_H
#define NN_BENCH_TIME_H

#include <stdlib.h>
#include <time.h>

/* @clock's time in milliseconds. */
static inline double
nn_bench_now_ms (clockid_t clock)
{
  struct timespec ts;
  clock_gettime (clock, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static inline int
nn_bench_cmp_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

/* The median of @v[0..n) (n >= 1); sorts @v in place. */
static inline double
nn_bench_median (double *v, int n)
{
  qsort (v, n, sizeof *v, nn_bench_cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#endif
