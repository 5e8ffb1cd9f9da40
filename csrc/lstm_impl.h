/*
 * lstm_impl.h: the body of every kernel, written once for `real` and compiled twice
 * (kernels_f32.c, kernels_f64.c define `real`, FL_FN and the math functions, then include this).
 *
 * Structure (see DESIGN.md, "Kernels"): the input projection of all steps is one GEMM before the
 * time loop; each step adds only h_{t-1} @ W_hh^T into its row block and runs one fused
 * elementwise pass (gate_forward); backward runs the fused pass in reverse (gate_backward),
 * one GEMM per step for dh_{t-1}, and the weight gradients as whole-sequence GEMMs after the loop.
 * Dims: see fastlstm.h.
 */

#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "fastmath_impl.h"

/* The plain loops are compiled for AVX2+FMA and AVX-512 as well as the baseline, picked at load
 * time (GCC/clang function multi-versioning): wider SIMD only through runtime dispatch, so the
 * wheel still runs on any x86-64. */
#if defined(__x86_64__) && defined(__linux__) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(FL_NO_CLONES) && !defined(__SANITIZE_ADDRESS__)
#define FL_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define FL_CLONES
#endif

/* ------------------------------------------------------------------------------------------ */
/* GEMM                                                                                        */
/* ------------------------------------------------------------------------------------------ */

/* Dot product with eight independent partial sums, so the compiler can keep them in one SIMD
 * register without reassociating (we never build with fast-math). */
static inline real FL_FN(dot)(const real *x, const real *y, int n)
{
    real s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int p = 0;
    for (; p + 8 <= n; p += 8)
        for (int q = 0; q < 8; q++) s[q] += x[p + q] * y[p + q];
    for (; p < n; p++) s[0] += x[p] * y[p];
    return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

FL_CLONES
void FL_FN(fl_gemm_naive)(int trans_a, int trans_b, int m, int n, int k, real alpha,
                          const real *restrict a, int lda, const real *restrict b, int ldb,
                          real beta, real *restrict c, int ldc)
{
    for (int i = 0; i < m; i++) {
        real *ci = c + (long long)i * ldc;
        if (beta == 0) {
            for (int j = 0; j < n; j++) ci[j] = 0; /* like BLAS: C's old NaNs do not leak */
        } else if (beta != 1) {
            for (int j = 0; j < n; j++) ci[j] *= beta;
        }
    }
    if (k == 0 || alpha == 0) return;
    if (!trans_b) {
        /* C[i, :] += alpha * op(A)[i, p] * B[p, :]: contiguous rows, vectorises over j. */
        for (int i = 0; i < m; i++) {
            real *ci = c + (long long)i * ldc;
            for (int p = 0; p < k; p++) {
                const real aip =
                    alpha * (trans_a ? a[(long long)p * lda + i] : a[(long long)i * lda + p]);
                const real *bp = b + (long long)p * ldb;
                for (int j = 0; j < n; j++) ci[j] += aip * bp[j];
            }
        }
    } else if (!trans_a) {
        /* C[i, j] += alpha * A[i, :] . B[j, :]: two contiguous rows. */
        for (int i = 0; i < m; i++) {
            real *ci = c + (long long)i * ldc;
            const real *ai = a + (long long)i * lda;
            for (int j = 0; j < n; j++) ci[j] += alpha * FL_FN(dot)(ai, b + (long long)j * ldb, k);
        }
    } else {
        /* A^T B^T: never on a hot path here; kept for completeness of the contract. */
        for (int i = 0; i < m; i++) {
            real *ci = c + (long long)i * ldc;
            for (int j = 0; j < n; j++) {
                real s = 0;
                for (int p = 0; p < k; p++)
                    s += a[(long long)p * lda + i] * b[(long long)j * ldb + p];
                ci[j] += alpha * s;
            }
        }
    }
}

/* Below this many multiply-adds a BLAS call costs more than it computes (call overhead,
 * packing, thread wake-up); the plain loops win. A first estimate (about 30^3), not yet tuned:
 * bench/bench_core.py shows its effect on the seed's sizes and on H = 128. */
#ifndef FL_GEMM_BLAS_MIN_MACS
#define FL_GEMM_BLAS_MIN_MACS 24576LL
#endif

/* ... and with fewer rows than this (batch 1 and the like) the product is a matrix-vector one,
 * bound by reading the weights, where the plain loops on W^T keep up with BLAS without its
 * per-call cost. */
#ifndef FL_GEMM_BLAS_MIN_ROWS
#define FL_GEMM_BLAS_MIN_ROWS 4
#endif

static inline int FL_FN(blas_worth)(FL_FN(fl_gemm) gemm, long long m, long long n, long long k)
{
    return gemm != NULL && k > 0 && m >= FL_GEMM_BLAS_MIN_ROWS && n >= FL_GEMM_BLAS_MIN_ROWS &&
           m * n * k >= FL_GEMM_BLAS_MIN_MACS;
}

static inline void FL_FN(gemm)(FL_FN(fl_gemm) blas, int trans_a, int trans_b, int m, int n, int k,
                               real alpha, const real *a, int lda, const real *b, int ldb,
                               real beta, real *c, int ldc)
{
    if (m <= 0 || n <= 0) return;
    if (FL_FN(blas_worth)(blas, m, n, k))
        blas(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    else
        FL_FN(fl_gemm_naive)(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* ------------------------------------------------------------------------------------------ */
/* Packed small-batch GEMM                                                                     */
/* ------------------------------------------------------------------------------------------ */

/* C (m, n) += A (m, k) @ B (k, n) with B packed once per sequence into column panels of FL_NR
 * (two 32-byte vectors): panel q holds B[:, q*NR : (q+1)*NR] as k contiguous rows, the last one
 * zero padded. Every step then streams its weights contiguously (no cache-set conflicts from a
 * power-of-two leading dimension, no per-call packing as in BLAS), with FL_MR rows of C in
 * registers per panel. Written with GCC/clang vector extensions so one source serves the
 * AVX-512, AVX2 and baseline clones; the width of a vector is a property of the source, not of
 * the machine, so the results do not depend on which clone runs. */
#if defined(__GNUC__) || defined(__clang__)
#define FL_HAVE_VEC 1
typedef real FL_FN(vec) __attribute__((vector_size(32), aligned(sizeof(real))));
#define FL_VL ((int)(32 / sizeof(real)))
#else
#define FL_HAVE_VEC 0
#define FL_VL 4
#endif
#define FL_NR (2 * FL_VL)
#define FL_MR 6

/* Elements of a packed (k, n) operand. */
static inline long long FL_FN(packed_size)(int k, int n)
{
    return (long long)k * ((n + FL_NR - 1) / FL_NR) * FL_NR;
}

/* Pack B (k, n) = src (trans: src is (n, k) and B = src^T) into panels. */
static void FL_FN(pack_panels)(real *restrict dst, const real *restrict src, int ld_src, int k,
                               int n, int trans)
{
    for (int q = 0; q * FL_NR < n; q++) {
        const int j0 = q * FL_NR, w = n - j0 < FL_NR ? n - j0 : FL_NR;
        real *panel = dst + (long long)q * k * FL_NR;
        for (int p = 0; p < k; p++) {
            real *row = panel + (long long)p * FL_NR;
            for (int j = 0; j < w; j++)
                row[j] = trans ? src[(long long)(j0 + j) * ld_src + p]
                               : src[(long long)p * ld_src + j0 + j];
            for (int j = w; j < FL_NR; j++) row[j] = 0;
        }
    }
}

#if FL_HAVE_VEC
#define FL_VLOAD(p) (*(const FL_FN(vec) *)(p))
#define FL_VSTORE(p, v) (*(FL_FN(vec) *)(p) = (v))
#endif

/* Column panels [q0, q1) of C (m, n) += A (m, k) @ packed B: FL_MR rows at a time in
 * registers, the remaining rows on two panels at a time (four independent accumulator chains,
 * so batch 1 is not bound by the FMA latency). Every element sums over p in the same order
 * whatever the row blocking and the panel range, so the result does not depend on the batch
 * position of a row or on how the panels are split between threads. */
FL_CLONES
static void FL_FN(gemm_packed_panels)(int q0, int q1, int m, int n, int k,
                                      const real *restrict a, int lda,
                                      const real *restrict bpk, real *restrict c, int ldc)
{
#if FL_HAVE_VEC
    const int mb = m - m % FL_MR;
    for (int q = q0; q < q1 && mb > 0; q++) {
        const int j0 = q * FL_NR, w = n - j0 < FL_NR ? n - j0 : FL_NR;
        const real *panel = bpk + (long long)q * k * FL_NR;
        for (int i = 0; i < mb; i += FL_MR) {
            FL_FN(vec) acc[FL_MR][2];
            for (int r = 0; r < FL_MR; r++) acc[r][0] = acc[r][1] = (FL_FN(vec)){0};
            const real *ai = a + (long long)i * lda;
            const real *bq = panel;
            for (int p = 0; p < k; p++, bq += FL_NR) {
                const FL_FN(vec) b0 = FL_VLOAD(bq), b1 = FL_VLOAD(bq + FL_VL);
                for (int r = 0; r < FL_MR; r++) {
                    const real av = ai[(long long)r * lda + p];
                    acc[r][0] += av * b0;
                    acc[r][1] += av * b1;
                }
            }
            for (int r = 0; r < FL_MR; r++) {
                real *cr = c + (long long)(i + r) * ldc + j0;
                if (w == FL_NR) {
                    FL_VSTORE(cr, FL_VLOAD(cr) + acc[r][0]);
                    FL_VSTORE(cr + FL_VL, FL_VLOAD(cr + FL_VL) + acc[r][1]);
                } else {
                    real t[FL_NR];
                    FL_VSTORE(t, acc[r][0]);
                    FL_VSTORE(t + FL_VL, acc[r][1]);
                    for (int j = 0; j < w; j++) cr[j] += t[j];
                }
            }
        }
    }
    for (int i = mb; i < m; i++) {
        const real *ai = a + (long long)i * lda;
        real *ci = c + (long long)i * ldc;
        for (int q = q0; q < q1; q += 2) {
            const int two = q + 1 < q1;
            const real *p0 = bpk + (long long)q * k * FL_NR;
            const real *p1 = two ? p0 + (long long)k * FL_NR : p0;
            FL_FN(vec) a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
            for (int p = 0; p < k; p++) {
                const real av = ai[p];
                a0 += av * FL_VLOAD(p0 + p * FL_NR);
                a1 += av * FL_VLOAD(p0 + p * FL_NR + FL_VL);
                a2 += av * FL_VLOAD(p1 + p * FL_NR);
                a3 += av * FL_VLOAD(p1 + p * FL_NR + FL_VL);
            }
            real t[2 * FL_NR];
            FL_VSTORE(t, a0);
            FL_VSTORE(t + FL_VL, a1);
            FL_VSTORE(t + FL_NR, a2);
            FL_VSTORE(t + FL_NR + FL_VL, a3);
            const int j0 = q * FL_NR, span = (1 + two) * FL_NR;
            const int w = n - j0 < span ? n - j0 : span;
            for (int j = 0; j < w; j++) ci[j0 + j] += t[j];
        }
    }
#else
    for (int i = 0; i < m; i++)
        for (int q = q0; q < q1; q++) {
            const int j0 = q * FL_NR, w = n - j0 < FL_NR ? n - j0 : FL_NR;
            const real *panel = bpk + (long long)q * k * FL_NR;
            real *ci = c + (long long)i * ldc + j0;
            for (int p = 0; p < k; p++) {
                const real av = a[(long long)i * lda + p];
                for (int j = 0; j < w; j++) ci[j] += av * panel[(long long)p * FL_NR + j];
            }
        }
#endif
}

/* Below this many multiply-adds one thread does the product: waking the others costs more. */
#ifndef FL_OMP_MIN_MACS
#define FL_OMP_MIN_MACS (1LL << 20)
#endif

/* C (m, n) += A (m, k) @ packed B. Large products split their panels (in pairs, the unit of the
 * one-row path) between OpenMP threads when the build has OpenMP: the per-step product of a big
 * layer at a small batch is bound by streaming the weights, which two cores do faster than one.
 * The parallel region is here, outside the cloned function, so each thread still runs the
 * SIMD clone picked for the machine. */
static void FL_FN(gemm_packed)(int m, int n, int k, const real *restrict a, int lda,
                               const real *restrict bpk, real *restrict c, int ldc)
{
    if (m <= 0 || n <= 0 || k <= 0) return;
    const int np = (n + FL_NR - 1) / FL_NR;
#ifdef _OPENMP
    const int pairs = (np + 1) / 2;
    if ((long long)m * n * k >= FL_OMP_MIN_MACS && pairs > 1 && omp_get_max_threads() > 1) {
#pragma omp parallel
        {
            const int nt = omp_get_num_threads(), t = omp_get_thread_num();
            const int p0 = (int)((long long)pairs * t / nt);
            const int p1 = (int)((long long)pairs * (t + 1) / nt);
            const int q0 = 2 * p0, q1 = 2 * p1 < np ? 2 * p1 : np;
            if (q0 < q1) FL_FN(gemm_packed_panels)(q0, q1, m, n, k, a, lda, bpk, c, ldc);
        }
        return;
    }
#endif
    FL_FN(gemm_packed_panels)(0, np, m, n, k, a, lda, bpk, c, ldc);
}

/* The per-step recurrent product runs on the packed kernel for small batches: BLAS repacks the
 * weights on every call and has too few rows to amortise that. Above a weight size that no longer
 * fits the last-level cache the product streams from memory either way and BLAS is as good.
 * Limits in fl_tuning (workspace.c), measured with bench/compare_layer.py on the build machine
 * (AMD Zen 4, 2 cores, 32 MiB L3): float32 H=1024 (16 MiB of W_hh) at batch 16 runs 1.5x faster
 * packed, float64 (32 MiB) 1.4x slower; batch 64 at H=256 runs faster on BLAS. */
static inline int FL_FN(use_packed)(FL_FN(fl_gemm) gemm, long long m, long long n, long long k)
{
    return !FL_FN(blas_worth)(gemm, m, n, k) ||
           (m < fl_tuning.packed_max_rows &&
            (long long)sizeof(real) * n * k <= fl_tuning.packed_max_bytes);
}

/* ------------------------------------------------------------------------------------------ */
/* Gate math                                                                                   */
/* ------------------------------------------------------------------------------------------ */

/* Fused forward pass over B rows: preactivations in `gates` (B, G) become the activated gates
 * (in place), then c_t = f c_{t-1} + i g and h_t = o tanh(c_t). c_prev may alias c_out
 * (inference updates the cell in place); c_prev NULL means zeros. */
/* relu with NaN kept (x < 0 is false for NaN), as np.maximum(x, 0) does. */
static inline real FL_FN(relu)(real x) { return x < 0 ? 0 : x; }

FL_CLONES
static void FL_FN(gate_forward)(real *restrict hidden, int ld_hidden, real *c_out,
                                real *restrict gates, const real *c_prev, int B, int H,
                                int sigmoid_mode, int activation)
{
    const int G = 4 * H;
    for (int r = 0; r < B; r++) {
        real *g = gates + (long long)r * G;
        real *h_row = hidden + (long long)r * ld_hidden;
        real *c_row = c_out + (long long)r * H;
        const real *cp_row = c_prev ? c_prev + (long long)r * H : NULL;
        /* Activations, one contiguous block per function so each loop vectorises: sigmoid on
         * the i and f blocks [0, 2H) and the o block [3H, 4H), `activation` on the g block. */
        if (sigmoid_mode == FL_SIGMOID_CLIP15) {
            for (int j = 0; j < 2 * H; j++) g[j] = FL_FN(sigmoid_clip15)(g[j]);
            for (int j = 3 * H; j < G; j++) g[j] = FL_FN(sigmoid_clip15)(g[j]);
        } else {
            for (int j = 0; j < 2 * H; j++) g[j] = FL_FN(sigmoid_exact)(g[j]);
            for (int j = 3 * H; j < G; j++) g[j] = FL_FN(sigmoid_exact)(g[j]);
        }
        if (activation == FL_ACT_TANH)
            for (int j = 2 * H; j < 3 * H; j++) g[j] = FL_FN(tanh_fast)(g[j]);
        else if (activation == FL_ACT_RELU)
            for (int j = 2 * H; j < 3 * H; j++) g[j] = FL_FN(relu)(g[j]);
        const real *gi = g + FL_GATE_I * H, *gf = g + FL_GATE_F * H;
        const real *gg = g + FL_GATE_G * H, *go = g + FL_GATE_O * H;
        /* c_prev may alias c_out (inference updates the cell in place): element j reads only
         * element j, so the plain loop is right; no restrict on it. */
        if (cp_row) {
            for (int j = 0; j < H; j++) c_row[j] = gf[j] * cp_row[j] + gi[j] * gg[j];
        } else {
            for (int j = 0; j < H; j++) c_row[j] = gi[j] * gg[j];
        }
        if (activation == FL_ACT_TANH)
            for (int j = 0; j < H; j++) h_row[j] = go[j] * FL_FN(tanh_fast)(c_row[j]);
        else if (activation == FL_ACT_RELU)
            for (int j = 0; j < H; j++) h_row[j] = go[j] * FL_FN(relu)(c_row[j]);
        else
            for (int j = 0; j < H; j++) h_row[j] = go[j] * c_row[j];
    }
}

/* Fused backward pass over B rows. In: dh (B, H), the total gradient reaching h_t; dc (B, H),
 * the gradient reaching c_t from step t+1; the kept gates and cell of step t; c_prev (NULL =
 * zeros). Out: d_gates (B, G), the gradient of the preactivations; dc becomes dL/dc_{t-1}.
 * The sigmoid derivative is s (1 - s) for both sigmoids, as in the seed's backward. */
FL_CLONES
static void FL_FN(gate_backward)(real *restrict d_gates, real *restrict dc,
                                 const real *restrict dh, const real *restrict gates,
                                 const real *restrict cell, const real *restrict c_prev, int B,
                                 int H, int activation)
{
    const int G = 4 * H;
    for (int r = 0; r < B; r++) {
        const real *restrict g = gates + (long long)r * G;
        real *restrict dg = d_gates + (long long)r * G;
        const real *restrict c_row = cell + (long long)r * H;
        const real *restrict dh_row = dh + (long long)r * H;
        real *restrict dc_row = dc + (long long)r * H;
        const real *restrict gi = g + FL_GATE_I * H, *restrict gg = g + FL_GATE_G * H;
        const real *restrict go = g + FL_GATE_O * H;
        real *restrict dgi = dg + FL_GATE_I * H, *restrict dgg = dg + FL_GATE_G * H;
        real *restrict dgo = dg + FL_GATE_O * H;
        /* Passes that each vectorise (restrict: the blocks never overlap): o, g, i and the new
         * dc first, one loop per activation (derivatives from the kept outputs: tanh' = 1 - a^2,
         * relu' = [a > 0]), then f, which needs c_{t-1} (zeros at the first step). */
        if (activation == FL_ACT_TANH) {
            for (int j = 0; j < H; j++) {
                const real tc = FL_FN(tanh_fast)(c_row[j]);
                const real d_c = dc_row[j] + dh_row[j] * go[j] * (1 - tc * tc);
                dgo[j] = dh_row[j] * tc * go[j] * (1 - go[j]);
                dgg[j] = d_c * gi[j] * (1 - gg[j] * gg[j]);
                dgi[j] = d_c * gg[j] * gi[j] * (1 - gi[j]);
                dc_row[j] = d_c; /* dL/dc_t for now; times f below */
            }
        } else if (activation == FL_ACT_RELU) {
            for (int j = 0; j < H; j++) {
                const real ac = FL_FN(relu)(c_row[j]);
                const real d_c = dc_row[j] + (c_row[j] > 0 ? dh_row[j] * go[j] : 0);
                dgo[j] = dh_row[j] * ac * go[j] * (1 - go[j]);
                dgg[j] = gg[j] > 0 ? d_c * gi[j] : 0;
                dgi[j] = d_c * gg[j] * gi[j] * (1 - gi[j]);
                dc_row[j] = d_c;
            }
        } else {
            for (int j = 0; j < H; j++) {
                const real d_c = dc_row[j] + dh_row[j] * go[j];
                dgo[j] = dh_row[j] * c_row[j] * go[j] * (1 - go[j]);
                dgg[j] = d_c * gi[j];
                dgi[j] = d_c * gg[j] * gi[j] * (1 - gi[j]);
                dc_row[j] = d_c;
            }
        }
        const real *restrict gf = g + FL_GATE_F * H;
        real *restrict dgf = dg + FL_GATE_F * H;
        if (c_prev) {
            const real *restrict cp_row = c_prev + (long long)r * H;
            for (int j = 0; j < H; j++) {
                dgf[j] = dc_row[j] * cp_row[j] * gf[j] * (1 - gf[j]);
                dc_row[j] *= gf[j];
            }
        } else {
            for (int j = 0; j < H; j++) {
                dgf[j] = dc_row[j] * 0 * gf[j] * (1 - gf[j]); /* 0 * inf stays NaN */
                dc_row[j] *= gf[j];
            }
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* The ONNX cell's extras: peepholes, clipping, coupled input-forget gate                      */
/* ------------------------------------------------------------------------------------------ */

static inline real FL_FN(clamp)(real v, real clip)
{
    /* NaN stays NaN: both comparisons are false for it. */
    return clip > 0 ? (v > clip ? clip : (v < -clip ? -clip : v)) : v;
}

static inline real FL_FN(act)(real v, int activation)
{
    return activation == FL_ACT_TANH ? FL_FN(tanh_fast)(v)
         : activation == FL_ACT_RELU ? FL_FN(relu)(v) : v;
}

/* d act / d arg from the activated value a (tanh: 1 - a^2, relu: [a > 0], linear: 1). */
static inline real FL_FN(act_grad)(real a, int activation)
{
    return activation == FL_ACT_TANH ? 1 - a * a : activation == FL_ACT_RELU ? (a > 0) : 1;
}

/* 1 where the argument of an activation was inside the clip range (its gradient passes), 0
 * where it was clipped: told from the activated value, which then equals the activation of
 * exactly +-clip. */
static inline real FL_FN(unclipped)(real a, real lo, real hi)
{
    return (a > lo && a < hi) ? 1 : 0;
}

/* gate_forward with the extras (clarity before speed: each element in one pass). */
FL_CLONES
static void FL_FN(gate_forward_ext)(real *restrict hidden, int ld_hidden, real *c_out,
                                    real *restrict gates, const real *c_prev, int B, int H,
                                    int activation, const FL_FN(fl_extras) *ex)
{
    const int G = 4 * H;
    const real *p_i = ex->peephole, *p_o = p_i ? p_i + H : NULL, *p_f = p_i ? p_i + 2 * H : NULL;
    const real clip = ex->clip;
    for (int r = 0; r < B; r++) {
        real *g = gates + (long long)r * G;
        real *h_row = hidden + (long long)r * ld_hidden;
        real *c_row = c_out + (long long)r * H;
        const real *cp_row = c_prev ? c_prev + (long long)r * H : NULL;
        for (int j = 0; j < H; j++) {
            const real cp = cp_row ? cp_row[j] : 0;
            real zi = g[FL_GATE_I * H + j] + (p_i ? p_i[j] * cp : 0);
            const real i = FL_FN(sigmoid_exact)(FL_FN(clamp)(zi, clip));
            real f;
            if (ex->input_forget) {
                f = 1 - i;
            } else {
                const real zf = g[FL_GATE_F * H + j] + (p_f ? p_f[j] * cp : 0);
                f = FL_FN(sigmoid_exact)(FL_FN(clamp)(zf, clip));
            }
            const real gg = FL_FN(act)(FL_FN(clamp)(g[FL_GATE_G * H + j], clip), activation);
            const real c = f * cp + i * gg;
            const real zo = g[FL_GATE_O * H + j] + (p_o ? p_o[j] * c : 0);
            const real o = FL_FN(sigmoid_exact)(FL_FN(clamp)(zo, clip));
            g[FL_GATE_I * H + j] = i;
            g[FL_GATE_F * H + j] = f;
            g[FL_GATE_G * H + j] = gg;
            g[FL_GATE_O * H + j] = o;
            c_row[j] = c;
            h_row[j] = o * FL_FN(act)(c, activation);
        }
    }
}

/* gate_backward with the extras; d_peephole (3H) accumulates over the rows (and steps). */
FL_CLONES
static void FL_FN(gate_backward_ext)(real *restrict d_gates, real *restrict dc,
                                     const real *restrict dh, const real *restrict gates,
                                     const real *restrict cell, const real *restrict c_prev,
                                     int B, int H, int activation, const FL_FN(fl_extras) *ex)
{
    const int G = 4 * H;
    const real *p_i = ex->peephole, *p_o = p_i ? p_i + H : NULL, *p_f = p_i ? p_i + 2 * H : NULL;
    real *dp_i = p_i ? ex->d_peephole : NULL;
    real *dp_o = dp_i ? dp_i + H : NULL, *dp_f = dp_i ? dp_i + 2 * H : NULL;
    const real clip = ex->clip;
    /* The activated values of +-clip: gradients stop where an argument was clipped. */
    const real s_lo = clip > 0 ? FL_FN(sigmoid_exact)(-clip) : -1;
    const real s_hi = clip > 0 ? FL_FN(sigmoid_exact)(clip) : 2;
    const real a_lo = clip > 0 ? FL_FN(act)(-clip, activation) : -INFINITY;
    const real a_hi = clip > 0 ? FL_FN(act)(clip, activation) : INFINITY;
    for (int r = 0; r < B; r++) {
        const real *g = gates + (long long)r * G;
        real *dg = d_gates + (long long)r * G;
        const real *c_row = cell + (long long)r * H;
        const real *cp_row = c_prev ? c_prev + (long long)r * H : NULL;
        const real *dh_row = dh + (long long)r * H;
        real *dc_row = dc + (long long)r * H;
        for (int j = 0; j < H; j++) {
            const real i = g[FL_GATE_I * H + j], f = g[FL_GATE_F * H + j];
            const real gg = g[FL_GATE_G * H + j], o = g[FL_GATE_O * H + j];
            const real c = c_row[j], cp = cp_row ? cp_row[j] : 0;
            const real ac = FL_FN(act)(c, activation);
            const real d_h = dh_row[j];
            const real dzo = d_h * ac * o * (1 - o) * FL_FN(unclipped)(o, s_lo, s_hi);
            real d_c = dc_row[j] + d_h * o * FL_FN(act_grad)(ac, activation)
                     + (p_o ? dzo * p_o[j] : 0);
            /* act'(clamp(z)) [|z| < clip]; for relu act' and the mask together are
             * [0 < g < clip], which the same two tests give. */
            const real dgg = d_c * i * FL_FN(act_grad)(gg, activation) *
                             (clip > 0 ? FL_FN(unclipped)(gg, a_lo, a_hi) : 1);
            real d_i = d_c * gg, d_f = d_c * cp;
            if (ex->input_forget) { d_i -= d_f; d_f = 0; } /* f = 1 - i */
            const real dzi = d_i * i * (1 - i) * FL_FN(unclipped)(i, s_lo, s_hi);
            const real dzf = ex->input_forget
                                 ? 0 : d_f * f * (1 - f) * FL_FN(unclipped)(f, s_lo, s_hi);
            dg[FL_GATE_I * H + j] = dzi;
            dg[FL_GATE_F * H + j] = dzf;
            dg[FL_GATE_G * H + j] = dgg;
            dg[FL_GATE_O * H + j] = dzo;
            dc_row[j] = d_c * f + (p_i ? dzi * p_i[j] + dzf * p_f[j] : 0);
            if (dp_i) {
                dp_i[j] += dzi * cp;
                dp_f[j] += dzf * cp;
                dp_o[j] += dzo * c;
            }
        }
    }
}

/* Every bias row of a (rows, G) block set to `bias`: the starting value the input GEMM adds to. */
static void FL_FN(fill_rows)(real *dst, const real *bias, long long rows, int G)
{
    for (long long r = 0; r < rows; r++) memcpy(dst + r * G, bias, sizeof(real) * (size_t)G);
}

/* ------------------------------------------------------------------------------------------ */
/* One cell step                                                                               */
/* ------------------------------------------------------------------------------------------ */

fl_status FL_FN(fl_cell_step)(real *h_out, real *c_out, real *gates_out, real *scratch,
                              const real *x, const real *h_prev, const real *c_prev,
                              const real *w_ih, int ld_ih, const real *w_hh, int ld_hh,
                              const real *bias, int B, int I, int H)
{
    if (B < 0 || I < 0 || H < 1 || !h_out || !c_out || !scratch || !x || !h_prev || !c_prev ||
        !w_ih || !w_hh || !bias)
        return FL_ERR_ARG;
    const int G = 4 * H;
    FL_FN(fill_rows)(scratch, bias, B, G);
    FL_FN(fl_gemm_naive)(0, 1, B, G, I, 1, x, I, w_ih, ld_ih, 1, scratch, G);
    FL_FN(fl_gemm_naive)(0, 1, B, G, H, 1, h_prev, H, w_hh, ld_hh, 1, scratch, G);
    FL_FN(gate_forward)(h_out, H, c_out, scratch, c_prev, B, H, FL_SIGMOID_EXACT, FL_ACT_TANH);
    if (gates_out) memcpy(gates_out, scratch, sizeof(real) * (size_t)B * (size_t)G);
    return FL_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Sequence forward / backward, one layer, one direction                                      */
/* ------------------------------------------------------------------------------------------ */

/* dst (cols, rows) <- src (rows, cols)^T, in 16 x 16 tiles: a plain column walk would write
 * with a stride of a power of two bytes (G = 4H) and thrash the cache sets. */
static void FL_FN(transpose)(real *dst, int ld_dst, const real *src, int ld_src, int rows,
                             int cols)
{
    enum { TILE = 16 };
    for (int r0 = 0; r0 < rows; r0 += TILE) {
        const int r1 = r0 + TILE < rows ? r0 + TILE : rows;
        for (int c0 = 0; c0 < cols; c0 += TILE) {
            const int c1 = c0 + TILE < cols ? c0 + TILE : cols;
            for (int r = r0; r < r1; r++)
                for (int c = c0; c < c1; c++)
                    dst[(long long)c * ld_dst + r] = src[(long long)r * ld_src + c];
        }
    }
}

fl_status FL_FN(fl_seq_forward)(real *hidden, int ld_hidden, real *cell, real *gates,
                                real *c_last, real *w_t, const real *x, int ld_x,
                                const real *h0, const real *c0, const real *w_ih, int ld_ih,
                                const real *w_hh, int ld_hh, const real *bias, int T, int B,
                                int I, int H, int reverse, int sigmoid_mode, int activation,
                                const FL_FN(fl_extras) *extras, FL_FN(fl_gemm) gemm)
{
    if (T < 0 || B < 0 || I < 0 || H < 1 || ld_hidden < H || ld_x < I || ld_ih < I ||
        ld_hh < H || !hidden || !gates || !x || !w_ih || !w_hh || !bias ||
        (cell == NULL && c_last == NULL))
        return FL_ERR_ARG;
    if (T == 0 || B == 0) return FL_OK;
    const int G = 4 * H;
    const long long step_h = (long long)B * ld_hidden; /* hidden rows of one step */
    const long long step_c = (long long)B * H;
    const long long step_g = (long long)B * G;

    /* Products that BLAS would not do well run on weights packed once here into w_t (see
     * gemm_packed; fl_seq_workspace_size): W_ih^T for the input projection when it is small,
     * W_hh^T for the per-step product when the batch is small. */
    const real *w_ih_p = NULL, *w_hh_p = NULL;
    if (w_t != NULL && !FL_FN(blas_worth)(gemm, (long long)T * B, G, I)) {
        FL_FN(pack_panels)(w_t, w_ih, ld_ih, I, G, 1);
        w_ih_p = w_t;
    }
    if (w_t != NULL && FL_FN(use_packed)(gemm, B, G, H)) {
        real *dst = w_t + FL_FN(packed_size)(I, G);
        FL_FN(pack_panels)(dst, w_hh, ld_hh, H, G, 1);
        w_hh_p = dst;
    }

    /* 1. Input projection of every step at once: gates (T*B, G) = x (T*B, I) @ W_ih^T + bias. */
    FL_FN(fill_rows)(gates, bias, (long long)T * B, G);
    if (w_ih_p)
        FL_FN(gemm_packed)(T * B, G, I, x, ld_x, w_ih_p, gates, G);
    else
        FL_FN(gemm)(gemm, 0, 1, T * B, G, I, 1, x, ld_x, w_ih, ld_ih, 1, gates, G);

    /* 2. The recurrence: per step one GEMM and one fused pass. */
    for (int s = 0; s < T; s++) {
        const int t = reverse ? T - 1 - s : s;
        const int tp = reverse ? t + 1 : t - 1; /* the step whose state feeds t */
        real *g_t = gates + t * step_g;
        const real *h_prev = s == 0 ? h0 : hidden + tp * step_h;
        const int ld_prev = s == 0 ? H : ld_hidden;
        if (h_prev) {
            if (w_hh_p)
                FL_FN(gemm_packed)(B, G, H, h_prev, ld_prev, w_hh_p, g_t, G);
            else
                FL_FN(gemm)(gemm, 0, 1, B, G, H, 1, h_prev, ld_prev, w_hh, ld_hh, 1, g_t, G);
        }
        const real *c_prev;
        real *c_t;
        if (cell) {
            c_prev = s == 0 ? c0 : cell + tp * step_c;
            c_t = cell + t * step_c;
        } else {
            c_prev = s == 0 ? c0 : c_last; /* in place: each element reads only itself */
            c_t = c_last;
        }
        if (extras)
            FL_FN(gate_forward_ext)(hidden + t * step_h, ld_hidden, c_t, g_t, c_prev, B, H,
                                    activation, extras);
        else
            FL_FN(gate_forward)(hidden + t * step_h, ld_hidden, c_t, g_t, c_prev, B, H,
                                sigmoid_mode, activation);
    }
    if (cell && c_last) {
        const int t_last = reverse ? 0 : T - 1;
        memcpy(c_last, cell + t_last * step_c, sizeof(real) * (size_t)step_c);
    }
    return FL_OK;
}

fl_status FL_FN(fl_seq_backward)(real *dx, int ld_dx, real *dh0, real *dc0, real *dw_ih,
                                 int ld_dw_ih, real *dw_hh, int ld_dw_hh, real *dbias,
                                 real *d_gates, real *dh, real *dc, real *dw_t,
                                 const real *dy, int ld_dy,
                                 const real *dh_last, const real *dc_last, const real *x,
                                 int ld_x, const real *h0, const real *c0, const real *hidden,
                                 int ld_hidden, const real *cell, const real *gates,
                                 const real *w_ih, int ld_ih, const real *w_hh, int ld_hh,
                                 int T, int B, int I, int H, int reverse, int activation,
                                 const FL_FN(fl_extras) *extras, FL_FN(fl_gemm) gemm)
{
    if (T < 0 || B < 0 || I < 0 || H < 1 || ld_hidden < H || ld_x < I || ld_ih < I ||
        ld_hh < H || ld_dw_ih < I || ld_dw_hh < H || (dx && ld_dx < I) || (dy && ld_dy < H) ||
        !dw_ih || !dw_hh || !dbias || !d_gates || !dh || !dc || !x || !hidden || !cell ||
        !gates || !w_ih || !w_hh)
        return FL_ERR_ARG;
    const int G = 4 * H;
    const long long step_h = (long long)B * ld_hidden;
    const long long step_c = (long long)B * H;
    const long long step_g = (long long)B * G;
    const long long rows = (long long)T * B;

    for (int r = 0; r < G; r++) {
        memset(dw_ih + (long long)r * ld_dw_ih, 0, sizeof(real) * (size_t)I);
        memset(dw_hh + (long long)r * ld_dw_hh, 0, sizeof(real) * (size_t)H);
    }
    memset(dbias, 0, sizeof(real) * (size_t)G);
    if (extras && extras->peephole) {
        if (!extras->d_peephole) return FL_ERR_ARG;
        memset(extras->d_peephole, 0, sizeof(real) * 3 * (size_t)H);
    }
    if (dh_last) memcpy(dh, dh_last, sizeof(real) * (size_t)step_c);
    else memset(dh, 0, sizeof(real) * (size_t)step_c);
    if (dc_last) memcpy(dc, dc_last, sizeof(real) * (size_t)step_c);
    else memset(dc, 0, sizeof(real) * (size_t)step_c);

    /* W_hh packed for the per-step product while the loop runs (dw_t is reused after it). */
    const real *w_hh_p = NULL;
    if (dw_t != NULL && FL_FN(use_packed)(gemm, B, H, G)) {
        FL_FN(pack_panels)(dw_t, w_hh, ld_hh, G, H, 0);
        w_hh_p = dw_t;
    }

    /* 1. The recurrence in reverse order of the forward pass. */
    for (int s = T - 1; s >= 0; s--) {
        const int t = reverse ? T - 1 - s : s;
        const int tp = reverse ? t + 1 : t - 1;
        if (dy) {
            for (int r = 0; r < B; r++) {
                const real *dy_row = dy + ((long long)t * B + r) * ld_dy;
                real *dh_row = dh + (long long)r * H;
                for (int j = 0; j < H; j++) dh_row[j] += dy_row[j];
            }
        }
        const real *c_prev = s == 0 ? c0 : cell + tp * step_c;
        real *dg_t = d_gates + t * step_g;
        if (extras)
            FL_FN(gate_backward_ext)(dg_t, dc, dh, gates + t * step_g, cell + t * step_c, c_prev,
                                     B, H, activation, extras);
        else
            FL_FN(gate_backward)(dg_t, dc, dh, gates + t * step_g, cell + t * step_c, c_prev,
                                 B, H, activation);
        /* dh_{t-1} = dG_t (B, G) @ W_hh (G, H) */
        if (w_hh_p) {
            memset(dh, 0, sizeof(real) * (size_t)step_c);
            FL_FN(gemm_packed)(B, H, G, dg_t, G, w_hh_p, dh, H);
        } else {
            FL_FN(gemm)(gemm, 0, 0, B, H, G, 1, dg_t, G, w_hh, ld_hh, 0, dh, H);
        }
    }
    if (dh0) memcpy(dh0, dh, sizeof(real) * (size_t)step_c);
    if (dc0) memcpy(dc0, dc, sizeof(real) * (size_t)step_c);
    if (rows == 0) return FL_OK;

    /* 2. dX (T*B, I) = dG (T*B, G) @ W_ih (G, I), before the weight gradients reuse dw_t: a
     * narrow input (a few features) is a poor BLAS shape, so W_ih is packed into dw_t then. */
    if (dx) {
        if (dw_t != NULL && !FL_FN(blas_worth)(gemm, rows, I, G)) {
            FL_FN(pack_panels)(dw_t, w_ih, ld_ih, G, I, 0);
            for (long long r = 0; r < rows; r++)
                memset(dx + r * ld_dx, 0, sizeof(real) * (size_t)I);
            FL_FN(gemm_packed)((int)rows, I, G, d_gates, G, dw_t, dx, ld_dx);
        } else {
            FL_FN(gemm)(gemm, 0, 0, (int)rows, I, G, 1, d_gates, G, w_ih, ld_ih, 0, dx, ld_dx);
        }
    }

    /* 3. Weight gradients over all steps at once. */
    for (long long r = 0; r < rows; r++) {
        const real *dg = d_gates + r * G;
        for (int j = 0; j < G; j++) dbias[j] += dg[j];
    }
    /* dW_ih (G, I) = dG^T (G, T*B) @ X (T*B, I). Too small for BLAS (few inputs): accumulate
     * dW_ih^T (I, G) = X^T dG, whose inner loop runs over contiguous G, then transpose. */
    if (dw_t != NULL && !FL_FN(blas_worth)(gemm, G, I, rows)) {
        FL_FN(fl_gemm_naive)(1, 0, I, G, (int)rows, 1, x, ld_x, d_gates, G, 0, dw_t, G);
        FL_FN(transpose)(dw_ih, ld_dw_ih, dw_t, G, I, G);
    } else {
        FL_FN(gemm)(gemm, 1, 0, G, I, (int)rows, 1, d_gates, G, x, ld_x, 0, dw_ih, ld_dw_ih);
    }
    /* dW_hh (G, H) = sum_t dG_t^T h_{prev(t)}: the steps whose predecessor is a row block of
     * `hidden` form one product; the first processed step pairs with h0. Small: via dW_hh^T. */
    const real *dg_from = reverse ? d_gates : d_gates + step_g;      /* steps with h_prev in */
    const real *h_from = reverse ? hidden + step_h : hidden;          /* `hidden`, T-1 of them */
    const real *dg_first = reverse ? d_gates + (T - 1) * step_g : d_gates; /* pairs with h0 */
    if (dw_t != NULL && !FL_FN(blas_worth)(gemm, G, H, rows)) {
        memset(dw_t, 0, sizeof(real) * (size_t)H * (size_t)G);
        if (T > 1)
            FL_FN(fl_gemm_naive)(1, 0, H, G, (T - 1) * B, 1, h_from, ld_hidden, dg_from, G, 0,
                                 dw_t, G);
        if (h0) FL_FN(fl_gemm_naive)(1, 0, H, G, B, 1, h0, H, dg_first, G, 1, dw_t, G);
        FL_FN(transpose)(dw_hh, ld_dw_hh, dw_t, G, H, G);
    } else {
        if (T > 1)
            FL_FN(gemm)(gemm, 1, 0, G, H, (T - 1) * B, 1, dg_from, G, h_from, ld_hidden, 0,
                        dw_hh, ld_dw_hh); /* else still zero from the start */
        if (h0) FL_FN(gemm)(gemm, 1, 0, G, H, B, 1, dg_first, G, h0, H, 1, dw_hh, ld_dw_hh);
    }
    return FL_OK;
}
