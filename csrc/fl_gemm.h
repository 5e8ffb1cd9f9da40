/*
 * fl_gemm.h: the blocked, packed product C (m, n) (+)= op(A) (m, k) @ B (k, n) of one ISA path,
 * and the packing of its B operand.
 *
 * The design is BLIS's: B is packed into column panels of FL_NR = 2 vectors (panel q holds
 * B[:, q NR .. (q+1) NR) as k contiguous rows of NR values, the last panel zero padded), so a
 * register tile of FL_MR rows x 2 vectors streams its B rows contiguously, and k is cut into
 * blocks of FL_KC rows so one panel block (FL_KC x FL_NR values, 16 KiB) stays in L1 while the
 * row tiles of A pass over it. A is read in place (its rows, or with trans_a its columns: MR
 * consecutive values of one row of the stored matrix), broadcast one value at a time.
 *
 * Every element of C is its starting value (C, zero or a bias row) plus its k products added in
 * the order p = 0 .. k-1, a block of FL_KC at a time, whatever the tile, the panel or the thread
 * that computes it: threads split C's rows or panels, never k, so results do not depend on the
 * thread count.
 */

#if FL_VBYTES >= 64
#define FL_MR 12 /* 32 vector registers: 24 accumulators */
#else
#define FL_MR 6  /* 16 vector registers: 12 accumulators */
#endif
#define FL_NR (2 * FL_VL)
#define FL_KC (16384 / (int)(FL_NR * sizeof(real)))
/* Rows of A a block of k passes over panel by panel (FL_MC), and panels of B taken at a time
 * (FL_NCQ). With 64-byte vectors a row tile's A is 12 x FL_KC values (6 KiB in float32): at
 * 2 tiles a block, A (12 KiB) and the panel block (16 KiB) stay in L1 together, and 32 panels
 * (512 KiB) stay in L2 while every row block passes over them. Measured on a Xeon with AVX-512
 * (48 KiB L1, 2 MiB L2), one thread, float32: 6400x256 @ 256x1024 125 -> 166-182 GFLOP/s,
 * 1600x512 @ 512x4096 110 -> 160 (the row block alone: 140), float64 1.2-1.4x; 32 or 64 rows
 * (a step's product) unchanged. The 32-byte path, measured on the same machine with 8 tiles a
 * block and no panel blocks, already ran within 5 % of its FMA peak and is left so. */
#if FL_VBYTES >= 64
#define FL_MC (2 * FL_MR)
#define FL_NCQ 32
#else
#define FL_MC (8 * FL_MR)
#define FL_NCQ (1 << 24) /* no panel blocks */
#endif
/* With trans_a, a row tile's A is MR values of each of k rows of the stored matrix, k lines
 * whose addresses are lda apart: at a power-of-two lda they fall into a few L1 sets and evict
 * each other. So each block of A (FL_MCA rows x FL_KC) is copied first into tiles of MR
 * contiguous values per k (BLIS's packed A), on the stack: at most 48 KiB. Measured on the
 * Xeon (one thread): X^T dG products (256x6400 @ 6400x1024, 1024x1600 @ 1600x4096) 1.05-1.16x
 * on AVX-512, 1.10-1.49x on AVX2; the same bits (a copy, the same sums in the same order). */
#define FL_MCA_CAP ((49152 / (FL_KC * (int)sizeof(real))) / FL_MR * FL_MR)
#define FL_MCA (FL_MC < FL_MCA_CAP ? FL_MC : FL_MCA_CAP)

/* How C starts before the products are added. */
enum { C_LOAD = 0, C_ZERO = 1, C_BIAS = 2 };

FL_INLINE long long panels_of(long long n, long long nr) { return (n + nr - 1) / nr; }

/* Values of B (k, n) packed in panels of nr columns. */
FL_INLINE long long packed_panels_size(long long k, long long n, long long nr)
{
    return k * panels_of(n, nr) * nr;
}

/* dst[p ld_dst + j] = src[j ld_src + p] for p < k, j < nj (nj <= VL rows of src into nj
 * columns of dst), and dst's columns [nj, width) zero (width = nj or VL: packing pads its
 * panels). Whole VL x VL blocks go through vectors (VL row loads, VL column stores); the rest
 * value by value. 1.3-1.7x the plain copy of one value at a time (AVX-512, AVX2, generic;
 * 64 Ki values). */
static void transpose_into(real *restrict dst, long long ld_dst, const real *restrict src,
                           long long ld_src, int nj, int k, int width)
{
    int p0 = 0;
    if (nj == FL_VL)
        for (; p0 + FL_VL <= k; p0 += FL_VL) {
            vreal r[FL_VL];
            for (int j = 0; j < FL_VL; j++) r[j] = v_load(src + (long long)j * ld_src + p0);
            for (int p = 0; p < FL_VL; p++) {
                vreal c;
                for (int j = 0; j < FL_VL; j++) c[j] = r[j][p];
                v_store(dst + (long long)(p0 + p) * ld_dst, c);
            }
        }
    for (int p = p0; p < k; p++)
        for (int j = 0; j < width; j++)
            dst[(long long)p * ld_dst + j] = j < nj ? src[(long long)j * ld_src + p] : 0;
}

/* dst <- B (k, n) in panels of nr columns, panels [q0, q1) only, B = src (k, n) rows ld apart,
 * or with trans src (n, k) and B = src^T. Columns past n are zero. */
static void pack_panels(real *restrict dst, const real *restrict src, long long ld, int k, int n,
                        int trans, int nr, int q0, int q1)
{
    for (int q = q0; q < q1; q++) {
        const int j0 = q * nr, w = n - j0 < nr ? n - j0 : nr;
        real *panel = dst + (long long)q * k * nr;
        if (trans) { /* src rows j0 .. j0+w, each contiguous in p; nr is whole vectors */
            for (int jb = 0; jb < nr; jb += FL_VL) {
                const int nj = w - jb < 0 ? 0 : w - jb < FL_VL ? w - jb : FL_VL;
                transpose_into(panel + jb, nr, src + (long long)(j0 + (nj ? jb : 0)) * ld, ld,
                               nj, k, FL_VL);
            }
        } else {
            for (int p = 0; p < k; p++) {
                const real *s = src + (long long)p * ld + j0;
                real *row = panel + (long long)p * nr;
                for (int j = 0; j < w; j++) row[j] = s[j];
                for (int j = w; j < nr; j++) row[j] = 0;
            }
        }
    }
}

/* One register tile: rows [0, mr) x columns [0, w) (w <= FL_NR) of C, k products from
 * bp (k rows of FL_NR). A (mr, k): a[r lda + p], or with trans_a a[p lda + r]. */
FL_INLINE void gemm_tile(const int mr, const int trans_a, int k, const real *restrict a,
                         long long lda, const real *restrict bp, real *restrict c, long long ldc,
                         int w, int start, const real *bias)
{
    vreal acc[FL_MR][2];
    const int w0 = w < FL_VL ? w : FL_VL, w1 = w - FL_VL;
    for (int r = 0; r < mr; r++) {
        if (start == C_ZERO) {
            acc[r][0] = acc[r][1] = v_zero();
        } else if (start == C_BIAS) {
            acc[r][0] = v_load_upto(bias, w0);
            acc[r][1] = w1 > 0 ? v_load_upto(bias + FL_VL, w1) : v_zero();
        } else {
            const real *cr = c + r * ldc;
            acc[r][0] = v_load_upto(cr, w0);
            acc[r][1] = w1 > 0 ? v_load_upto(cr + FL_VL, w1) : v_zero();
        }
    }
    for (int p = 0; p < k; p++) {
        const vreal b0 = v_load(bp + (long long)p * FL_NR);
        const vreal b1 = v_load(bp + (long long)p * FL_NR + FL_VL);
        for (int r = 0; r < mr; r++) {
            const real av = trans_a ? a[(long long)p * lda + r] : a[r * lda + p];
            acc[r][0] += av * b0;
            acc[r][1] += av * b1;
        }
    }
    for (int r = 0; r < mr; r++) {
        real *cr = c + r * ldc;
        v_store_upto(cr, acc[r][0], w0);
        if (w1 > 0) v_store_upto(cr + FL_VL, acc[r][1], w1);
    }
}

/* The tile with mr a constant, so its accumulators live in registers. */
static void gemm_tile_any(int mr, int trans_a, int k, const real *restrict a, long long lda,
                          const real *restrict bp, real *restrict c, long long ldc, int w,
                          int start, const real *bias)
{
#define FL_TILE_CASE(M)                                                                        \
    case M:                                                                                    \
        if (trans_a) gemm_tile(M, 1, k, a, lda, bp, c, ldc, w, start, bias);                   \
        else gemm_tile(M, 0, k, a, lda, bp, c, ldc, w, start, bias);                           \
        break;
    switch (mr) {
        FL_TILE_CASE(1) FL_TILE_CASE(2) FL_TILE_CASE(3) FL_TILE_CASE(4) FL_TILE_CASE(5)
        FL_TILE_CASE(6)
#if FL_MR > 6
        FL_TILE_CASE(7) FL_TILE_CASE(8) FL_TILE_CASE(9) FL_TILE_CASE(10) FL_TILE_CASE(11)
        FL_TILE_CASE(12)
#endif
    default: break;
    }
#undef FL_TILE_CASE
}

/* Rows [0, mr) (mr <= 2) x four panels: at one or two rows a tile of one panel has only two or
 * four independent accumulator chains and waits on the FMA latency; four panels give eight or
 * sixteen. Each element still sums over p in order, as in gemm_tile. bp: panel 0, the others
 * bstride apart; w: the columns of the four panels that exist (up to 4 FL_NR). */
FL_INLINE void gemm_tile_wide(const int mr, int k, const real *restrict a, long long lda,
                              const real *restrict bp, long long bstride, real *restrict c,
                              long long ldc, int w, int start, const real *bias)
{
    vreal acc[2][8];
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < 8; v++) {
            const int wv = w - v * FL_VL;
            const real *src = start == C_BIAS ? bias : c + r * ldc;
            acc[r][v] = wv <= 0 || start == C_ZERO ? v_zero() : v_load_upto(src + v * FL_VL, wv);
        }
    const real *b1 = bp + bstride, *b2 = bp + 2 * bstride, *b3 = bp + 3 * bstride;
    for (int p = 0; p < k; p++) {
        const long long o = (long long)p * FL_NR;
        const vreal v0 = v_load(bp + o), v1 = v_load(bp + o + FL_VL);
        const vreal v2 = v_load(b1 + o), v3 = v_load(b1 + o + FL_VL);
        const vreal v4 = v_load(b2 + o), v5 = v_load(b2 + o + FL_VL);
        const vreal v6 = v_load(b3 + o), v7 = v_load(b3 + o + FL_VL);
        for (int r = 0; r < mr; r++) {
            const real av = a[r * lda + p];
            acc[r][0] += av * v0; acc[r][1] += av * v1; acc[r][2] += av * v2;
            acc[r][3] += av * v3; acc[r][4] += av * v4; acc[r][5] += av * v5;
            acc[r][6] += av * v6; acc[r][7] += av * v7;
        }
    }
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < 8; v++) {
            const int wv = w - v * FL_VL;
            if (wv > 0) v_store_upto(c + r * ldc + v * FL_VL, acc[r][v], wv);
        }
}

/* The operands of one product: A read in place, B packed (panel q at bp + q bstride, its rows
 * k0.. at + k0 FL_NR), C written with a starting value (C_LOAD, C_ZERO, or C_BIAS with a bias
 * row of n values). */
typedef struct {
    int m, n, k;
    const real *a; long long lda; int trans_a;
    const real *bp; long long bstride;
    real *c; long long ldc;
    int start; const real *bias;
} gemm_args;

/* Rows [i0, i1) x panels [q0, q1) of the product, panels [q0, q1) no wider than FL_NCQ. */
static void gemm_block_panels(const gemm_args *g, int i0, int i1, int q0, int q1)
{
    const int k = g->k;
    const int mc = g->trans_a ? FL_MCA : FL_MC;
    real ap[FL_MCA * FL_KC]; /* A's block, packed (trans_a only) */
    for (int k0 = 0; k0 < k || k0 == 0; k0 += FL_KC) {
        const int kc = k - k0 < FL_KC ? k - k0 : FL_KC;
        const int start = k0 == 0 ? g->start : C_LOAD;
        for (int ic = i0; ic < i1; ic += mc) {
            const int ie = ic + mc < i1 ? ic + mc : i1;
            /* tile ir's values at ap + (ir - ic) kc, p mr + r; packed again for each panel
             * block (gemm_block), as BLIS does: panel blocks outermost keep B in L2, and a
             * block of A costs 1/(FL_NCQ FL_NR) of its products to copy. */
            if (g->trans_a)
                for (int ir = ic; ir < ie; ir += FL_MR) {
                    const int mr = ie - ir < FL_MR ? ie - ir : FL_MR;
                    real *dst = ap + (long long)(ir - ic) * kc;
                    for (int p = 0; p < kc; p++) {
                        const real *src = g->a + (long long)(k0 + p) * g->lda + ir;
                        for (int r = 0; r < mr; r++) dst[p * mr + r] = src[r];
                    }
                }
            int q = q0;
            if (ie - ic <= 2 && !g->trans_a) /* one or two rows: four panels a tile */
                for (; q + 4 <= q1; q += 4) {
                    const int j0 = q * FL_NR, w = g->n - j0 < 4 * FL_NR ? g->n - j0 : 4 * FL_NR;
                    const real *bq = g->bp + q * g->bstride + (long long)k0 * FL_NR;
                    const real *ai = g->a + (long long)ic * g->lda + k0;
                    real *cq = g->c + (long long)ic * g->ldc + j0;
                    const real *bias = g->bias ? g->bias + j0 : NULL;
                    if (ie - ic == 1)
                        gemm_tile_wide(1, kc, ai, g->lda, bq, g->bstride, cq, g->ldc, w, start, bias);
                    else
                        gemm_tile_wide(2, kc, ai, g->lda, bq, g->bstride, cq, g->ldc, w, start, bias);
                }
            for (; q < q1; q++) {
                const int j0 = q * FL_NR, w = g->n - j0 < FL_NR ? g->n - j0 : FL_NR;
                const real *bq = g->bp + q * g->bstride + (long long)k0 * FL_NR;
                for (int ir = ic; ir < ie; ir += FL_MR) {
                    const int mr = ie - ir < FL_MR ? ie - ir : FL_MR;
                    const real *ai = g->trans_a ? ap + (long long)(ir - ic) * kc
                                                : g->a + (long long)ir * g->lda + k0;
                    gemm_tile_any(mr, g->trans_a, kc, ai, g->trans_a ? mr : g->lda, bq,
                                  g->c + (long long)ir * g->ldc + j0, g->ldc, w, start,
                                  g->bias ? g->bias + j0 : NULL);
                }
            }
        }
        if (k == 0) break;
    }
}

/* Rows [i0, i1) x panels [q0, q1) of the product. */
static void gemm_block(const gemm_args *g, int i0, int i1, int q0, int q1)
{
    if (i0 >= i1) return;
    for (int qb = q0; qb < q1; qb += FL_NCQ)
        gemm_block_panels(g, i0, i1, qb, q1 - qb < FL_NCQ ? q1 : qb + FL_NCQ);
}

/* [lo, hi) of n items for part `tid` of `nt`, in whole chunks of `unit` items. */
FL_INLINE void split_range(int n, int unit, int nt, int tid, int *lo, int *hi)
{
    const int chunks = (n + unit - 1) / unit;
    const int c0 = (int)((long long)chunks * tid / nt), c1 = (int)((long long)chunks * (tid + 1) / nt);
    *lo = c0 * unit < n ? c0 * unit : n;
    *hi = c1 * unit < n ? c1 * unit : n;
}

/* Part `tid` of `nt` of a product: panels split when there are enough of them, else rows. */
static void gemm_part(const gemm_args *g, int nt, int tid)
{
    const int np = (int)panels_of(g->n, FL_NR);
    if (nt <= 1) {
        gemm_block(g, 0, g->m, 0, np);
    } else if (np >= 2 * nt || g->m < 2 * FL_MR * nt) {
        int q0, q1;
        split_range(np, 1, nt, tid, &q0, &q1);
        gemm_block(g, 0, g->m, q0, q1);
    } else {
        int i0, i1;
        split_range(g->m, FL_MR, nt, tid, &i0, &i1);
        gemm_block(g, i0, i1, 0, np);
    }
}

/* C (m, n) (+)= A (m, k) @ B^T where B^T (n, k) has contiguous rows, for n too narrow for a
 * panel (a few input features): one dot product per element, vectorised over k, lanes summed
 * pairwise. Rows [i0, i1). start: C_LOAD adds to C, C_ZERO overwrites. */
static void gemm_dot_rows(int i0, int i1, int n, int k, const real *restrict a, long long lda,
                          const real *restrict bt, long long ldbt, real *restrict c,
                          long long ldc, int start)
{
    for (int i = i0; i < i1; i++) {
        const real *ai = a + (long long)i * lda;
        for (int j = 0; j < n; j++) {
            const real *bj = bt + (long long)j * ldbt;
            vreal s0 = v_zero(), s1 = v_zero();
            int p = 0;
            for (; p + 2 * FL_VL <= k; p += 2 * FL_VL) {
                s0 += v_load(ai + p) * v_load(bj + p);
                s1 += v_load(ai + p + FL_VL) * v_load(bj + p + FL_VL);
            }
            for (; p < k; p += FL_VL) {
                const int w = k - p < FL_VL ? k - p : FL_VL;
                s0 += v_load_upto(ai + p, w) * v_load_upto(bj + p, w);
            }
            const real v = v_hsum(s0 + s1);
            real *cij = c + (long long)i * ldc + j;
            *cij = start == C_LOAD ? *cij + v : v;
        }
    }
}
