/*
 * fl_seed_small.h: the recurrence of the seed model (notebook 001) for a small hidden size
 * (H <= FL_SEED_SMALL_H), forward and backward, in vector code over the hidden units, with no
 * product called. At the seed's sizes (H = 10, one input, one output, ten steps) a step is a few
 * hundred multiply-adds, so what the general sequence kernels spend around them (packing both
 * ways, the product's dispatch, the after-loop products) would cost more than the math.
 *
 * The weights stay in this file's layout for a whole fl_seed_train call: `load` lays W and b
 * out once, every sequence trains on them (seed.c updates them in place, elementwise, as it
 * would the natural ones: the layout does not change an update), and `store` writes them back.
 *
 * Layout: the units are padded to Hp = nb vectors (padded units have zero weights and biases,
 * so they stay 0 and get zero gradients, and the update leaves them 0); block (q, ub) is gate
 * q's units [ub VL, ub VL + VL). P[k][q Hp + u] = W[q H + u][k] for the column k of [h, x]: a
 * gate's preactivations are broadcasts of h_{t-1}[k] or x_t[k] times vectors of P, and
 * dL/dh_{t-1} = sum_j dz_t[j] Wn[j] on Wn, P's h part transposed once per sequence (rows
 * over units: a broadcast of dz_t[j] times vectors again). The gate math is fl_gates.h's, as in
 * the general kernels.
 */

#define FL_SEED_SMALL_H 32
#define FL_SEED_SMALL_K 96
#define FL_SEED_NB ((FL_SEED_SMALL_H + FL_VL - 1) / FL_VL)

typedef struct {
    real *p, *bp;             /* the weights, resident: P (K, 4Hp), then the bias (4Hp) */
    real *zx, *hs, *cs, *gs, *dz, *dot, *wn;
    real *dp, *dbp;           /* their gradients, in the same layout, last in the workspace */
} seed_small_ws;

/* The workspace views for sequences of up to T steps; base NULL only counts. P and bp are
 * adjacent, and so are dP and dbp at the very end (seed.c appends the head's gradients there,
 * so the gradients are one run, as the weights P | bp are). */
static long long seed_small_layout(seed_small_ws *s, real *base, int T, int I, int H)
{
    const long long nb = (H + FL_VL - 1) / FL_VL, Hp = nb * FL_VL, K = (long long)H + I;
    long long used = 0;
#define FL_VIEW(field, n)                                                                      \
    do {                                                                                       \
        s->field = base ? base + used : NULL;                                                  \
        used += (long long)(n); /* every size is whole vectors */                             \
    } while (0)
    FL_VIEW(p, K * 4 * Hp);
    FL_VIEW(bp, 4 * Hp);
    FL_VIEW(zx, (long long)T * 4 * Hp); /* b + W_x x_t of every step */
    FL_VIEW(hs, (T + 1LL) * Hp);        /* hs[t + 1] = h_t, hs[0] = 0 */
    FL_VIEW(cs, (T + 1LL) * Hp);
    FL_VIEW(gs, (long long)T * 4 * Hp);
    FL_VIEW(dz, (long long)T * 4 * Hp);
    FL_VIEW(dot, Hp);                   /* dL/dh_t reaching from step t + 1 */
    FL_VIEW(wn, 4 * Hp * Hp);           /* P's h part transposed: rows over units */
    FL_VIEW(dp, K * 4 * Hp);
    FL_VIEW(dbp, 4 * Hp);
#undef FL_VIEW
    return used;
}

/* Values of the workspace, and of its weights and of its gradients (-1: not for these sizes). */
static long long k_seed_small_size(int T, int I, int H, long long *n_weights)
{
    if (T < 1 || I < 1 || H < 1 || H > FL_SEED_SMALL_H || H + I > FL_SEED_SMALL_K) return -1;
    const long long Hp = (long long)(H + FL_VL - 1) / FL_VL * FL_VL;
    if (n_weights) *n_weights = ((long long)H + I) * 4 * Hp + 4 * Hp;
    seed_small_ws s;
    return seed_small_layout(&s, NULL, T, I, H);
}

/* Lay W (G, H + I) and b (G) out in the workspace (load = 1), or write them back (load = 0). */
static void k_seed_small_weights(real *ws, real *w, real *b, int T, int I, int H, int load)
{
    seed_small_ws s;
    seed_small_layout(&s, ws, T, I, H);
    const int Hp = (H + FL_VL - 1) / FL_VL * FL_VL, K = H + I;
    if (load) /* Wn's padded columns stay 0 */
        for (long long j = 0; j < 4LL * Hp * Hp; j++) s.wn[j] = 0;
    for (int q = 0; q < 4; q++)
        for (int u = 0; u < Hp; u++) {
            for (int k = 0; k < K; k++) {
                real *pk = s.p + ((long long)k * 4 + q) * Hp + u;
                if (load) *pk = u < H ? w[(long long)(q * H + u) * K + k] : 0;
                else if (u < H) w[(long long)(q * H + u) * K + k] = *pk;
            }
            if (load) s.bp[q * Hp + u] = u < H ? b[q * H + u] : 0;
            else if (u < H) b[q * H + u] = s.bp[q * Hp + u];
        }
}

/* Forward from the zero state on the resident weights: hidden (T, H) out; cell (T, H) and
 * gates (T, G) (the activated gates) out too when not NULL. A constant nb (the callers' cases)
 * keeps the accumulators in registers. */
FL_INLINE void seed_small_forward_nb(const int nb, real *ws, const real *x, int T, int Tw,
                                     int I, int H, real *hidden, real *cell, real *gates)
{
    seed_small_ws s;
    seed_small_layout(&s, ws, Tw, I, H);
    const int Hp = nb * FL_VL, nv = 4 * nb;
    cellcfg cf;
    memset(&cf, 0, sizeof cf);
    cf.clip15 = 1;
    cf.act = FL_ACT_TANH;
    /* The input's share of every step first: it does not wait for h_{t-1}. */
    for (int t = 0; t < T; t++) {
        vreal acc[4 * FL_SEED_NB];
        for (int v = 0; v < nv; v++) acc[v] = v_load(s.bp + v * FL_VL);
        for (int i = 0; i < I; i++) {
            const real a = x[(long long)t * I + i];
            const real *pk = s.p + (long long)(H + i) * 4 * Hp;
            for (int v = 0; v < nv; v++) acc[v] += a * v_load(pk + v * FL_VL);
        }
        for (int v = 0; v < nv; v++) v_store(s.zx + (long long)t * 4 * Hp + v * FL_VL, acc[v]);
    }
    for (int u = 0; u < Hp; u++) s.hs[u] = s.cs[u] = 0;
    for (int t = 0; t < T; t++) {
        const real *hp = s.hs + (long long)t * Hp;
        /* two chains over k (even, odd) halve the multiply-add latency of the step */
        vreal acc[4 * FL_SEED_NB], acc2[4 * FL_SEED_NB];
        for (int v = 0; v < nv; v++) {
            acc[v] = v_load(s.zx + (long long)t * 4 * Hp + v * FL_VL);
            acc2[v] = v_zero();
        }
        int k = 0;
        for (; k + 2 <= H; k += 2) {
            const real a0 = hp[k], a1 = hp[k + 1];
            const real *p0 = s.p + (long long)k * 4 * Hp, *p1 = p0 + 4 * Hp;
            for (int v = 0; v < nv; v++) {
                acc[v] += a0 * v_load(p0 + v * FL_VL);
                acc2[v] += a1 * v_load(p1 + v * FL_VL);
            }
        }
        if (k < H) {
            const real a0 = hp[k];
            const real *p0 = s.p + (long long)k * 4 * Hp;
            for (int v = 0; v < nv; v++) acc[v] += a0 * v_load(p0 + v * FL_VL);
        }
        real *gt = s.gs + (long long)t * 4 * Hp;
        for (int ub = 0; ub < nb; ub++) {
            const int u = ub * FL_VL, n = H - u < FL_VL ? H - u : FL_VL;
            vreal zi = acc[ub] + acc2[ub], zf = acc[nb + ub] + acc2[nb + ub];
            vreal zg = acc[2 * nb + ub] + acc2[2 * nb + ub];
            vreal zo = acc[3 * nb + ub] + acc2[3 * nb + ub];
            vreal c = v_load(s.cs + (long long)t * Hp + u);
            const vreal h = cell_forward(&zi, &zf, &zg, &zo, &c, &cf, u, n);
            v_store(gt + u, zi);
            v_store(gt + Hp + u, zf);
            v_store(gt + 2 * Hp + u, zg);
            v_store(gt + 3 * Hp + u, zo);
            v_store(s.cs + (long long)(t + 1) * Hp + u, c);
            v_store(s.hs + (long long)(t + 1) * Hp + u, h);
            v_store_upto(hidden + (long long)t * H + u, h, n);
            if (cell) v_store_upto(cell + (long long)t * H + u, c, n);
            if (gates) {
                real *g = gates + (long long)t * 4 * H + u;
                v_store_upto(g, zi, n);
                v_store_upto(g + H, zf, n);
                v_store_upto(g + 2 * H, zg, n);
                v_store_upto(g + 3 * H, zo, n);
            }
        }
    }
}

/* Backward of the sequence the last forward ran: dy (T, H), the gradient reaching each h_t from
 * the head; dP and db (the resident layout) out, overwritten. */
FL_INLINE void seed_small_backward_nb(const int nb, real *ws, const real *x, const real *dy,
                                      int T, int Tw, int I, int H)
{
    seed_small_ws s;
    seed_small_layout(&s, ws, Tw, I, H);
    const int Hp = nb * FL_VL, K = H + I, nv = 4 * nb;
    cellcfg cf;
    memset(&cf, 0, sizeof cf);
    cf.clip15 = 1;
    cf.act = FL_ACT_TANH;
    for (int k = 0; k < H; k++) /* Wn[j][k] = P[k][j]: this sequence's weights */
        for (int j = 0; j < 4 * Hp; j++) s.wn[(long long)j * Hp + k] = s.p[(long long)k * 4 * Hp + j];
    vreal dc[FL_SEED_NB];
    real *dh_next = s.dot;
    for (int ub = 0; ub < nb; ub++) {
        dc[ub] = v_zero();
        v_store(dh_next + ub * FL_VL, v_zero());
    }
    for (int t = T - 1; t >= 0; t--) {
        const real *gt = s.gs + (long long)t * 4 * Hp;
        real *dzt = s.dz + (long long)t * 4 * Hp;
        for (int ub = 0; ub < nb; ub++) {
            const int u = ub * FL_VL, n = H - u < FL_VL ? H - u : FL_VL;
            const vreal d_h = v_load(dh_next + u) + v_load_upto(dy + (long long)t * H + u, n);
            vreal di, df, dg, d_o;
            cell_backward(v_load(gt + u), v_load(gt + Hp + u), v_load(gt + 2 * Hp + u),
                          v_load(gt + 3 * Hp + u), v_load(s.cs + (long long)(t + 1) * Hp + u),
                          v_load(s.cs + (long long)t * Hp + u), d_h, &dc[ub], &di, &df, &dg,
                          &d_o, &cf, u, n);
            v_store(dzt + u, di);
            v_store(dzt + Hp + u, df);
            v_store(dzt + 2 * Hp + u, dg);
            v_store(dzt + 3 * Hp + u, d_o);
        }
        if (t == 0) break;
        /* dL/dh_{t-1} = sum over the gates' rows j of dz_j Wn[j]: a chain per gate. */
        vreal dh4[4][FL_SEED_NB];
        for (int q = 0; q < 4; q++) {
            for (int ub = 0; ub < nb; ub++) dh4[q][ub] = v_zero();
            for (int u = 0; u < H; u++) {
                const real dzj = dzt[q * Hp + u];
                const real *row = s.wn + (long long)(q * Hp + u) * Hp;
                for (int ub = 0; ub < nb; ub++) dh4[q][ub] += dzj * v_load(row + ub * FL_VL);
            }
        }
        for (int ub = 0; ub < nb; ub++)
            v_store(dh_next + ub * FL_VL, (dh4[0][ub] + dh4[1][ub]) + (dh4[2][ub] + dh4[3][ub]));
    }
    /* dP[k] = sum_t [h_{t-1}, x_t][k] dz_t, db = sum_t dz_t: each over t in order. */
    for (int k = 0; k <= K; k++) {
        vreal acc[4 * FL_SEED_NB];
        for (int v = 0; v < nv; v++) acc[v] = v_zero();
        for (int t = 0; t < T; t++) {
            const real a = k == K ? R(1)
                         : k < H ? s.hs[(long long)t * Hp + k] : x[(long long)t * I + k - H];
            const real *dzt = s.dz + (long long)t * 4 * Hp;
            for (int v = 0; v < nv; v++) acc[v] += a * v_load(dzt + v * FL_VL);
        }
        real *out = k == K ? s.dbp : s.dp + (long long)k * 4 * Hp;
        for (int v = 0; v < nv; v++) v_store(out + v * FL_VL, acc[v]);
    }
}

/* nb as a constant for the sizes a path can have (nb <= FL_SEED_NB), a variable beyond. */
#if FL_DOUBLE /* FL_VL for the preprocessor */
#define FL_SEED_VL_PP (FL_VBYTES / 8)
#else
#define FL_SEED_VL_PP (FL_VBYTES / 4)
#endif
#if (FL_SEED_SMALL_H + FL_SEED_VL_PP - 1) / FL_SEED_VL_PP >= 4
#define FL_NB_CASES34(CALL) case 3: CALL(3); break; case 4: CALL(4); break;
#elif (FL_SEED_SMALL_H + FL_SEED_VL_PP - 1) / FL_SEED_VL_PP >= 3
#define FL_NB_CASES34(CALL) case 3: CALL(3); break;
#else
#define FL_NB_CASES34(CALL)
#endif
#define FL_NB_SWITCH(CALL)                                                                     \
    switch ((H + FL_VL - 1) / FL_VL) {                                                         \
    case 1: CALL(1); break;                                                                    \
    case 2: CALL(2); break;                                                                    \
    FL_NB_CASES34(CALL)                                                                        \
    default: CALL((H + FL_VL - 1) / FL_VL);                                                    \
    }

/* Tw: the steps the workspace was laid out for (its layout depends on it); T <= Tw. */
static fl_status k_seed_small_forward(real *ws, const real *x, int T, int Tw, int I, int H,
                                      real *hidden, real *cell, real *gates)
{
    if (T < 1 || T > Tw || k_seed_small_size(Tw, I, H, NULL) < 0 || !ws || !x || !hidden)
        return FL_ERR_ARG;
#define FL_CALL(N) seed_small_forward_nb(N, ws, x, T, Tw, I, H, hidden, cell, gates)
    FL_NB_SWITCH(FL_CALL)
#undef FL_CALL
    return FL_OK;
}

static fl_status k_seed_small_backward(real *ws, const real *x, const real *dy, int T, int Tw,
                                       int I, int H)
{
    if (T < 1 || T > Tw || k_seed_small_size(Tw, I, H, NULL) < 0 || !ws || !x || !dy)
        return FL_ERR_ARG;
#define FL_CALL(N) seed_small_backward_nb(N, ws, x, dy, T, Tw, I, H)
    FL_NB_SWITCH(FL_CALL)
#undef FL_CALL
    return FL_OK;
}
#undef FL_NB_SWITCH
#undef FL_NB_CASES34
#undef FL_SEED_VL_PP
