/*
 * fl_simd.h: the vector type of one ISA path, for `real` = float or double.
 *
 * The kernels are written once on `vreal`, a GCC/clang vector of FL_VBYTES bytes (16 generic
 * and NEON, 32 AVX2, 64 AVX-512), and compiled once per path with that path's instruction set
 * (engine.c, CMakeLists.txt). The width is what the source says, so each path's arithmetic is the
 * same whatever machine runs it; comparisons give lane masks (all ones / zero) and selects are
 * bit operations, so no lane ever branches and the code has nothing left to vectorise.
 */
#include <stdint.h>
#include <string.h>
#if FL_ISA == 2 || FL_ISA == 1
#include <immintrin.h>
#endif

#if FL_DOUBLE
typedef int64_t ireal;
#else
typedef int32_t ireal;
#endif

#define FL_VL ((int)(FL_VBYTES / sizeof(real))) /* lanes of a vector */

/* Unaligned (aligned to one element) so any row may be loaded; may_alias for the punning. */
typedef real vreal __attribute__((vector_size(FL_VBYTES), aligned(sizeof(real)), may_alias));
typedef ireal vint __attribute__((vector_size(FL_VBYTES), aligned(sizeof(real)), may_alias));

#define FL_INLINE static inline __attribute__((always_inline))
#define R(c) ((real)(c)) /* a constant in the element type (vector ops refuse narrowing) */

FL_INLINE vreal v_load(const real *p) { return *(const vreal *)p; }
FL_INLINE void v_store(real *p, vreal v) { *(vreal *)p = v; }
FL_INLINE vreal v_set1(real s)
{
    /* s - (+0) is s for every s, -0.0 included (s + 0 would turn -0.0, the sign mask, into
     * +0.0): a plain broadcast. */
    return s - (vreal){0};
}
FL_INLINE vreal v_zero(void) { return (vreal){0}; }

/* mask ? a : b, lane by lane (mask lanes are all ones or zero). */
FL_INLINE vreal v_sel(vint mask, vreal a, vreal b)
{
    return (vreal)(((vint)a & mask) | ((vint)b & ~mask));
}

FL_INLINE vreal v_abs(vreal x) { return (vreal)((vint)x & ~(vint)v_set1(R(-0.0))); }

/* -|x| (the sign bit set): one bit operation, the same bits as -v_abs(x). */
FL_INLINE vreal v_negabs(vreal x) { return (vreal)((vint)x | (vint)v_set1(R(-0.0))); }

/* Clamps against a constant c, the same bits as the selects they replace, NaN kept:
 * v_minc(c, x) = c < x ? c : x and v_maxc(c, x) = c > x ? c : x (x when unordered). On x86 these
 * are single instructions (minps / maxps return their second operand when either is NaN, which
 * is x here) in place of a compare and a blend: the gate math is bound by the two vector pipes
 * that run both on Zen 1. Elsewhere, the selects. */
#if FL_ISA == 2 && FL_DOUBLE
#define FL_X86_MINMAX(op, c, x) ((vreal)_mm512_##op##_pd(_mm512_set1_pd(c), (__m512d)(x)))
#elif FL_ISA == 2
#define FL_X86_MINMAX(op, c, x) ((vreal)_mm512_##op##_ps(_mm512_set1_ps(c), (__m512)(x)))
#elif FL_ISA == 1 && FL_DOUBLE
#define FL_X86_MINMAX(op, c, x) ((vreal)_mm256_##op##_pd(_mm256_set1_pd(c), (__m256d)(x)))
#elif FL_ISA == 1
#define FL_X86_MINMAX(op, c, x) ((vreal)_mm256_##op##_ps(_mm256_set1_ps(c), (__m256)(x)))
#endif

FL_INLINE vreal v_minc(real c, vreal x)
{
#ifdef FL_X86_MINMAX
    return FL_X86_MINMAX(min, c, x);
#else
    return v_sel(v_set1(c) < x, v_set1(c), x);
#endif
}

FL_INLINE vreal v_maxc(real c, vreal x)
{
#ifdef FL_X86_MINMAX
    return FL_X86_MINMAX(max, c, x);
#else
    return v_sel(v_set1(c) > x, v_set1(c), x);
#endif
}

/* |mag| with the sign of `sign`. */
FL_INLINE vreal v_copysign(vreal mag, vreal sign)
{
    const vint sb = (vint)v_set1(R(-0.0));
    return (vreal)(((vint)mag & ~sb) | ((vint)sign & sb));
}

/* The first n (< FL_VL) lanes of p, the rest zero; and the store of the first n lanes: the
 * ragged ends of rows, computed with the same vector code as every other lane. AVX-512 and
 * AVX2 use masked loads and stores (lanes outside the mask are never touched, so nothing past
 * the row is read); other paths go through a small array. */

FL_INLINE vreal v_load_n(const real *p, int n)
{
#if FL_ISA == 2 && FL_DOUBLE
    return (vreal)_mm512_maskz_loadu_pd((__mmask8)((1u << n) - 1), p);
#elif FL_ISA == 2
    return (vreal)_mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), p);
#elif FL_ISA == 1 && FL_DOUBLE
    const __m256i m = _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
    return (vreal)_mm256_maskload_pd(p, m);
#elif FL_ISA == 1
    const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(n),
                                         _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    return (vreal)_mm256_maskload_ps(p, m);
#else
    real t[FL_VL];
    for (int j = 0; j < FL_VL; j++) t[j] = j < n ? p[j] : 0;
    return v_load(t);
#endif
}

FL_INLINE void v_store_n(real *p, vreal v, int n)
{
#if FL_ISA == 2 && FL_DOUBLE
    _mm512_mask_storeu_pd(p, (__mmask8)((1u << n) - 1), (__m512d)v);
#elif FL_ISA == 2
    _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1), (__m512)v);
#elif FL_ISA == 1 && FL_DOUBLE
    const __m256i m = _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
    _mm256_maskstore_pd(p, m, (__m256d)v);
#elif FL_ISA == 1
    const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(n),
                                         _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    _mm256_maskstore_ps(p, m, (__m256)v);
#else
    real t[FL_VL];
    v_store(t, v);
    /* a constant trip count and a test per lane: unrolled, not a call to memcpy */
    for (int j = 0; j < FL_VL; j++)
        if (j < n) p[j] = t[j];
#endif
}

/* Load / store n lanes, n <= FL_VL, the full vector when n == FL_VL. */
FL_INLINE vreal v_load_upto(const real *p, int n) { return n >= FL_VL ? v_load(p) : v_load_n(p, n); }
FL_INLINE void v_store_upto(real *p, vreal v, int n)
{
    if (n >= FL_VL) v_store(p, v);
    else v_store_n(p, v, n);
}

FL_INLINE real v_hsum(vreal v)
{
    /* Pairwise in a fixed order: the same sum whatever the caller. */
    real t[FL_VL];
    v_store(t, v);
    for (int w = FL_VL / 2; w >= 1; w /= 2)
        for (int j = 0; j < w; j++) t[j] = t[j] + t[j + w];
    return t[0];
}
