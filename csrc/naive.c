/* naive.c: the plain C product (the tests' reference and the seed model's tiny head), both
 * widths from one body. */
#include <string.h>

#include "fastlstm.h"

#define FL_NAIVE_BODY                                                                          \
    for (int i = 0; i < m; i++) {                                                              \
        real *ci = c + (long long)i * ldc;                                                     \
        if (beta == 0) {                                                                       \
            for (int j = 0; j < n; j++) ci[j] = 0; /* like BLAS: C's old NaNs do not leak */   \
        } else if (beta != 1) {                                                                \
            for (int j = 0; j < n; j++) ci[j] *= beta;                                         \
        }                                                                                      \
    }                                                                                          \
    if (k == 0 || alpha == 0) return;                                                          \
    for (int i = 0; i < m; i++) {                                                              \
        real *ci = c + (long long)i * ldc;                                                     \
        for (int p = 0; p < k; p++) {                                                          \
            const real aip = alpha * (trans_a ? a[(long long)p * lda + i] : a[(long long)i * lda + p]); \
            for (int j = 0; j < n; j++)                                                        \
                ci[j] += aip * (trans_b ? b[(long long)j * ldb + p] : b[(long long)p * ldb + j]); \
        }                                                                                      \
    }

#define real float
void fl_gemm_naive_f32(int trans_a, int trans_b, int m, int n, int k, real alpha, const real *a,
                       int lda, const real *b, int ldb, real beta, real *c, int ldc)
{
    FL_NAIVE_BODY
}
#undef real

#define real double
void fl_gemm_naive_f64(int trans_a, int trans_b, int m, int n, int k, real alpha, const real *a,
                       int lda, const real *b, int ldb, real beta, real *c, int ldc)
{
    FL_NAIVE_BODY
}
#undef real
