/*
 * fl_seq.h: one layer and direction over a whole sequence, forward and backward, and the
 * packing of its weights, on one ISA path.
 *
 * Forward: the input projection of every step is one product before the time loop
 * (gates (T*B, G) = x W_ih^T + bias); each step then adds h_{t-1} W_hh^T and runs the gate math
 * on the registers of that product (fwd_tile), so a step reads its weights once and its
 * preactivations never make a round trip through memory. W_hh^T is packed unit-interleaved for
 * this: block u of the packed matrix holds, for VL hidden units, their i, f, g and o columns
 * side by side, so one register tile holds all four gates of its units (the unit-block step,
 * FL_STEP_TILE: what the units split needs, each thread owning the gates of its units). With
 * the batch split or one thread a step is instead one blocked product over gate-major panels
 * of W_hh^T (fl_gemm.h's tiles) and then a gate pass over the step's rows (FL_STEP_PANELS):
 * bigger register tiles, and gate math without the accumulators' register pressure. Both add
 * each preactivation's products in the same order: the same bits.
 *
 * Backward, in reverse: the gate math of step t (bwd_gates) gives dG_t; dh_{t-1} = dG_t W_hh is
 * one product (on W_hh packed in panels over the units); after the loop, dX = dG W_ih, and the
 * weight gradients dW_ih^T = X^T dG, dW_hh^T = H_prev^T dG are single products over all steps
 * (dG packed once), transposed into place.
 *
 * Threads: one OpenMP team per call. The projection and the after-loop products split their
 * output panels or rows. The recurrence splits by batch rows when each thread gets enough of
 * them (each carries its rows through every step: no barrier) or by hidden units (a thread owns
 * the four gates of its units, so its gate math needs nothing from the others: one barrier per
 * step, after which everyone reads the whole h_t). Nothing is ever summed across threads.
 */

#ifdef _OPENMP
#include <omp.h>
#define FL_BARRIER() _Pragma("omp barrier")
FL_INLINE double fl_now(void) { return omp_get_wtime(); }
#else
#define FL_BARRIER() ((void)0)
FL_INLINE double fl_now(void) { return 0; }
#endif

FL_INLINE void stats_begin(const fl_exec *ex, int team, double *t0)
{
    *t0 = fl_now();
    if (ex->stats) {
        ex->stats->team = team;
        ex->stats->wall_seconds = 0;
    }
}

FL_INLINE void stats_end(const fl_exec *ex, double t0)
{
    if (ex->stats) ex->stats->wall_seconds = fl_now() - t0;
}

#if FL_VBYTES >= 64
#define FL_MRF 6 /* forward tile: 6 rows x 4 gate vectors = 24 accumulators */
#else
#define FL_MRF 3 /* 12 accumulators */
#endif
#define FL_NRF (4 * FL_VL)                                  /* a unit block's four gates */
#define FL_KCF (16384 / (int)(FL_NRF * sizeof(real)))       /* 16 KiB of packed W_hh^T */

/* Below this many multiply-adds a call runs on one thread: waking a team costs more. */
#define FL_PAR_MIN_MACS (1LL << 18)
/* A batch split needs this many rows per thread to keep the product efficient ... */
#define FL_BATCH_MIN_ROWS 8
/* ... and W_hh^T no larger than this (beyond it, each thread streaming all of it every step
 * costs more than a barrier per step). */
#define FL_BATCH_MAX_BYTES (4LL << 20)
/* A call split by batch rows and this long keeps its whole team when others' threads leave no
 * core free (make_plan): measured on 2 cores with two busy processes beside it (float32,
 * T x 64 x 256 x 256), two threads against one took 12.1 / 9.9 ms at T = 10 (0.34 G
 * multiply-adds), 27 / 32 ms at T = 30 (1.0 G), 88 / 118 ms at T = 100; with one busy process
 * (a core free) 84 / 79 ms at T = 100, so there the team is cut. */
#define FL_SHARE_MIN_MACS 1000000000LL

/* ------------------------------------------------------------------------------------------ */
/* Packed weights                                                                             */
/* ------------------------------------------------------------------------------------------ */

/* dX = dG W_ih on panels of W_ih (G, I) when there are enough inputs for a panel, else as
 * dot products with the rows of W_ih^T (I, G). */
FL_INLINE int dx_on_panels(int I) { return I >= FL_VL; }

typedef struct {
    long long wx, uf, ub, wd, up, total; /* offsets of the parts, and the size */
} packed_layout;

static packed_layout packed_layout_of(int I, int H)
{
    const long long G = 4LL * H, nub = panels_of(H, FL_VL);
    packed_layout l;
    l.wx = 0;                                                 /* W_ih^T (I, G) panels */
    l.uf = l.wx + packed_panels_size(I, G, FL_NR);            /* W_hh^T unit-interleaved */
    l.ub = l.uf + nub * H * FL_NRF;                           /* W_hh (G, H) panels */
    l.wd = l.ub + packed_panels_size(G, H, FL_NR);            /* W_ih for dX */
    l.up = l.wd + (dx_on_panels(I) ? packed_panels_size(G, I, FL_NR) : (long long)I * G);
    l.total = l.up + packed_panels_size(H, G, FL_NR);         /* W_hh^T panels */
    return l;
}

/* dst <- W (G, k) rows ld apart, transposed into unit blocks of the forward tile: block ub
 * holds [p][q][j] = W[q H + ub VL + j][p] (k rows of the four gates' VL units, zero past H),
 * VL rows of W at a time through vectors (transpose_into). */
static void pack_unit_blocks(real *dst, const real *w, long long ld, int k, int H, int nub)
{
    for (int ub = 0; ub < nub; ub++) {
        real *blk = dst + (long long)ub * k * FL_NRF;
        const int u0 = ub * FL_VL, nj = H - u0 < FL_VL ? H - u0 : FL_VL;
        for (int q = 0; q < 4; q++)
            transpose_into(blk + q * FL_VL, FL_NRF, w + (long long)(q * H + u0) * ld, ld, nj, k,
                           FL_VL);
    }
}

static long long k_packed_size(int I, int H)
{
    return I < 1 || H < 1 ? -1 : packed_layout_of(I, H).total;
}

static fl_status k_pack_weights(real *packed, const FL_FN(fl_weights) *w, int I, int H,
                                int parts)
{
    if (!packed || !w || !w->w_ih || !w->w_hh || I < 1 || H < 1 || w->ld_ih < I ||
        w->ld_hh < H || parts & ~FL_PACK_ALL)
        return FL_ERR_ARG;
    const int G = 4 * H, nub = (int)panels_of(H, FL_VL);
    const packed_layout l = packed_layout_of(I, H);
    if (parts & FL_PACK_WX)
        pack_panels(packed + l.wx, w->w_ih, w->ld_ih, I, G, 1, FL_NR, 0, (int)panels_of(G, FL_NR));
    if (parts & FL_PACK_UF) pack_unit_blocks(packed + l.uf, w->w_hh, w->ld_hh, H, H, nub);
    if (parts & FL_PACK_UP)
        pack_panels(packed + l.up, w->w_hh, w->ld_hh, H, G, 1, FL_NR, 0, (int)panels_of(G, FL_NR));
    if (parts & FL_PACK_UB)
        pack_panels(packed + l.ub, w->w_hh, w->ld_hh, G, H, 0, FL_NR, 0, (int)panels_of(H, FL_NR));
    if (!(parts & FL_PACK_WD)) return FL_OK;
    if (dx_on_panels(I)) {
        pack_panels(packed + l.wd, w->w_ih, w->ld_ih, G, I, 0, FL_NR, 0, (int)panels_of(I, FL_NR));
    } else {
        real *wt = packed + l.wd;
        for (int i = 0; i < I; i++)
            for (int g = 0; g < G; g++) wt[(long long)i * G + g] = w->w_ih[(long long)g * w->ld_ih + i];
    }
    return FL_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Steps: where each step's rows lie (fl_steps)                                               */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    const int *bs;              /* rows per step, or NULL: B */
    const unsigned char *reset; /* per row of the layout, or NULL */
    int T, B, carried, rev;
    long long total;            /* rows over all steps */
} steps_view;

/* The view of a call's steps; 0 when fl_steps is inconsistent (batch sizes rising, above B or
 * negative, carried outside [0, B]). */
static int steps_view_of(steps_view *v, const fl_steps *st, int T, int B, int rev)
{
    v->bs = st ? st->batch_sizes : NULL;
    v->reset = st ? st->reset : NULL;
    v->T = T; v->B = B; v->rev = rev;
    v->carried = st ? st->carried : B;
    v->total = (long long)T * B;
    if (v->carried < 0 || v->carried > B) return 0;
    if (v->bs) {
        v->total = 0;
        for (int t = 0; t < T; t++) {
            if (v->bs[t] < 0 || v->bs[t] > (t ? v->bs[t - 1] : B)) return 0;
            v->total += v->bs[t];
        }
    }
    return 1;
}

FL_INLINE int rows_at(const steps_view *v, int t) { return v->bs ? v->bs[t] : v->B; }

/* Step s of the processing order (s = 0 is the first step processed: t = 0, or T - 1 for the
 * reverse direction): its time, rows and first row, and those of the step processed before it
 * (at s = 0, the carried rows and no offset). */
typedef struct {
    int s, t, n, n_before;
    long long off, off_before;
} step_pos;

static void step_fill_before(const steps_view *v, step_pos *p)
{
    if (p->s == 0) {
        p->n_before = v->carried;
        p->off_before = -1;
        return;
    }
    const int tb = v->rev ? p->t + 1 : p->t - 1;
    p->n_before = rows_at(v, tb);
    p->off_before = v->rev ? p->off + p->n : p->off - p->n_before;
}

static step_pos step_first(const steps_view *v)
{
    step_pos p;
    p.s = 0;
    p.t = v->rev ? v->T - 1 : 0;
    p.n = rows_at(v, p.t);
    p.off = v->rev ? v->total - p.n : 0;
    step_fill_before(v, &p);
    return p;
}

static step_pos step_last(const steps_view *v)
{
    step_pos p;
    p.s = v->T - 1;
    p.t = v->rev ? 0 : v->T - 1;
    p.n = rows_at(v, p.t);
    p.off = v->rev ? 0 : v->total - p.n;
    step_fill_before(v, &p);
    return p;
}

static step_pos step_next(const steps_view *v, const step_pos *q)
{
    step_pos p;
    p.s = q->s + 1;
    p.t = v->rev ? q->t - 1 : q->t + 1;
    p.n = rows_at(v, p.t);
    p.off = v->rev ? q->off - p.n : q->off + q->n;
    p.n_before = q->n;
    p.off_before = q->off;
    return p;
}

static step_pos step_prev(const steps_view *v, const step_pos *q)
{
    step_pos p;
    p.s = q->s - 1;
    p.t = v->rev ? q->t + 1 : q->t - 1;
    p.n = q->n_before;
    p.off = q->off_before;
    step_fill_before(v, &p);
    return p;
}

/* Whether row r of the step at p takes the initial state (h_init, c_init) rather than the state
 * of the step processed before it. */
FL_INLINE int from_init(const steps_view *v, const step_pos *p, int r)
{
    return r >= p->n_before || (v->reset && v->reset[p->off + r]);
}

/* The rows a sequence runs (with batch sizes non-increasing: the steps with more than r rows). */
static int row_length(const steps_view *v, int r)
{
    if (!v->bs) return v->T;
    int lo = 0, hi = v->T; /* the first t with bs[t] <= r */
    while (lo < hi) {
        const int mid = (lo + hi) / 2;
        if (v->bs[mid] > r) lo = mid + 1; else hi = mid;
    }
    return lo;
}

/* ------------------------------------------------------------------------------------------ */
/* Threads                                                                                    */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    int threads; /* team size */
    int split;   /* FL_SPLIT_BATCH, FL_SPLIT_UNITS or FL_SPLIT_SERIAL for the recurrence */
} plan;

/* The recurrence's split for a team of n (FL_SPLIT_AUTO). */
static int auto_split(const fl_dims *d, int n, int unit_blocks)
{
    const long long w_bytes = (long long)sizeof(real) * 4 * d->H * d->H;
    if (n <= 1) return FL_SPLIT_SERIAL;
    if (d->B >= FL_BATCH_MIN_ROWS * n && w_bytes <= FL_BATCH_MAX_BYTES) return FL_SPLIT_BATCH;
    if (unit_blocks >= n) return FL_SPLIT_UNITS;
    if (d->B >= n) return FL_SPLIT_BATCH;
    return FL_SPLIT_SERIAL;
}

static plan make_plan(const fl_exec *ex, const fl_dims *d, long long rows, int unit_blocks)
{
    plan p;
    const long long macs = rows * 4 * d->H * ((long long)d->I + d->H);
    p.threads = ex->threads < 1 ? 1 : ex->threads;
#ifndef _OPENMP
    p.threads = 1;
#endif
    if (ex->split == FL_SPLIT_AUTO && macs < FL_PAR_MIN_MACS) p.threads = 1;
    /* At most the cores other runnable threads leave free (cores.c); when they leave none, a
     * long call split by batch rows keeps its team (no barrier between its steps: over many
     * time slices the team's fair share of the busy cores beats one thread's). Forced splits
     * run as asked. */
    if (ex->split == FL_SPLIT_AUTO && !ex->fixed_team && p.threads > 1)
        p.threads = fl_team_for(p.threads, macs >= FL_SHARE_MIN_MACS &&
                                               auto_split(d, p.threads, unit_blocks) ==
                                                   FL_SPLIT_BATCH);
    if (p.threads == 1) {
        p.split = FL_SPLIT_SERIAL;
        return p;
    }
    p.split = ex->split == FL_SPLIT_AUTO ? auto_split(d, p.threads, unit_blocks) : ex->split;
    return p;
}

FL_INLINE int team_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* The rows and the unit blocks (of `unit` units) one thread works on in the recurrence. */
static void recurrence_share(const plan *p, const steps_view *v, int tid, int B, int nblocks,
                             int *r0, int *r1, int *b0, int *b1)
{
    *r0 = 0; *r1 = B; *b0 = 0; *b1 = nblocks;
    if (p->split == FL_SPLIT_BATCH && v->bs) {
        /* rows of different lengths: equal shares of the rows' steps, not of the rows */
        long long acc = 0;
        const long long lo = v->total * tid / p->threads, hi = v->total * (tid + 1) / p->threads;
        *r0 = *r1 = -1;
        for (int r = 0; r < B; r++) {
            if (*r0 < 0 && acc >= lo) *r0 = r;
            if (*r1 < 0 && acc >= hi && tid + 1 < p->threads) *r1 = r;
            acc += row_length(v, r);
        }
        if (*r0 < 0) *r0 = B;
        if (*r1 < 0) *r1 = B;
        if (*r1 < *r0) *r1 = *r0;
    } else if (p->split == FL_SPLIT_BATCH) {
        split_range(B, 1, p->threads, tid, r0, r1);
    } else if (p->split == FL_SPLIT_UNITS) {
        split_range(nblocks, 1, p->threads, tid, b0, b1);
    } else if (tid != 0) {
        *r1 = 0; /* serial: thread 0 does it all */
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Forward                                                                                    */
/* ------------------------------------------------------------------------------------------ */

/* Rows [0, mr) of one step x one unit block (VL units at u0, n of them real): the product
 * h_prev (mr, kc) @ packed W_hh^T rows (kc, 4 VL) added to the preactivations in g (rows G
 * apart, gate q at q H + u0), which hold partial sums between k blocks; after the last block the
 * gate math on the registers: the activated gates back into g when keep, c_t into c_out and h_t
 * into h_out. c_prev may alias c_out (inference updates the state in place). */
FL_INLINE void fwd_tile(const int mr, int kc, const real *restrict a, long long lda,
                        const real *restrict bp, real *g, int G, int H, int u0, int n, int last,
                        const real *c_prev, real *c_out, real *h_out, long long ld_h, int keep,
                        const cellcfg *cf)
{
    vreal acc[FL_MRF][4];
    for (int r = 0; r < mr; r++)
        for (int q = 0; q < 4; q++) acc[r][q] = v_load_upto(g + (long long)r * G + q * H + u0, n);
    for (int p = 0; p < kc; p++) {
        const real *b = bp + (long long)p * FL_NRF;
        const vreal b0 = v_load(b), b1 = v_load(b + FL_VL);
        const vreal b2 = v_load(b + 2 * FL_VL), b3 = v_load(b + 3 * FL_VL);
        for (int r = 0; r < mr; r++) {
            const real av = a[r * lda + p];
            acc[r][0] += av * b0;
            acc[r][1] += av * b1;
            acc[r][2] += av * b2;
            acc[r][3] += av * b3;
        }
    }
    if (!last) {
        for (int r = 0; r < mr; r++)
            for (int q = 0; q < 4; q++)
                v_store_upto(g + (long long)r * G + q * H + u0, acc[r][q], n);
        return;
    }
    for (int r = 0; r < mr; r++) {
        vreal c = c_prev ? v_load_upto(c_prev + (long long)r * H + u0, n) : v_zero();
        const vreal h = cell_forward(&acc[r][0], &acc[r][1], &acc[r][2], &acc[r][3], &c, cf, u0, n);
        if (keep)
            for (int q = 0; q < 4; q++)
                v_store_upto(g + (long long)r * G + q * H + u0, acc[r][q], n);
        v_store_upto(c_out + (long long)r * H + u0, c, n);
        v_store_upto(h_out + (long long)r * ld_h + u0, h, n);
    }
}

static void fwd_tile_any(int mr, int kc, const real *a, long long lda, const real *bp, real *g,
                         int G, int H, int u0, int n, int last, const real *c_prev, real *c_out,
                         real *h_out, long long ld_h, int keep, const cellcfg *cf)
{
#define FL_FWD_CASE(M)                                                                         \
    case M:                                                                                    \
        fwd_tile(M, kc, a, lda, bp, g, G, H, u0, n, last, c_prev, c_out, h_out, ld_h, keep, cf); \
        break;
    switch (mr) {
        FL_FWD_CASE(1) FL_FWD_CASE(2) FL_FWD_CASE(3)
#if FL_MRF > 3
        FL_FWD_CASE(4) FL_FWD_CASE(5) FL_FWD_CASE(6)
#endif
    default: break;
    }
#undef FL_FWD_CASE
}

/* One row x two unit blocks (u0 and u0 + VL; n1 units of the second are real, 0 < n1 <= VL):
 * fwd_tile's work for a batch of one, where a single block's four accumulator chains wait on
 * the multiply-add latency and two blocks give eight (measured on AVX2, S5 = T 1000, I 64, H 128,
 * batch 1, two threads: 5.2 ms against 5.6). Each element sums over p in order, as in fwd_tile.
 * bp, bp1: the two blocks' packed rows. */
FL_INLINE void fwd_tile_pair(int kc, const real *restrict a, const real *restrict bp,
                             const real *restrict bp1, real *g, int H, int u0, int n1, int last,
                             const real *c_prev, real *c_out, real *h_out, int keep,
                             const cellcfg *cf)
{
    vreal acc[2][4];
    for (int b = 0; b < 2; b++)
        for (int q = 0; q < 4; q++)
            acc[b][q] = v_load_upto(g + q * H + u0 + b * FL_VL, b ? n1 : FL_VL);
    for (int p = 0; p < kc; p++) {
        const real *x = bp + (long long)p * FL_NRF, *y = bp1 + (long long)p * FL_NRF;
        const real av = a[p];
        acc[0][0] += av * v_load(x);
        acc[0][1] += av * v_load(x + FL_VL);
        acc[0][2] += av * v_load(x + 2 * FL_VL);
        acc[0][3] += av * v_load(x + 3 * FL_VL);
        acc[1][0] += av * v_load(y);
        acc[1][1] += av * v_load(y + FL_VL);
        acc[1][2] += av * v_load(y + 2 * FL_VL);
        acc[1][3] += av * v_load(y + 3 * FL_VL);
    }
    for (int b = 0; b < 2; b++) {
        const int u = u0 + b * FL_VL, n = b ? n1 : FL_VL;
        if (!last) {
            for (int q = 0; q < 4; q++) v_store_upto(g + q * H + u, acc[b][q], n);
            continue;
        }
        vreal c = c_prev ? v_load_upto(c_prev + u, n) : v_zero();
        const vreal h = cell_forward(&acc[b][0], &acc[b][1], &acc[b][2], &acc[b][3], &c, cf, u, n);
        if (keep)
            for (int q = 0; q < 4; q++) v_store_upto(g + q * H + u, acc[b][q], n);
        v_store_upto(c_out + u, c, n);
        v_store_upto(h_out + u, h, n);
    }
}

/* What every forward step of a call shares: W_hh^T unit-interleaved (uf, the unit-block step)
 * and in gate-major panels (up, the panel step). */
typedef struct {
    int H;
    const real *uf, *up;
    long long ld_h;
    int keep;
    const cellcfg *cf;
    gemm_blk bk; /* the product's blocking */
} fwd_call;

/* Vectors of units the plain gate pass takes at a time (its scratch: 4 of them, 1 KiB on AVX2). */
#define FL_GP_CHUNK 8

/* The gate pass of rows [r0, r1) and units [u0, u1) of one step: the preactivations in g_t (rows G
 * apart) in, the activated gates back into g_t when keep, c_t and h_t out; c_prev NULL means
 * zeros, and may alias c_t (inference updates the state in place).
 *
 * The plain cell (tanh, exact sigmoid, no ONNX extras) runs in short loops over a chunk of up to
 * FL_GP_CHUNK vectors of units: the exponentials of each sigmoid gate, the shared division, the
 * candidate's tanh, then c_t and h_t, each loop's values kept in a small scratch. Written as one
 * body per vector (or two, interleaved), the gate math is one long dependency chain of about a
 * hundred vector operations; a core whose reorder window holds less than one such body (Zen 1
 * counts a 256-bit operation twice) then waits on the latencies, where short independent
 * iterations keep its vector pipes busy. Measured on an AVX2 AMD EPYC Zen 1, one thread: a C
 * harness alternating both over (16, 64) and (32, 128) rows x units, 72 against 84-86 ns per 8
 * units (the clamps as min/max in both); in the layer, the gate pass's share of S2 inference
 * 22 -> 20 % of the samples, whole calls 0.99-1.05x (S2, S3, alternating in one process: within
 * the machine's noise). Every element takes the same operations as cell_plain: the same bits
 * (outputs and gradients compared byte for byte with the previous build on avx2 and generic). */
static void gate_pass(const fwd_call *fc, int r0, int r1, int u0, int u1, real *g_t,
                      const real *c_prev, real *c_t, real *h_t)
{
    const int H = fc->H, G = 4 * H;
    const int plain = cell_is_plain(fc->cf);
    vreal si[FL_GP_CHUNK], sf[FL_GP_CHUNK], so[FL_GP_CHUNK], sz[FL_GP_CHUNK];
    for (int r = r0; r < r1; r++) {
        real *g = g_t + (long long)r * G;
        const real *cp = c_prev ? c_prev + (long long)r * H : NULL;
        real *cr = c_t + (long long)r * H, *hr = h_t + r * fc->ld_h;
        int u = u0;
        if (plain)
            for (; u + FL_VL <= u1;) {
                const int nv = (u1 - u) / FL_VL < FL_GP_CHUNK ? (u1 - u) / FL_VL : FL_GP_CHUNK;
                real *gi = g + u, *gf = g + H + u, *gz = g + 2 * H + u, *go = g + 3 * H + u;
                for (int j = 0; j < nv; j++) si[j] = v_sigmoid_e(v_load(gi + j * FL_VL));
                for (int j = 0; j < nv; j++) sf[j] = v_sigmoid_e(v_load(gf + j * FL_VL));
                for (int j = 0; j < nv; j++) so[j] = v_sigmoid_e(v_load(go + j * FL_VL));
                for (int j = 0; j < nv; j++)
                    v_sigmoid3_from(v_load(gi + j * FL_VL), v_load(gf + j * FL_VL),
                                    v_load(go + j * FL_VL), si[j], sf[j], so[j], &si[j], &sf[j],
                                    &so[j]);
                for (int j = 0; j < nv; j++) sz[j] = v_tanh(v_load(gz + j * FL_VL));
                for (int j = 0; j < nv; j++) {
                    const int k = u + j * FL_VL;
                    vreal c = cp ? v_load(cp + k) : v_zero();
                    const vreal h = cell_plain_update(si[j], sf[j], sz[j], so[j], &c);
                    if (fc->keep) {
                        v_store(gi + j * FL_VL, si[j]); v_store(gf + j * FL_VL, sf[j]);
                        v_store(gz + j * FL_VL, sz[j]); v_store(go + j * FL_VL, so[j]);
                    }
                    v_store(cr + k, c);
                    v_store(hr + k, h);
                }
                u += nv * FL_VL;
            }
        for (; u < u1; u += FL_VL) {
            const int n = u1 - u < FL_VL ? u1 - u : FL_VL;
            vreal a0 = v_load_upto(g + u, n), f0 = v_load_upto(g + H + u, n);
            vreal c0 = v_load_upto(g + 2 * H + u, n), o0 = v_load_upto(g + 3 * H + u, n);
            vreal s0 = cp ? v_load_upto(cp + u, n) : v_zero();
            const vreal h0 = cell_forward(&a0, &f0, &c0, &o0, &s0, fc->cf, u, n);
            if (fc->keep) {
                v_store_upto(g + u, a0, n); v_store_upto(g + H + u, f0, n);
                v_store_upto(g + 2 * H + u, c0, n); v_store_upto(g + 3 * H + u, o0, n);
            }
            v_store_upto(cr + u, s0, n);
            v_store_upto(hr + u, h0, n);
        }
    }
}

/* The unit-block step for rows [r0, r1) and unit blocks [b0, b1); h_prev NULL for a zero
 * h_{t-1} (the gate math alone). */
static void fwd_step(const fwd_call *fc, int r0, int r1, int b0, int b1, const real *h_prev,
                     long long ld_prev, real *g_t, const real *c_prev, real *c_t, real *h_t)
{
    const int H = fc->H, G = 4 * H;
    const int k_total = h_prev ? H : 0;
    for (int ub = b0; ub < b1; ub++) {
        const int u0 = ub * FL_VL, n = H - u0 < FL_VL ? H - u0 : FL_VL;
        const real *panel = fc->uf + (long long)ub * H * FL_NRF;
        if (r1 - r0 == 1 && ub + 1 < b1) { /* one row: two unit blocks a tile */
            const int n1 = H - u0 - FL_VL < FL_VL ? H - u0 - FL_VL : FL_VL;
            for (int k0 = 0; k0 < k_total || k0 == 0; k0 += FL_KCF) {
                const int kc = k_total - k0 < FL_KCF ? k_total - k0 : FL_KCF;
                fwd_tile_pair(kc, h_prev ? h_prev + r0 * ld_prev + k0 : NULL,
                              panel + (long long)k0 * FL_NRF,
                              panel + (long long)H * FL_NRF + (long long)k0 * FL_NRF,
                              g_t + (long long)r0 * G, H, u0, n1, k0 + kc >= k_total,
                              c_prev ? c_prev + (long long)r0 * H : NULL, c_t + (long long)r0 * H,
                              h_t + r0 * fc->ld_h, fc->keep, fc->cf);
                if (k_total == 0) break;
            }
            ub++;
            continue;
        }
        for (int k0 = 0; k0 < k_total || k0 == 0; k0 += FL_KCF) {
            const int kc = k_total - k0 < FL_KCF ? k_total - k0 : FL_KCF;
            const int last = k0 + kc >= k_total;
            for (int r = r0; r < r1; r += FL_MRF) {
                const int mr = r1 - r < FL_MRF ? r1 - r : FL_MRF;
                fwd_tile_any(mr, kc, h_prev ? h_prev + r * ld_prev + k0 : NULL, ld_prev,
                             panel + (long long)k0 * FL_NRF, g_t + (long long)r * G, G, H, u0, n,
                             last, c_prev ? c_prev + (long long)r * H : NULL,
                             c_t + (long long)r * H, h_t + r * fc->ld_h, fc->ld_h, fc->keep,
                             fc->cf);
            }
            if (k_total == 0) break;
        }
    }
}

/* The panel step for rows [r0, r1) and units [u0, u1) of one step: g_t (rows G apart, holding
 * the projection) += h_prev W_hh^T as a blocked product over the gate-major panels of W_hh^T
 * (fl_gemm.h's register tiles: FL_MR rows x 2 vectors, or one or two rows x four panels), then
 * the gate pass. All units: one product over every panel. Fewer (the units split): the four
 * gates' panels of those units, which requires whole panels (units_on_panels). h_prev NULL: a
 * zero h_{t-1}, no product. */
static void fwd_panels(const fwd_call *fc, int r0, int r1, int u0, int u1, const real *h_prev,
                       long long ld_prev, real *g_t, const real *c_prev, real *c_t, real *h_t)
{
    const int H = fc->H, G = 4 * H;
    if (h_prev) {
        const gemm_args rec = {r1, G, H, h_prev, ld_prev, 0, fc->up, (long long)H * FL_NR, g_t, G,
                               C_LOAD, NULL, fc->bk};
        if (u0 == 0 && u1 == H)
            gemm_block(&rec, r0, r1, 0, (int)panels_of(G, FL_NR));
        else
            for (int q = 0; q < 4; q++)
                gemm_block(&rec, r0, r1, (q * H + u0) / FL_NR, (q * H + u1) / FL_NR);
    }
    gate_pass(fc, r0, r1, u0, u1, g_t, c_prev, c_t, h_t);
}

/* One forward step for rows [lo, hi) and units [u0, u1) of the step at p, the panel step or
 * the unit-block step (u0, u1 then whole unit blocks, or u1 = H), each run of rows on its own
 * state: the step processed before (h_prev, c_prev) or the initial state (h_init, c_init). */
static void fwd_rows(const fwd_call *fc, int panels, const steps_view *v, const step_pos *p,
                     int lo, int hi, int u0, int u1, const real *h_prev, long long ld_prev,
                     const real *c_prev, const real *h_init, const real *c_init, real *g_t,
                     real *c_t, real *h_t)
{
    for (int r = lo; r < hi;) {
        const int init = from_init(v, p, r);
        int e = r + 1;
        while (e < hi && from_init(v, p, e) == init) e++;
        const real *hp = init ? h_init : h_prev, *cp = init ? c_init : c_prev;
        const long long ld = init ? fc->H : ld_prev;
        if (panels)
            fwd_panels(fc, r, e, u0, u1, hp, ld, g_t, cp, c_t, h_t);
        else
            fwd_step(fc, r, e, u0 / FL_VL, (u1 + FL_VL - 1) / FL_VL, hp, ld, g_t, cp, c_t, h_t);
        r = e;
    }
}

/* Whether a thread's units can own whole panels of every gate: H a multiple of a panel, so
 * each gate's columns start on a panel boundary (units split in whole panels of units). */
FL_INLINE int units_on_panels(int H) { return H % FL_NR == 0; }

/* How a call runs its steps (enum fl_step; every way gives the same bits). By default the
 * panel step: its register tiles (FL_MR rows x 2 vectors of gate columns, or one or two rows x
 * four panels) reuse each loaded value more than the unit-block tile, and the gate pass apart
 * from the product runs without the accumulators' register pressure (measured on AVX2, Zen 3,
 * alternating in one process: T=100 B=64 I=1 H=256 one thread 68 ms against 83; S3 two threads
 * 67 against 71; S2, seed 002's batch and S5 on one thread 2 to 8 % faster). The units split
 * needs each thread's gates of its own units together: in whole panels when H allows
 * (units_on_panels), else the unit-block step. There, by default, the panel step from two
 * rows on, the unit-block step (its fused gate math, two unit blocks a tile) for one row
 * (measured on Zen 4, AVX-512, two threads, float32, alternating in one process: T=100
 * B=16 I=512 H=1024, S4, 163 -> 139 ms, its recurrence alone (I=1) 132 -> 100; B=4 60 -> 40,
 * B=2 25 -> 23; at H=128 B=4 6.2 -> 5.9 and B=2 level; B=1 2.8 -> 3.1 at H=128 and 37 -> 43
 * at H=1024: the tile stays there; float64 at S4 level, its W_hh^T of 32 MiB streams from
 * memory either way). */
static int step_kind_of(const fl_exec *ex, const plan *pl, int B, int H)
{
    if (ex->step == FL_STEP_TILE) return FL_STEP_TILE;
    if (pl->split == FL_SPLIT_UNITS &&
        (!units_on_panels(H) || (ex->step == FL_STEP_AUTO && B < 2)))
        return FL_STEP_TILE;
    return FL_STEP_PANELS;
}

static fl_status k_seq_forward(const fl_exec *ex, const fl_dims *d, const fl_cell *cell,
                               const FL_FN(fl_weights) *w, const FL_FN(fl_fwd_bufs) *f)
{
    const int T = d->T, B = d->B, I = d->I, H = d->H, G = 4 * H;
    steps_view v;
    if (T < 0 || B < 0 || I < 1 || H < 1 || !f || !w || !cell || f->ld_hidden < H ||
        f->ld_x < I || !f->hidden || !f->gates || !f->x || !w->packed || !w->bias ||
        (f->cell == NULL && f->c_last == NULL) || !steps_view_of(&v, f->steps, T, B, cell->reverse))
        return FL_ERR_ARG;
    if (T == 0 || B == 0) return FL_OK;
    const packed_layout l = packed_layout_of(I, H);
    const cellcfg cf = cellcfg_make(cell, w->peephole, H);
    const int nub = (int)panels_of(H, FL_VL);
    const plan pl = make_plan(ex, d, v.total, nub);
    const int keep = f->cell != NULL;
    const long long ld_h = f->ld_hidden;
    const int n_max = rows_at(&v, 0); /* rows [n_max, B) run no step */
    const real *h_init = f->steps ? f->h_init : f->h0, *c_init = f->steps ? f->c_init : f->c0;
    const int kind = step_kind_of(ex, &pl, B, H);
    const gemm_blk bk = gemm_blocking(&ex->gemm);
    const fwd_call fc = {H, w->packed + l.uf, w->packed + l.up, ld_h, keep, &cf, bk};
    const gemm_args proj = {(int)v.total, G, I, f->x, f->ld_x, 0, w->packed + l.wx,
                            (long long)I * FL_NR, f->gates, G, C_BIAS, w->bias, bk};
    double t_start;
    stats_begin(ex, pl.threads, &t_start);
    if (!keep && f->c_last != f->c0) /* rows that run no step end in the state they carry */
        for (int r = n_max; r < B; r++)
            for (int u = 0; u < H; u++)
                f->c_last[(long long)r * H + u] = f->c0 ? f->c0[(long long)r * H + u] : 0;

#ifdef _OPENMP
#pragma omp parallel num_threads(pl.threads) if (pl.threads > 1)
#endif
    {
        const int tid = team_id();
        fl_note_team_member(tid); /* its id, for fl_team_for's count */
        /* 1. The input projection of every step at once. */
        if (v.total > 0) gemm_part(&proj, pl.threads, tid);
        FL_BARRIER();
        /* 2. The recurrence. */
        int r0, r1, b0, b1; /* b0, b1: unit blocks of the unit-block step, or panels of units */
        const int unit = kind == FL_STEP_PANELS ? FL_NR : FL_VL;
        recurrence_share(&pl, &v, tid, B, (int)panels_of(H, unit), &r0, &r1, &b0, &b1);
        const int u0 = b0 * unit < H ? b0 * unit : H, u1 = b1 * unit < H ? b1 * unit : H;
        step_pos p = step_first(&v);
        for (int s = 0; s < T; s++) {
            if (s) p = step_next(&v, &p);
            const real *h_prev = s == 0 ? f->h0 : f->hidden + p.off_before * ld_h;
            const long long ld_prev = s == 0 ? H : ld_h;
            const real *c_prev;
            real *c_t;
            if (keep) {
                c_prev = s == 0 ? f->c0 : f->cell + p.off_before * H;
                c_t = f->cell + p.off * H;
            } else {
                c_prev = s == 0 ? f->c0 : f->c_last; /* in place: each element reads itself */
                c_t = f->c_last;
            }
            const int hi = r1 < p.n ? r1 : p.n;
            real *g_t = f->gates + p.off * G;
            if (r0 < hi)
                fwd_rows(&fc, kind == FL_STEP_PANELS, &v, &p, r0, hi, u0, u1, h_prev, ld_prev,
                         c_prev, h_init, c_init, g_t, c_t, f->hidden + p.off * ld_h);
            if (pl.split == FL_SPLIT_UNITS) {
                FL_BARRIER();
            }
        }
    }
    stats_end(ex, t_start);
    if (keep && f->c_last) { /* each row's cell state at the last step it ran */
        step_pos p = step_first(&v);
        for (int s = 0; s < T; s++) {
            if (s) p = step_next(&v, &p);
            const int n_after = s + 1 < T ? rows_at(&v, v.rev ? p.t - 1 : p.t + 1) : 0;
            for (int r = n_after; r < p.n; r++)
                memcpy(f->c_last + (long long)r * H, f->cell + (p.off + r) * H,
                       sizeof(real) * (size_t)H);
        }
        for (int r = n_max; r < B; r++)
            for (int u = 0; u < H; u++)
                f->c_last[(long long)r * H + u] = f->c0 ? f->c0[(long long)r * H + u] : 0;
    }
    return FL_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Backward                                                                                   */
/* ------------------------------------------------------------------------------------------ */

/* Scratch views of backward, in the order fl_bwd_scratch_size counts them. */
typedef struct {
    real *dh;    /* (B, H) the gradient reaching h_t */
    real *dc;    /* (B, H) the gradient reaching c_t */
    real *dgp;   /* dG (T*B, G) packed in panels */
    real *dwt_i; /* (I, G) dW_ih^T */
    real *dwt_h; /* (H, G) dW_hh^T */
} bwd_scratch;

/* For a call over `rows` rows of steps (T B without fl_steps; fewer with lengths: dG's panels
 * hold the real rows only). */
static long long k_bwd_scratch_size(const fl_dims *d, long long rows)
{
    const long long G = 4LL * d->H;
    if (rows < 0 || rows > (long long)d->T * d->B) return -1;
    return 2LL * d->B * d->H + packed_panels_size(rows, G, FL_NR) + ((long long)d->I + d->H) * G;
}

static bwd_scratch bwd_scratch_of(real *s, const fl_dims *d, long long rows)
{
    const long long G = 4LL * d->H;
    bwd_scratch v;
    v.dh = s;
    v.dc = v.dh + (long long)d->B * d->H;
    v.dgp = v.dc + (long long)d->B * d->H;
    v.dwt_i = v.dgp + packed_panels_size(rows, G, FL_NR);
    v.dwt_h = v.dwt_i + (long long)d->I * G;
    return v;
}

/* The gate math of step t backwards for rows [r0, r1), units [u0, u1): dh (+ dy_t) and dc in,
 * dG_t out, dc becomes dL/dc_{t-1}. */
static void bwd_gates(int r0, int r1, int u0, int u1, int H, const real *dh, const real *dy_t,
                      long long ld_dy, const real *g_t, const real *c_t, const real *c_prev,
                      real *dc, real *dg_t, const cellcfg *cf)
{
    const int G = 4 * H;
    for (int r = r0; r < r1; r++) {
        const real *g = g_t + (long long)r * G;
        real *dg = dg_t + (long long)r * G;
        for (int u = u0; u < u1; u += FL_VL) {
            const int n = u1 - u < FL_VL ? u1 - u : FL_VL;
            const long long o = (long long)r * H + u;
            vreal d_h = v_load_upto(dh + o, n);
            if (dy_t) d_h += v_load_upto(dy_t + r * ld_dy + u, n);
            vreal dcv = v_load_upto(dc + o, n), di, df, dgg, d_o;
            cell_backward(v_load_upto(g + u, n), v_load_upto(g + H + u, n),
                          v_load_upto(g + 2 * H + u, n), v_load_upto(g + 3 * H + u, n),
                          v_load_upto(c_t + o, n), c_prev ? v_load_upto(c_prev + o, n) : v_zero(),
                          d_h, &dcv, &di, &df, &dgg, &d_o, cf, u, n);
            v_store_upto(dg + u, di, n);
            v_store_upto(dg + H + u, df, n);
            v_store_upto(dg + 2 * H + u, dgg, n);
            v_store_upto(dg + 3 * H + u, d_o, n);
            v_store_upto(dc + o, dcv, n);
        }
    }
}

/* dst (cols, rows) rows ld_dst apart <- src (rows, cols)^T, rows [c0, c1) of dst only: VL rows
 * of src at a time (transpose_into), 64 rows of dst at a time so the VL rows' lines stay in L1
 * (a plain column walk would write with a power-of-two stride and thrash the cache sets). */
static void transpose_rows(real *dst, long long ld_dst, const real *src, long long ld_src,
                           int rows, int c0, int c1)
{
    for (int cb = c0; cb < c1; cb += 64) {
        const int ce = cb + 64 < c1 ? cb + 64 : c1;
        for (int rb = 0; rb < rows; rb += FL_VL) {
            const int nj = rows - rb < FL_VL ? rows - rb : FL_VL;
            transpose_into(dst + (long long)cb * ld_dst + rb, ld_dst,
                           src + (long long)rb * ld_src + cb, ld_src, nj, ce - cb, nj);
        }
    }
}

/* bwd_gates for rows [lo, hi) of the step at p, each run of rows with its c_{t-1}: the step
 * processed before (c_prev) or the initial state (c_init). */
static void bwd_rows(const steps_view *v, const step_pos *p, int lo, int hi, int u0, int u1,
                     int H, const real *dh, const real *dy_t, long long ld_dy, const real *g_t,
                     const real *c_t, const real *c_prev, const real *c_init, real *dc,
                     real *dg_t, const cellcfg *cf)
{
    for (int r = lo; r < hi;) {
        const int init = from_init(v, p, r);
        int e = r + 1;
        while (e < hi && from_init(v, p, e) == init) e++;
        bwd_gates(r, e, u0, u1, H, dh, dy_t, ld_dy, g_t, c_t, init ? c_init : c_prev, dc, dg_t, cf);
        r = e;
    }
}

/* Row r's h_{t-1} or c_{t-1} at the step at p (NULL: zeros): the step processed before, or the
 * initial state (init, rows H apart). */
FL_INLINE const real *prev_row(const steps_view *v, const step_pos *p, int r, const real *before,
                               long long ld_before, const real *init, int H)
{
    if (from_init(v, p, r) || p->s == 0) return init ? init + (long long)r * H : NULL;
    return before + (p->off_before + r) * ld_before;
}

static fl_status k_seq_backward(const fl_exec *ex, const fl_dims *d, const fl_cell *cell,
                                const FL_FN(fl_weights) *w, const FL_FN(fl_fwd_bufs) *f,
                                const FL_FN(fl_bwd_bufs) *b)
{
    const int T = d->T, B = d->B, I = d->I, H = d->H, G = 4 * H;
    steps_view v;
    if (T < 1 || B < 1 || I < 1 || H < 1 || !f || !b || !w || !cell || !w->packed ||
        f->ld_hidden < H || f->ld_x < I || !f->hidden || !f->cell || !f->gates || !f->x ||
        !b->dw_ih || !b->dw_hh || !b->dbias || !b->d_gates || !b->scratch ||
        b->ld_dw_ih < I || b->ld_dw_hh < H || (b->dx && b->ld_dx < I) ||
        (b->dy && b->ld_dy < H) || (w->peephole && !b->d_peephole) ||
        !steps_view_of(&v, f->steps, T, B, cell->reverse))
        return FL_ERR_ARG;
    if (f->steps && (v.carried != B || f->h_init != f->h0 || f->c_init != f->c0 ||
                     !b->h_prev_rows))
        return FL_ERR_ARG;
    const packed_layout l = packed_layout_of(I, H);
    const cellcfg cf = cellcfg_make(cell, w->peephole, H);
    const int np_h = (int)panels_of(H, FL_NR);          /* unit panels of dh = dG W_hh */
    const plan pl = make_plan(ex, d, v.total, np_h);
    const gemm_blk bk = gemm_blocking(&ex->gemm);
    const bwd_scratch sc = bwd_scratch_of(b->scratch, d, v.total);
    const long long ld_h = f->ld_hidden, rows = v.total;
    const long long dg_stride = rows * FL_NR;            /* panel stride of packed dG */
    const int np_g = (int)panels_of(G, FL_NR);
    const int n_max = rows_at(&v, 0);                    /* rows [n_max, B) run no step */
    double t_start;
    stats_begin(ex, pl.threads, &t_start);

#ifdef _OPENMP
#pragma omp parallel num_threads(pl.threads) if (pl.threads > 1)
#endif
    {
        const int tid = team_id();
        fl_note_team_member(tid); /* its id, for fl_team_for's count */
        int r0, r1, q0, q1;
        recurrence_share(&pl, &v, tid, B, np_h, &r0, &r1, &q0, &q1);
        const int u0 = q0 * FL_NR < H ? q0 * FL_NR : H, u1 = q1 * FL_NR < H ? q1 * FL_NR : H;
        gemm_args dh_prod = {0, H, G, NULL, G, 0, w->packed + l.ub, (long long)G * FL_NR,
                             sc.dh, H, C_ZERO, NULL, bk};
        /* 1. The recurrence, from the last step processed forward to the first. dh0, dc0
         * gather every use of the initial state: a row's first step and its restarts. */
        for (int r = r0; r < r1; r++) {
            const long long o = (long long)r * H;
            for (int u = u0; u < u1; u++) {
                sc.dh[o + u] = b->dh_last ? b->dh_last[o + u] : 0;
                sc.dc[o + u] = b->dc_last ? b->dc_last[o + u] : 0;
                if (b->dh0) b->dh0[o + u] = 0;
                if (b->dc0) b->dc0[o + u] = 0;
            }
        }
        step_pos p = step_last(&v), nx = p;
        for (int s = T - 1; s >= 0; s--) {
            if (s < T - 1) {
                nx = p;
                p = step_prev(&v, &nx);
                /* dh_t = dG_{next} W_hh for my rows and units (everyone's dG_{next} is done);
                 * rows of the next step fed by the initial state hand theirs to dh0, dc0. */
                if (pl.split == FL_SPLIT_UNITS) {
                    FL_BARRIER();
                }
                const int hi = r1 < nx.n ? r1 : nx.n;
                dh_prod.m = nx.n;
                dh_prod.a = b->d_gates + nx.off * G;
                gemm_block(&dh_prod, r0, hi, q0, q1);
                for (int r = r0; r < hi; r++) {
                    if (!from_init(&v, &nx, r)) continue;
                    const long long o = (long long)r * H;
                    for (int u = u0; u < u1; u++) {
                        if (b->dh0) b->dh0[o + u] += sc.dh[o + u];
                        if (b->dc0) b->dc0[o + u] += sc.dc[o + u];
                        sc.dh[o + u] = 0;
                        sc.dc[o + u] = 0;
                    }
                }
            }
            const int hi = r1 < p.n ? r1 : p.n;
            if (r0 < hi)
                bwd_rows(&v, &p, r0, hi, u0, u1, H, sc.dh,
                         b->dy ? b->dy + p.off * b->ld_dy : NULL, b->ld_dy, f->gates + p.off * G,
                         f->cell + p.off * H, s == 0 ? f->c0 : f->cell + p.off_before * H, f->c0,
                         sc.dc, b->d_gates + p.off * G, &cf);
        }
        FL_BARRIER();
        {   /* the first step processed: its rows' state is the initial one */
            const int hi = r1 < p.n ? r1 : p.n;
            if (b->dh0) {
                dh_prod.m = p.n;
                dh_prod.a = b->d_gates + p.off * G;
                gemm_block(&dh_prod, r0, hi, q0, q1);
            }
            for (int r = r0; r < r1; r++) { /* rows that ran no step pass dh_last, dc_last on */
                if (r >= hi && r < n_max) continue;
                const long long o = (long long)r * H;
                for (int u = u0; u < u1; u++) {
                    if (b->dh0) b->dh0[o + u] += sc.dh[o + u];
                    if (b->dc0) b->dc0[o + u] += sc.dc[o + u];
                }
            }
        }

        /* 2. dG packed once for the weight gradients (panels split between threads); with
         * steps, each row's h_{t-1} gathered into rows beside dG's (units split). */
        int p0, p1;
        split_range(np_g, 1, pl.threads, tid, &p0, &p1);
        pack_panels(sc.dgp, b->d_gates, G, (int)rows, G, 0, FL_NR, p0, p1);
        if (f->steps) {
            int v0, v1;
            split_range(H, FL_VL, pl.threads, tid, &v0, &v1);
            step_pos q = step_first(&v);
            for (int s = 0; s < T && v0 < v1; s++) {
                if (s) q = step_next(&v, &q);
                for (int r = 0; r < q.n; r++) {
                    const real *src = prev_row(&v, &q, r, f->hidden, ld_h, f->h0, H);
                    real *dst = b->h_prev_rows + (q.off + r) * H;
                    for (int u = v0; u < v1; u++) dst[u] = src ? src[u] : 0;
                }
            }
        }
        FL_BARRIER();

        /* 3. dX (rows split), db and the weight gradients (panels split). */
        if (b->dx && rows > 0) {
            int i0, i1;
            split_range((int)rows, FL_MR, pl.threads, tid, &i0, &i1);
            const int start = b->dx_accumulate ? C_LOAD : C_ZERO;
            if (dx_on_panels(I)) {
                const gemm_args g = {(int)rows, I, G, b->d_gates, G, 0, w->packed + l.wd,
                                     (long long)G * FL_NR, b->dx, b->ld_dx, start, NULL, bk};
                gemm_block(&g, i0, i1, 0, (int)panels_of(I, FL_NR));
            } else {
                gemm_dot_rows(i0, i1, I, G, b->d_gates, G, w->packed + l.wd, G, b->dx, b->ld_dx,
                              start);
            }
        }
        for (int q = p0; q < p1; q++) { /* db = the column sums of dG, from its panels */
            const real *panel = sc.dgp + q * dg_stride;
            vreal s0 = v_zero(), s1 = v_zero();
            for (long long r = 0; r < rows; r++) {
                s0 += v_load(panel + r * FL_NR);
                s1 += v_load(panel + r * FL_NR + FL_VL);
            }
            const int j0 = q * FL_NR, wq = G - j0 < FL_NR ? G - j0 : FL_NR;
            v_store_upto(b->dbias + j0, s0, wq < FL_VL ? wq : FL_VL);
            if (wq > FL_VL) v_store_upto(b->dbias + j0 + FL_VL, s1, wq - FL_VL);
        }
        {   /* dW_ih^T (I, G) = X^T dG */
            const gemm_args g = {I, G, (int)rows, f->x, f->ld_x, 1, sc.dgp, dg_stride, sc.dwt_i, G,
                                 C_ZERO, NULL, bk};
            gemm_block(&g, 0, I, p0, p1);
        }
        if (f->steps) { /* dW_hh^T (H, G) = H_prev^T dG on the gathered rows */
            const gemm_args g = {H, G, (int)rows, b->h_prev_rows, H, 1, sc.dgp, dg_stride,
                                 sc.dwt_h, G, C_ZERO, NULL, bk};
            gemm_block(&g, 0, H, p0, p1);
        } else {
            /* dW_hh^T (H, G) = sum_t h_{prev(t)}^T dG_t: the steps whose predecessor is a row
             * block of `hidden` form one product, the first processed step pairs with h0. */
            const long long k_h = (long long)(T - 1) * B, step_h = (long long)B * ld_h;
            const int rev = cell->reverse;
            const real *h_from = rev ? f->hidden + step_h : f->hidden;
            const long long dg_from = rev ? 0 : B, dg_first = rev ? k_h : 0;
            gemm_args g = {H, G, (int)k_h, h_from, ld_h, 1, sc.dgp + dg_from * FL_NR,
                           dg_stride, sc.dwt_h, G, C_ZERO, NULL, bk};
            gemm_block(&g, 0, H, p0, p1);
            if (f->h0) {
                g.k = B;
                g.a = f->h0;
                g.lda = H;
                g.bp = sc.dgp + dg_first * FL_NR;
                g.start = C_LOAD;
                gemm_block(&g, 0, H, p0, p1);
            }
        }
        if (w->peephole) { /* dp_i = sum dzi c_{t-1}, dp_f = sum dzf c_{t-1}, dp_o = sum dzo c_t */
            int v0, v1;
            split_range(H, FL_VL, pl.threads, tid, &v0, &v1);
            for (int u = v0; u < v1; u += FL_VL) {
                const int n = v1 - u < FL_VL ? v1 - u : FL_VL;
                vreal si = v_zero(), sf = v_zero(), so = v_zero();
                step_pos q = step_last(&v);
                for (int s = T - 1; s >= 0; s--) {
                    if (s < T - 1) {
                        const step_pos nq = q;
                        q = step_prev(&v, &nq);
                    }
                    for (int r = 0; r < q.n; r++) {
                        const real *dg = b->d_gates + (q.off + r) * G;
                        const real *cp = prev_row(&v, &q, r, f->cell, H, f->c0, H);
                        const vreal cpv = cp ? v_load_upto(cp + u, n) : v_zero();
                        si += v_load_upto(dg + u, n) * cpv;
                        sf += v_load_upto(dg + H + u, n) * cpv;
                        so += v_load_upto(dg + 3 * H + u, n) *
                              v_load_upto(f->cell + (q.off + r) * H + u, n);
                    }
                }
                v_store_upto(b->d_peephole + u, si, n);
                v_store_upto(b->d_peephole + H + u, so, n);
                v_store_upto(b->d_peephole + 2 * H + u, sf, n);
            }
        }
        FL_BARRIER();
        /* 4. The transposes into place (rows of dW split). */
        int g0, g1;
        split_range(G, 16, pl.threads, tid, &g0, &g1);
        transpose_rows(b->dw_ih, b->ld_dw_ih, sc.dwt_i, G, I, g0, g1);
        transpose_rows(b->dw_hh, b->ld_dw_hh, sc.dwt_h, G, H, g0, g1);
    }
    stats_end(ex, t_start);
    return FL_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* The product alone (tests, benchmarks)                                                      */
/* ------------------------------------------------------------------------------------------ */

static long long k_gemm_scratch_size(int k, int n) { return packed_panels_size(k, n, FL_NR); }

static void k_gemm(const fl_exec *ex, int trans_a, int trans_b, int m, int n, int k, real alpha,
                   const real *a, int lda, const real *b, int ldb, real beta, real *c, int ldc,
                   real *scratch)
{
    const int np = (int)panels_of(n, FL_NR);
    pack_panels(scratch, b, ldb, k, n, trans_b, FL_NR, 0, np);
    if (alpha != 1)
        for (long long e = 0; e < packed_panels_size(k, n, FL_NR); e++) scratch[e] *= alpha;
    if (beta != 0 && beta != 1)
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) c[(long long)i * ldc + j] *= beta;
    const gemm_args g = {m, n, k, a, lda, trans_a, scratch, (long long)k * FL_NR, c, ldc,
                         beta == 0 || alpha == 0 ? C_ZERO : C_LOAD, NULL, gemm_blocking(&ex->gemm)};
    if (alpha == 0) { /* C = beta C (C_ZERO when beta is 0 too) */
        if (beta == 0)
            for (int i = 0; i < m; i++) memset(c + (long long)i * ldc, 0, sizeof(real) * (size_t)n);
        return;
    }
    int nt = ex->threads < 1 ? 1 : ex->threads;
#ifndef _OPENMP
    nt = 1;
#endif
#ifdef _OPENMP
#pragma omp parallel num_threads(nt) if (nt > 1)
#endif
    gemm_part(&g, nt, team_id());
}
