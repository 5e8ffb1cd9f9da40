/*
 * fl_seed_small.h: the recurrence of the seed model (notebook 001) for a small hidden size
 * (H <= FL_SEED_SMALL_H), forward and backward, in vector code over the hidden units, with no
 * product called. At the seed's sizes (H = 10, one input, one output, ten steps) a step is a few
 * hundred multiply-adds, so what the general sequence kernels spend around them (packing both
 * ways, the product's dispatch, the after-loop products) would cost more than the math.
 *
 * The model (W, b and the head Wy, by) stays in this file's layout for a whole fl_seed_train
 * call: `load` lays it out once, every sequence trains on it (forward with the head and the
 * loss, backward, the clipped SGD update, all here: seed.c only loops over the sequences), and
 * `store` writes it back. The update is elementwise, so the layout does not change it.
 *
 * Layout: P[k][slot] = W[q H + u][k] for the column k of [h, x], the slots of gate q's unit u
 * as seed_small_slot gives them (whole blocks of VL units, then the last units packed or
 * padded); slots, units and outputs without a value have zero weights, stay 0 and get zero
 * gradients, so the update leaves them 0. A gate's preactivations are broadcasts of
 * h_{t-1}[k] or x_t[k] times vectors of P, and dL/dh_{t-1} = sum_j dz_t[j] Wn[j] on Wn, P's h
 * part transposed once per sequence (rows over units: a broadcast of dz_t[j] times vectors
 * again). The head's rows Wy[k] are over the units padded to Hu, as h_t is. The gate math is
 * fl_gates.h's, as in the general kernels.
 */

#define FL_SEED_SMALL_H 32
#define FL_SEED_SMALL_K 96
#define FL_SEED_NB ((FL_SEED_SMALL_H + FL_VL - 1) / FL_VL) /* unit vectors, at most */
/* array bounds for every case compiled (FL_NB_SWITCH's include some a path never runs) */
#define FL_SEED_NU (FL_SEED_NB + 1)
#define FL_SEED_NV (4 * FL_SEED_NB + 4)

/* The gate layout of H units: nf = H / VL whole blocks of VL units, gate q's block b in vector
 * q nf + b; then the r = H mod VL last units in tk vectors: tk = 0 (none), 1 or 2 packed (gate
 * q's unit j at lane q r + j of the tail, when 4 r <= 2 VL: 2 units at AVX-512's 8 doubles take
 * one vector for all four gates instead of four), or 4 (one vector a gate, padded, as the whole
 * blocks). Hu = the units padded to whole vectors (h, c rows); G = the gate slots, 4 nf VL + tk VL.
 * Slots that hold no gate have zero weights, stay 0 and get zero gradients. */
static int seed_small_tk(int H)
{
    const int r = H % FL_VL;
    return r == 0 ? 0 : 4 * r <= FL_VL ? 1 : 4 * r <= 2 * FL_VL ? 2 : 4;
}

FL_INLINE int seed_small_slot(int nf, int tk, int r, int q, int u)
{
    if (u < nf * FL_VL) return (q * nf + u / FL_VL) * FL_VL + u % FL_VL;
    const int j = u - nf * FL_VL, base = 4 * nf * FL_VL;
    return tk == 4 ? base + q * FL_VL + j : base + q * r + j;
}

typedef struct {
    /* the model, resident: P (K, G), the bias (G), the head Wy (O, Hu) and by (O, padded) */
    real *p, *bp, *wy, *by;
    real *zx, *hs, *cs, *as, *gs, *dz, *dot, *wn, *err;
    real *dp, *dbp, *dwy, *dby; /* their gradients, in the same layout, last in the workspace */
} seed_small_ws;

/* The values of O outputs rounded up to whole vectors (the bias by and its gradient). */
FL_INLINE long long seed_small_ov(long long n) { return (n + FL_VL - 1) / FL_VL * FL_VL; }

/* The workspace views for sequences of up to T steps and O outputs; base NULL only counts.
 * The model (P | bp | Wy | by) is one run at the start, its gradients one run of the same
 * layout at the end, so the update is one pass over both. */
static long long seed_small_layout(seed_small_ws *s, real *base, int T, int I, int H, int O)
{
    const long long nf = H / FL_VL, tk = seed_small_tk(H), K = (long long)H + I;
    const long long Hu = (nf + (tk > 0)) * FL_VL, G = (4 * nf + tk) * FL_VL;
    long long used = 0;
#define FL_VIEW(field, n)                                                                      \
    do {                                                                                       \
        s->field = base ? base + used : NULL;                                                  \
        used += (long long)(n); /* every size is whole vectors */                             \
    } while (0)
    FL_VIEW(p, K * G);
    FL_VIEW(bp, G);
    FL_VIEW(wy, O * Hu);
    FL_VIEW(by, seed_small_ov(O));
    FL_VIEW(zx, (long long)T * G);      /* b + W_x x_t of every step */
    FL_VIEW(hs, (T + 1LL) * Hu);        /* hs[t + 1] = h_t, hs[0] = 0 */
    FL_VIEW(cs, (T + 1LL) * Hu);
    FL_VIEW(as, (T + 1LL) * Hu);        /* as[t + 1] = tanh(c_t), for backward */
    FL_VIEW(gs, (long long)T * G);
    FL_VIEW(dz, (long long)T * G);
    FL_VIEW(dot, Hu);                   /* dL/dh_t reaching from step t + 1 */
    FL_VIEW(wn, G * Hu);                /* P's h part transposed: a row of units per slot */
    FL_VIEW(err, seed_small_ov((long long)T * O)); /* (T, O): y_t - target_t */
    FL_VIEW(dp, K * G);
    FL_VIEW(dbp, G);
    FL_VIEW(dwy, O * Hu);
    FL_VIEW(dby, seed_small_ov(O));
#undef FL_VIEW
    return used;
}

/* Values of the workspace (-1: not for these sizes); n_weights receives those of the resident
 * model (P | bp | Wy | by), which start the workspace; its gradients, as many, end it. */
static long long k_seed_small_size(int T, int I, int H, int O, long long *n_weights)
{
    if (T < 1 || I < 1 || H < 1 || O < 1 || H > FL_SEED_SMALL_H || H + I > FL_SEED_SMALL_K)
        return -1;
    const long long nf = H / FL_VL, tk = seed_small_tk(H), K = (long long)H + I;
    const long long Hu = (nf + (tk > 0)) * FL_VL, G = (4 * nf + tk) * FL_VL;
    if (n_weights) *n_weights = K * G + G + O * Hu + seed_small_ov(O); /* as the layout's */
    seed_small_ws s;
    return seed_small_layout(&s, NULL, T, I, H, O);
}

/* Lay W (4H, H + I), b (4H), Wy (O, H) and by (O) out in the workspace (load = 1), or write
 * them back (load = 0). */
static void k_seed_small_weights(real *ws, real *w, real *b, real *wy, real *by, int T, int I,
                                 int H, int O, int load)
{
    seed_small_ws s;
    seed_small_layout(&s, ws, T, I, H, O);
    const int nf = H / FL_VL, tk = seed_small_tk(H), r = H % FL_VL, K = H + I;
    const long long Hu = (nf + (tk > 0)) * FL_VL, G = (4LL * nf + tk) * FL_VL;
    if (load) { /* the slots without a gate, padded units and outputs, Wn's padding stay 0 */
        for (real *q = s.p; q < s.zx; q++) *q = 0;
        for (long long j = 0; j < G * Hu; j++) s.wn[j] = 0;
    }
    for (int k = 0; k < O; k++) {
        for (int u = 0; u < H; u++) {
            real *q = s.wy + (long long)k * Hu + u;
            if (load) *q = wy[(long long)k * H + u];
            else wy[(long long)k * H + u] = *q;
        }
        if (load) s.by[k] = by[k];
        else by[k] = s.by[k];
    }
    for (int q = 0; q < 4; q++)
        for (int u = 0; u < H; u++) {
            const int j = seed_small_slot(nf, tk, r, q, u);
            for (int k = 0; k < K; k++) {
                real *pk = s.p + (long long)k * G + j;
                if (load) *pk = w[(long long)(q * H + u) * K + k];
                else w[(long long)(q * H + u) * K + k] = *pk;
            }
            if (load) s.bp[j] = b[q * H + u];
            else b[q * H + u] = s.bp[j];
        }
}

/* The lanes of the packed tail's vector m that hold g (tanh); 1 if any does. */
FL_INLINE int seed_small_tanh_lanes(int r, int m, vint *mask)
{
    ireal t[FL_VL];
    int any = 0;
    for (int l = 0; l < FL_VL; l++) {
        const int slot = m * FL_VL + l;
        t[l] = slot >= 2 * r && slot < 3 * r ? -1 : 0;
        any |= t[l] != 0;
    }
    memcpy(mask, t, sizeof t);
    return any;
}

/* Step t's cell c, tanh(c) ac and h for the n units from u kept in the workspace (rows of Hu
 * from row), and written out where hidden, cell, gates (the activated i, f, g, o) are not
 * NULL. */
FL_INLINE void seed_small_keep(const seed_small_ws *s, long long row, int u, int n, int t, int H,
                               vreal c, vreal ac, vreal h, vreal gi, vreal gf, vreal gg,
                               vreal go, real *hidden, real *cell, real *gates)
{
    v_store(s->cs + row + u, c);
    v_store(s->as + row + u, ac);
    v_store(s->hs + row + u, h);
    if (hidden) v_store_upto(hidden + (long long)t * H + u, h, n);
    if (cell) v_store_upto(cell + (long long)t * H + u, c, n);
    if (gates) {
        real *g = gates + (long long)t * 4 * H + u;
        v_store_upto(g, gi, n);
        v_store_upto(g + H, gf, n);
        v_store_upto(g + 2 * H, gg, n);
        v_store_upto(g + 3 * H, go, n);
    }
}

/* Forward from the zero state on the resident model, with the head: err (T, O) = Wy h_t + by -
 * target_t kept for backward, *loss the seed's sum over the steps of |err_t|^2 / 2 (from the
 * last step to the first, as its loop adds them); hidden, cell (T, H) and gates (T, 4H) (the
 * activated gates) out where not NULL. Constant nf and tk (the callers' cases) keep the
 * accumulators in registers. */
FL_INLINE void seed_small_forward_c(const int nf, const int tk, real *ws, const real *x,
                                    const real *targets, int T, int Tw, int I, int H, int O,
                                    real *hidden, real *cell, real *gates, double *loss)
{
    seed_small_ws s;
    seed_small_layout(&s, ws, Tw, I, H, O);
    const int nv = 4 * nf + tk, G = nv * FL_VL, nu = nf + (tk > 0), Hu = nu * FL_VL;
    const int r = H - nf * FL_VL, ut = nf * FL_VL; /* the tail's units start at ut */
    vint tmask[2];
    int mixed[2] = {0, 0};
    if (tk == 1 || tk == 2)
        for (int m = 0; m < tk; m++) mixed[m] = seed_small_tanh_lanes(r, m, &tmask[m]);
    /* The input's share of every step first: it does not wait for h_{t-1}. */
    for (int t = 0; t < T; t++) {
        vreal acc[FL_SEED_NV];
        for (int v = 0; v < nv; v++) acc[v] = v_load(s.bp + v * FL_VL);
        for (int i = 0; i < I; i++) {
            const real a = x[(long long)t * I + i];
            const real *pk = s.p + (long long)(H + i) * G;
            for (int v = 0; v < nv; v++) acc[v] += a * v_load(pk + v * FL_VL);
        }
        for (int v = 0; v < nv; v++) v_store(s.zx + (long long)t * G + v * FL_VL, acc[v]);
    }
    for (int u = 0; u < Hu; u++) s.hs[u] = s.cs[u] = s.as[u] = 0;
    for (int t = 0; t < T; t++) {
        const real *hp = s.hs + (long long)t * Hu;
        /* two chains over k (even, odd) halve the multiply-add latency of the step */
        vreal acc[FL_SEED_NV], acc2[FL_SEED_NV];
        for (int v = 0; v < nv; v++) {
            acc[v] = v_load(s.zx + (long long)t * G + v * FL_VL);
            acc2[v] = v_zero();
        }
        int k = 0;
        for (; k + 2 <= H; k += 2) {
            const real a0 = hp[k], a1 = hp[k + 1];
            const real *p0 = s.p + (long long)k * G, *p1 = p0 + G;
            for (int v = 0; v < nv; v++) {
                acc[v] += a0 * v_load(p0 + v * FL_VL);
                acc2[v] += a1 * v_load(p1 + v * FL_VL);
            }
        }
        if (k < H) {
            const real a0 = hp[k];
            const real *p0 = s.p + (long long)k * G;
            for (int v = 0; v < nv; v++) acc[v] += a0 * v_load(p0 + v * FL_VL);
        }
        real *gt = s.gs + (long long)t * G;
        const long long row = (long long)(t + 1) * Hu;
        /* whole blocks, and a padded tail (tk = 4) as one more block of r units; the seed's
         * cell: clipped sigmoids, tanh */
        for (int ub = 0; ub < nf + (tk == 4); ub++) {
            const int u = ub * FL_VL, n = ub < nf ? FL_VL : r;
            const int vi = ub < nf ? ub : 4 * nf, st = ub < nf ? nf : 1; /* gate q at vi + q st */
            vreal zi = acc[vi] + acc2[vi], zf = acc[vi + st] + acc2[vi + st];
            vreal zg = acc[vi + 2 * st] + acc2[vi + 2 * st];
            vreal zo = acc[vi + 3 * st] + acc2[vi + 3 * st];
            vreal c = v_load(s.cs + row - Hu + u), ac;
            zi = v_sigmoid_clip15(zi);
            zf = v_sigmoid_clip15(zf);
            zo = v_sigmoid_clip15(zo);
            zg = v_tanh(zg);
            const vreal h = cell_update(zi, zf, zg, zo, &c, &ac, FL_ACT_TANH);
            v_store(gt + vi * FL_VL, zi);
            v_store(gt + (vi + st) * FL_VL, zf);
            v_store(gt + (vi + 2 * st) * FL_VL, zg);
            v_store(gt + (vi + 3 * st) * FL_VL, zo);
            seed_small_keep(&s, row, u, n, t, H, c, ac, h, zi, zf, zg, zo, hidden, cell, gates);
        }
        if (tk == 1 || tk == 2) {
            /* the packed tail: activate its vectors (sigmoid or tanh by lane), store them, and
             * read each gate's r lanes back from the store, aligned to the units (permutes by
             * a lane index, the other way, made the seed epoch 15 % slower) */
            real *tail = gt + 4 * nf * FL_VL;
            for (int m = 0; m < tk; m++) {
                const vreal z = acc[4 * nf + m] + acc2[4 * nf + m];
                v_store(tail + m * FL_VL,
                        mixed[m] ? v_sigmoid_clip15_or_tanh(z, tmask[m]) : v_sigmoid_clip15(z));
            }
            const vreal gi = v_load_n(tail, r), gf = v_load_n(tail + r, r);
            const vreal gg = v_load_n(tail + 2 * r, r), go = v_load_n(tail + 3 * r, r);
            vreal c = v_load(s.cs + row - Hu + ut), ac;
            const vreal h = cell_update(gi, gf, gg, go, &c, &ac, FL_ACT_TANH);
            seed_small_keep(&s, row, ut, r, t, H, c, ac, h, gi, gf, gg, go, hidden, cell, gates);
        }
        /* the head on h_t: nothing of this step's recurrence waits for it */
        for (int k = 0; k < O; k++) {
            const real *wk = s.wy + (long long)k * Hu;
            vreal acc = v_load(s.hs + row) * v_load(wk);
            for (int ub = 1; ub < nu; ub++)
                acc += v_load(s.hs + row + ub * FL_VL) * v_load(wk + ub * FL_VL);
            s.err[(long long)t * O + k] =
                (v_hsum(acc) + s.by[k]) - targets[(long long)t * O + k];
        }
    }
    double total = 0;
    for (int t = T - 1; t >= 0; t--) {
        double step = 0;
        for (int k = 0; k < O; k++) {
            const double e = s.err[(long long)t * O + k];
            step += e * e;
        }
        total += step / 2;
    }
    *loss = total;
}

/* Backward of the sequence the last forward ran, from its err: the gradients of the whole
 * resident model (dP, db, dWy, dby) out, overwritten. tanh(c_t) is forward's. */
FL_INLINE void seed_small_backward_c(const int nf, const int tk, real *ws, const real *x, int T,
                                     int Tw, int I, int H, int O)
{
    seed_small_ws s;
    seed_small_layout(&s, ws, Tw, I, H, O);
    const int nv = 4 * nf + tk, G = nv * FL_VL, nu = nf + (tk > 0), Hu = nu * FL_VL;
    const int r = H - nf * FL_VL, K = H + I;
    cellcfg cf;
    memset(&cf, 0, sizeof cf);
    cf.clip15 = 1;
    cf.act = FL_ACT_TANH;
    for (int k = 0; k < H; k++) /* Wn[j][k] = P[k][j]: this sequence's weights */
        for (int j = 0; j < G; j++) s.wn[(long long)j * Hu + k] = s.p[(long long)k * G + j];
    vreal dc[FL_SEED_NU];
    real *dh_next = s.dot;
    for (int ub = 0; ub < nu; ub++) {
        dc[ub] = v_zero();
        v_store(dh_next + ub * FL_VL, v_zero());
    }
    for (int t = T - 1; t >= 0; t--) {
        const real *gt = s.gs + (long long)t * G;
        real *dzt = s.dz + (long long)t * G;
        const long long row = (long long)(t + 1) * Hu;
        for (int ub = 0; ub < nu; ub++) {
            const int u = ub * FL_VL, n = ub < nf ? FL_VL : r, packed = ub == nf && tk < 4;
            const int vi = ub < nf ? ub : 4 * nf, st = ub < nf ? nf : 1;
            /* dL/dh_t: from step t + 1, and from the head, err_t Wy */
            vreal dyh = s.err[(long long)t * O] * v_load(s.wy + u);
            for (int k = 1; k < O; k++)
                dyh += s.err[(long long)t * O + k] * v_load(s.wy + (long long)k * Hu + u);
            const vreal d_h = v_load(dh_next + u) + dyh;
            vreal gi, gf, gg, go;
            if (packed) {
                const real *tail = gt + 4 * nf * FL_VL;
                gi = v_load_n(tail, r);
                gf = v_load_n(tail + r, r);
                gg = v_load_n(tail + 2 * r, r);
                go = v_load_n(tail + 3 * r, r);
            } else {
                gi = v_load(gt + vi * FL_VL);
                gf = v_load(gt + (vi + st) * FL_VL);
                gg = v_load(gt + (vi + 2 * st) * FL_VL);
                go = v_load(gt + (vi + 3 * st) * FL_VL);
            }
            vreal di, df, dg, d_o;
            cell_backward_ac(gi, gf, gg, go, v_load(s.cs + row + u), v_load(s.as + row + u),
                             v_load(s.cs + row - Hu + u), d_h, &dc[ub], &di, &df, &dg, &d_o,
                             &cf, u, n);
            if (packed) {
                /* zeros first: the lanes past the four gates' 4 r keep their weights 0 */
                real *tail = dzt + 4 * nf * FL_VL;
                for (int m = 0; m < tk; m++) v_store(tail + m * FL_VL, v_zero());
                v_store_n(tail, di, r);
                v_store_n(tail + r, df, r);
                v_store_n(tail + 2 * r, dg, r);
                v_store_n(tail + 3 * r, d_o, r);
            } else {
                v_store(dzt + vi * FL_VL, di);
                v_store(dzt + (vi + st) * FL_VL, df);
                v_store(dzt + (vi + 2 * st) * FL_VL, dg);
                v_store(dzt + (vi + 3 * st) * FL_VL, d_o);
            }
        }
        if (t == 0) break;
        /* dL/dh_{t-1} = sum over the gates' rows j of dz_j Wn[j]: a chain per gate. */
        vreal dh4[4][FL_SEED_NU];
        for (int q = 0; q < 4; q++) {
            for (int ub = 0; ub < nu; ub++) dh4[q][ub] = v_zero();
            for (int u = 0; u < H; u++) {
                const int j = seed_small_slot(nf, tk, r, q, u);
                const real dzj = dzt[j];
                const real *wrow = s.wn + (long long)j * Hu;
                for (int ub = 0; ub < nu; ub++) dh4[q][ub] += dzj * v_load(wrow + ub * FL_VL);
            }
        }
        for (int ub = 0; ub < nu; ub++)
            v_store(dh_next + ub * FL_VL, (dh4[0][ub] + dh4[1][ub]) + (dh4[2][ub] + dh4[3][ub]));
    }
    /* dP[k] = sum_t [h_{t-1}, x_t][k] dz_t, db = sum_t dz_t: each over t in order. */
    for (int k = 0; k <= K; k++) {
        vreal acc[FL_SEED_NV];
        for (int v = 0; v < nv; v++) acc[v] = v_zero();
        for (int t = 0; t < T; t++) {
            const real a = k == K ? R(1)
                         : k < H ? s.hs[(long long)t * Hu + k] : x[(long long)t * I + k - H];
            const real *dzt = s.dz + (long long)t * G;
            for (int v = 0; v < nv; v++) acc[v] += a * v_load(dzt + v * FL_VL);
        }
        real *out = k == K ? s.dbp : s.dp + (long long)k * G;
        for (int v = 0; v < nv; v++) v_store(out + v * FL_VL, acc[v]);
    }
    /* dWy[k] = sum_t err_t[k] h_t, dby[k] = sum_t err_t[k], over t in order */
    for (long long j = 0; j < seed_small_ov(O); j++) s.dby[j] = 0;
    for (int k = 0; k < O; k++) {
        vreal acc[FL_SEED_NU];
        real db = 0;
        for (int ub = 0; ub < nu; ub++) acc[ub] = v_zero();
        for (int t = 0; t < T; t++) {
            const real e = s.err[(long long)t * O + k];
            for (int ub = 0; ub < nu; ub++)
                acc[ub] += e * v_load(s.hs + (long long)(t + 1) * Hu + ub * FL_VL);
            db += e;
        }
        for (int ub = 0; ub < nu; ub++) v_store(s.dwy + (long long)k * Hu + ub * FL_VL, acc[ub]);
        s.dby[k] = db;
    }
}

/* nf and tk as constants for the sizes a path can have (H <= 32: nf <= 32 / VL; tk = 0 only
 * when H is whole blocks), variables beyond. */
#if FL_DOUBLE /* FL_VL for the preprocessor */
#define FL_SEED_VL_PP (FL_VBYTES / 8)
#else
#define FL_SEED_VL_PP (FL_VBYTES / 4)
#endif
#define FL_SEED_CASES_NF(CALL, NF)                                                             \
    case NF * 8 + 0: CALL(NF, 0); break;                                                       \
    case NF * 8 + 1: CALL(NF, 1); break;                                                       \
    case NF * 8 + 2: CALL(NF, 2); break;                                                       \
    case NF * 8 + 4: CALL(NF, 4); break;
#if FL_SEED_SMALL_H / FL_SEED_VL_PP >= 4
#define FL_SEED_CASES_34(CALL) FL_SEED_CASES_NF(CALL, 3) case 4 * 8 + 0: CALL(4, 0); break;
#elif FL_SEED_SMALL_H / FL_SEED_VL_PP >= 3
#define FL_SEED_CASES_34(CALL) FL_SEED_CASES_NF(CALL, 3)
#else
#define FL_SEED_CASES_34(CALL)
#endif
#define FL_NB_SWITCH(CALL)                                                                     \
    switch (H / FL_VL * 8 + seed_small_tk(H)) {                                                \
    case 0 * 8 + 1: CALL(0, 1); break;                                                         \
    case 0 * 8 + 2: CALL(0, 2); break;                                                         \
    case 0 * 8 + 4: CALL(0, 4); break;                                                         \
    FL_SEED_CASES_NF(CALL, 1)                                                                  \
    FL_SEED_CASES_NF(CALL, 2)                                                                  \
    FL_SEED_CASES_34(CALL)                                                                     \
    default: CALL(H / FL_VL, seed_small_tk(H));                                                \
    }

/* Tw: the steps the workspace was laid out for (its layout depends on it); T <= Tw.
 * FL_ERR_NONFINITE for a loss that is not finite (backward must not run then). */
static fl_status k_seed_small_forward(real *ws, const real *x, const real *targets, int T,
                                      int Tw, int I, int H, int O, real *hidden, real *cell,
                                      real *gates, double *loss)
{
    if (T < 1 || T > Tw || k_seed_small_size(Tw, I, H, O, NULL) < 0 || !ws || !x || !targets ||
        !loss)
        return FL_ERR_ARG;
#define FL_CALL(NF, TK)                                                                        \
    seed_small_forward_c(NF, TK, ws, x, targets, T, Tw, I, H, O, hidden, cell, gates, loss)
    FL_NB_SWITCH(FL_CALL)
#undef FL_CALL
    return isfinite(*loss) ? FL_OK : FL_ERR_NONFINITE;
}

static fl_status k_seed_small_backward(real *ws, const real *x, int T, int Tw, int I, int H,
                                       int O)
{
    if (T < 1 || T > Tw || k_seed_small_size(Tw, I, H, O, NULL) < 0 || !ws || !x)
        return FL_ERR_ARG;
#define FL_CALL(NF, TK) seed_small_backward_c(NF, TK, ws, x, T, Tw, I, H, O)
    FL_NB_SWITCH(FL_CALL)
#undef FL_CALL
    return FL_OK;
}

/* Keeps the compiler from fusing a product with the sum that reads it: the seed's update
 * rounds lr * g, then p - that, as NumPy does (the portable path never fuses). */
#if FL_ISA == 1 || FL_ISA == 2
#define FL_ROUNDED(v) __asm__("" : "+v"(v))
#elif FL_ISA == 3
#define FL_ROUNDED(v) __asm__("" : "+w"(v))
#else
#define FL_ROUNDED(v) ((void)0)
#endif

/* The seed's update of the whole resident model from its gradients (backward's): every
 * gradient clipped to [-clip, clip] (an infinity to +-clip, as np.clip does); if any is NaN
 * after that (with clip <= 0, no clipping: if any is not finite) nothing changes and the result
 * is FL_ERR_NONFINITE; else p -= lr * g. Elementwise, so the layout changes nothing; padded
 * slots have zero gradients and stay 0. */
static fl_status k_seed_small_apply(real *ws, int Tw, int I, int H, int O, real lr, real clip)
{
    long long n = 0;
    if (k_seed_small_size(Tw, I, H, O, &n) < 0 || !ws) return FL_ERR_ARG;
    seed_small_ws s;
    seed_small_layout(&s, ws, Tw, I, H, O);
    real *p = s.p;
    const real *g = s.dp;
    /* every size in the run is whole vectors */
    vint bad = (vint)v_zero();
    for (long long j = 0; j < n; j += FL_VL) {
        const vreal x = v_load(g + j);
        if (clip > 0) bad |= x != x;
        else bad |= (x - x) != (x - x); /* x - x: NaN unless x is finite */
    }
    ireal lanes[FL_VL];
    memcpy(lanes, &bad, sizeof lanes);
    for (int l = 0; l < FL_VL; l++)
        if (lanes[l]) return FL_ERR_NONFINITE;
    const vreal rate = v_set1(lr), hi = v_set1(clip), lo = v_set1(-clip);
    for (long long j = 0; j < n; j += FL_VL) {
        vreal x = v_load(g + j);
        if (clip > 0) x = v_sel(x < lo, lo, v_sel(x > hi, hi, x));
        vreal step = rate * x;
        FL_ROUNDED(step);
        v_store(p + j, v_load(p + j) - step);
    }
    return FL_OK;
}
#undef FL_ROUNDED
#undef FL_NB_SWITCH
#undef FL_SEED_CASES_34
#undef FL_SEED_CASES_NF
#undef FL_SEED_VL_PP
