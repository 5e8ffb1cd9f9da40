/*
 * fl_gemm.h: the blocked, packed product C (m, n) (+)= op(A) (m, k) @ B (k, n) of one ISA path,
 * and the packing of its B operand.
 *
 * The design is BLIS's: B is packed into column panels of FL_NR = 2 vectors (panel q holds
 * B[:, q NR .. (q+1) NR) as k contiguous rows of NR values, the last panel zero padded), so a
 * register tile of mr rows x 2 vectors streams its B rows contiguously, and k is cut into
 * blocks of kc rows so one panel block (kc x FL_NR values, 16 or 32 KiB) stays in L1 while the
 * row tiles of A pass over it. A is read in place (its rows, or with trans_a its columns: MR
 * consecutive values of one row of the stored matrix), broadcast one value at a time.
 *
 * Every element of C is its starting value (C, zero or a bias row) plus its k products added in
 * the order p = 0 .. k-1, a block of k at a time, whatever the tile, the panel or the thread
 * that computes it: threads split C's rows or panels, never k, so results do not depend on the
 * thread count.
 */

#if FL_VBYTES >= 64
#define FL_MR 12 /* 32 vector registers: 24 accumulators (the most rows a tile takes) */
#else
#define FL_MR 6  /* 16 vector registers: 12 accumulators */
#endif
#define FL_NR (2 * FL_VL)
/* The bytes packed A may take on the stack (gemm_block_panels). */
#define FL_AP_BYTES 49152

/* The blocking a product runs (gemm_blocking): rows of a register tile (mr <= FL_MR), rows of a
 * block of k (kc; kca with trans_a), rows of A a block passes over one panel before the next
 * (mc; mca with trans_a, where that block of A is packed and must fit FL_AP_BYTES), and panels
 * of B a row block takes at a time (ncq). Loop bounds only: the packed B depends on FL_NR alone, and every
 * element sums its products in the same order under every blocking, so the bits are the same.
 *
 * The choice. The 32-byte and 16-byte paths: 6-row tiles, 16 KiB panel blocks, 8 tiles a
 * block, no panel blocks; measured on a Xeon, AVX2, it runs within 5 % of the FMA peak.
 * 64-byte vectors, 48 KiB L1 or more (Intel's AVX-512 cores since Ice Lake, Zen 5): 12-row
 * tiles (24 accumulators), 16 KiB panel blocks, 2 tiles a block (A 12 KiB and the panel
 * block stay in L1 together), 32 panels (512 KiB, in L2) a row block. Measured on a Xeon
 * (48 KiB L1, 2 MiB L2), one thread, float32: 6400x256 @ 256x1024 125 -> 166-182 GFLOP/s,
 * 1600x512 @ 512x4096 110 -> 160, float64 1.2-1.4x, against one block of A over all panels.
 * There, where A is read in place (not trans_a), blocks of k are 64 KiB of panel (512 rows):
 * C is loaded and stored once a block of k, and in dX = dG W_ih (6400 x 256, k = 1024 at S3)
 * a thread's C is 3.2 MiB, more than L2, so each block of k streams it from L3 again. The
 * panel block then outgrows L1, but this L2 feeds two vectors a k step. Measured there, 2
 * threads, float32, the blockings alternating (bench/gemm_blocking.py): S3 dX 236-246 ->
 * 262-288 GFLOP/s, S4 dX (k = 4096) 236-242 -> 262-268, the backward step 64x256x1024 146-152
 * -> 160-161, the S3 forward step 64x1024x256 159-161 -> 168-176, the projections level
 * (0.97-1.05x); float64 S3 dX 118 -> 139. X^T dG (trans_a) keeps 16 KiB: at 64 KiB its packed
 * A block holds fewer rows, and S4's H^T dG ran 241 -> 219.
 * 64-byte vectors, a smaller L1 (32 KiB: Zen 4, Skylake-X): there that blocking reaches 84-86
 * GFLOP/s of a core's 116 (Zen 4, float32), below the 32-byte path's 106-109; 6-row tiles
 * (12 accumulators are enough for two FMA pipes of 4 cycles), 32 KiB panel blocks (k = 256
 * rows), 2 tiles a block and 16 panels a row block run it at 104-108, the 32-byte path's
 * level (fl_gemm_blocking and bench/gemm_blocking.py measure the variants). */
typedef struct {
    int mr, kc, kca, mc, mca, ncq;
} gemm_blk;

static gemm_blk gemm_blocking(const fl_blocking *req)
{
    int mr = FL_MR, kc_bytes = 16384, kca_bytes = 16384, tiles = 8, ncq = 1 << 24;
#if FL_VBYTES >= 64
    tiles = 2;
    ncq = 32;
    kc_bytes = 65536;
    const int l1 = fl_l1d_bytes();
    if (l1 > 0 && l1 < 49152) {
        mr = 6;
        kc_bytes = kca_bytes = 32768;
        ncq = 16;
    }
#endif
    if (req) { /* a test's or tuning run's blocking, each value within what the code allows */
        if (req->mr > 0) mr = req->mr < FL_MR ? req->mr : FL_MR;
        if (req->kc_bytes > 0) kc_bytes = kca_bytes = req->kc_bytes;
        if (req->kca_bytes > 0) kca_bytes = req->kca_bytes;
        if (req->mc_tiles > 0) tiles = req->mc_tiles < 4096 ? req->mc_tiles : 4096;
        if (req->ncq > 0) ncq = req->ncq < (1 << 24) ? req->ncq : 1 << 24;
    }
    gemm_blk b;
    b.mr = mr;
    const int kc_most = FL_AP_BYTES / (mr * (int)sizeof(real)); /* one tile of packed A fits */
    b.kc = kc_bytes / (int)(FL_NR * sizeof(real));
    b.kc = b.kc < 1 ? 1 : b.kc > kc_most ? kc_most : b.kc;
    b.kca = kca_bytes / (int)(FL_NR * sizeof(real));
    b.kca = b.kca < 1 ? 1 : b.kca > kc_most ? kc_most : b.kca;
    b.mc = tiles * mr;
    const int mca_most = FL_AP_BYTES / (b.kca * (int)sizeof(real)) / mr * mr;
    b.mca = b.mc < mca_most ? b.mc : mca_most;
    b.ncq = ncq;
    return b;
}

static void k_gemm_blocking(const fl_blocking *req, int out[5])
{
    const gemm_blk b = gemm_blocking(req);
    out[0] = b.mr;
    out[1] = b.kc;
    out[2] = b.mc;
    out[3] = b.ncq;
    out[4] = b.kca;
}

/* With trans_a, a row tile's A is MR values of each of k rows of the stored matrix, k lines
 * whose addresses are lda apart: at a power-of-two lda they fall into a few L1 sets and evict
 * each other. So each block of A (mca rows x kc) is copied first into tiles of mr contiguous
 * values per k (BLIS's packed A), on the stack: at most FL_AP_BYTES. Measured on the Xeon
 * (one thread): X^T dG products (256x6400 @ 6400x1024, 1024x1600 @ 1600x4096) 1.05-1.16x on
 * AVX-512, 1.10-1.49x on AVX2; the same bits (a copy, the same sums in the same order). */

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
/* n values from src to dst in (masked) vectors: a plain loop of a few values per row became a
 * call to memcpy per row in the packing of A (about 8 % of backward at S2 and S3). */
FL_INLINE void copy_short(real *restrict dst, const real *restrict src, int n)
{
    for (; n > FL_VL; n -= FL_VL, dst += FL_VL, src += FL_VL) v_store(dst, v_load(src));
    if (n > 0) v_store_n(dst, v_load_n(src, n), n);
}

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
        } else if (nr == FL_NR && w == FL_NR) {
            /* whole panels row by row in two vectors (not a call to memmove per row) */
            for (int p = 0; p < k; p++) {
                const real *s = src + (long long)p * ld + j0;
                real *row = panel + (long long)p * nr;
                v_store(row, v_load(s));
                v_store(row + FL_VL, v_load(s + FL_VL));
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
 * row of n values), and the blocking (gemm_blocking). */
typedef struct {
    int m, n, k;
    const real *a; long long lda; int trans_a;
    const real *bp; long long bstride;
    real *c; long long ldc;
    int start; const real *bias;
    gemm_blk bk;
} gemm_args;

/* Rows [i0, i1) x panels [q0, q1) of the product, panels [q0, q1) no wider than bk.ncq. */
static void gemm_block_panels(const gemm_args *g, int i0, int i1, int q0, int q1)
{
    const int k = g->k, MR = g->bk.mr, KC = g->trans_a ? g->bk.kca : g->bk.kc;
    const int mc = g->trans_a ? g->bk.mca : g->bk.mc;
    real ap[FL_AP_BYTES / sizeof(real)]; /* A's block, packed (trans_a only) */
    for (int k0 = 0; k0 < k || k0 == 0; k0 += KC) {
        const int kc = k - k0 < KC ? k - k0 : KC;
        const int start = k0 == 0 ? g->start : C_LOAD;
        for (int ic = i0; ic < i1; ic += mc) {
            const int ie = ic + mc < i1 ? ic + mc : i1;
            /* tile ir's values at ap + (ir - ic) kc, p mr + r; packed again for each panel
             * block (gemm_block), as BLIS does: panel blocks outermost keep B in L2, and a
             * block of A costs 1/(ncq FL_NR) of its products to copy. */
            if (g->trans_a)
                for (int ir = ic; ir < ie; ir += MR) {
                    const int mr = ie - ir < MR ? ie - ir : MR;
                    real *dst = ap + (long long)(ir - ic) * kc;
                    for (int p = 0; p < kc; p++)
                        copy_short(dst + p * mr, g->a + (long long)(k0 + p) * g->lda + ir, mr);
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
                for (int ir = ic; ir < ie; ir += MR) {
                    const int mr = ie - ir < MR ? ie - ir : MR;
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
    const int ncq = g->bk.ncq;
    for (int qb = q0; qb < q1; qb += ncq)
        gemm_block_panels(g, i0, i1, qb, q1 - qb <= ncq ? q1 : qb + ncq);
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
