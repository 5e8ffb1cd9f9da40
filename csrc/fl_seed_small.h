/*
 * fl_seed_small.h: the recurrence of the seed model (notebook 001) on one sequence, forward and
 * backward, for a small hidden size (H <= FL_SEED_SMALL_H), in vector code over the hidden units
 * with nothing packed for a product and no product called. At the seed's sizes (H = 10, one
 * input, one output, ten steps) a step is a few hundred multiply-adds, so what the general
 * sequence kernels spend around them (packing both ways, the product's dispatch, the after-loop
 * products) would cost more than the math. seed.c's fl_seed_step calls the two halves around
 * the head, the loss and the update, which it shares with fl_seed_backward.
 *
 * Layout: the units are padded to Hp = nb vectors (padded units have zero weights, so they stay
 * 0 and get zero gradients); block (q, ub) is gate q's units [ub VL, ub VL + VL). W^T is held as
 * vectors over units, P[k][q Hp + u] = W[q H + u][k] for the column k of [h, x], so a gate's
 * preactivations are sums of a broadcast of h_{t-1}[k] or x_t[k] times a vector; natural rows
 * Wn[j][0, Hp) of W's h part give dL/dh_{t-1} = sum_j dz_j Wn[j]. The gate math is fl_gates.h's,
 * as in the general kernels. The forward leaves P, Wn, the states and the gates in the
 * workspace for the backward of the same sequence.
 */

#define FL_SEED_SMALL_H 32
#define FL_SEED_SMALL_K 96
#define FL_SEED_NB ((FL_SEED_SMALL_H + FL_VL - 1) / FL_VL)

typedef struct {
    real *p, *wn, *bp, *hs, *cs, *gs, *dz, *tmp;
} seed_small_ws;

/* The workspace views; base NULL only counts. */
static long long seed_small_layout(seed_small_ws *s, real *base, int T, int I, int H)
{
    const long long nb = (H + FL_VL - 1) / FL_VL, Hp = nb * FL_VL, K = (long long)H + I;
    const long long G = 4LL * H;
    long long used = 0;
#define FL_VIEW(field, n)                                                                      \
    do {                                                                                       \
        s->field = base ? base + used : NULL;                                                  \
        used += ((long long)(n) + FL_VL - 1) / FL_VL * FL_VL;                                  \
    } while (0)
    FL_VIEW(p, K * 4 * Hp);
    FL_VIEW(wn, G * Hp);
    FL_VIEW(bp, 4 * Hp);
    FL_VIEW(hs, (T + 1LL) * Hp);   /* hs[t + 1] = h_t, hs[0] = 0 */
    FL_VIEW(cs, (T + 1LL) * Hp);
    FL_VIEW(gs, (long long)T * 4 * Hp);
    FL_VIEW(dz, (long long)T * 4 * Hp);
    FL_VIEW(tmp, 4 * Hp);
#undef FL_VIEW
    return used;
}

static long long k_seed_small_size(int T, int I, int H)
{
    if (T < 1 || I < 1 || H < 1 || H > FL_SEED_SMALL_H || H + I > FL_SEED_SMALL_K) return -1;
    seed_small_ws s;
    return seed_small_layout(&s, NULL, T, I, H);
}

/* Forward from the zero state: hidden (T, H) out; cell (T, H) and gates (T, G) (the activated
 * gates) out too when not NULL. A constant nb (the callers' cases) keeps the accumulators in
 * registers. */
FL_INLINE void seed_small_forward_nb(const int nb, real *ws, const real *w, const real *b,
                                     const real *x, int T, int I, int H, real *hidden,
                                     real *cell, real *gates)
{
    seed_small_ws s;
    seed_small_layout(&s, ws, T, I, H);
    const int Hp = nb * FL_VL, K = H + I, nv = 4 * nb;
    cellcfg cf;
    memset(&cf, 0, sizeof cf);
    cf.clip15 = 1;
    cf.act = FL_ACT_TANH;
    for (int k = 0; k < K; k++)
        for (int q = 0; q < 4; q++)
            for (int u = 0; u < Hp; u++)
                s.p[((long long)k * 4 + q) * Hp + u] = u < H ? w[(long long)(q * H + u) * K + k] : 0;
    for (int j = 0; j < 4 * H; j++)
        for (int u = 0; u < Hp; u++) s.wn[(long long)j * Hp + u] = u < H ? w[(long long)j * K + u] : 0;
    for (int q = 0; q < 4; q++)
        for (int u = 0; u < Hp; u++) s.bp[q * Hp + u] = u < H ? b[q * H + u] : 0;
    for (int u = 0; u < Hp; u++) s.hs[u] = s.cs[u] = 0;
    for (int t = 0; t < T; t++) {
        const real *hp = s.hs + (long long)t * Hp, *xt = x + (long long)t * I;
        vreal acc[4 * FL_SEED_NB];
        for (int v = 0; v < nv; v++) acc[v] = v_load(s.bp + v * FL_VL);
        for (int k = 0; k < K; k++) {
            const real a = k < H ? hp[k] : xt[k - H];
            const real *pk = s.p + (long long)k * 4 * Hp;
            for (int v = 0; v < nv; v++) acc[v] += a * v_load(pk + v * FL_VL);
        }
        real *gt = s.gs + (long long)t * 4 * Hp;
        for (int ub = 0; ub < nb; ub++) {
            const int u = ub * FL_VL, n = H - u < FL_VL ? H - u : FL_VL;
            vreal zi = acc[ub], zf = acc[nb + ub], zg = acc[2 * nb + ub], zo = acc[3 * nb + ub];
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
            if (gates)
                for (int q = 0; q < 4; q++)
                    v_store_upto(gates + (long long)t * 4 * H + q * H + u,
                                 q == 0 ? zi : q == 1 ? zf : q == 2 ? zg : zo, n);
        }
    }
}

/* Backward of the sequence the last forward ran (its workspace): dy (T, H), the gradient
 * reaching each h_t from the head; dW (G, H + I) and db (G) out (overwritten). */
FL_INLINE void seed_small_backward_nb(const int nb, real *ws, const real *x, const real *dy,
                                      int T, int I, int H, real *dw, real *db)
{
    seed_small_ws s;
    seed_small_layout(&s, ws, T, I, H);
    const int Hp = nb * FL_VL, K = H + I, nv = 4 * nb;
    cellcfg cf;
    memset(&cf, 0, sizeof cf);
    cf.clip15 = 1;
    cf.act = FL_ACT_TANH;
    vreal dh_next[FL_SEED_NB], dc[FL_SEED_NB];
    for (int ub = 0; ub < nb; ub++) dh_next[ub] = dc[ub] = v_zero();
    for (int t = T - 1; t >= 0; t--) {
        const real *gt = s.gs + (long long)t * 4 * Hp;
        real *dzt = s.dz + (long long)t * 4 * Hp;
        for (int ub = 0; ub < nb; ub++) {
            const int u = ub * FL_VL, n = H - u < FL_VL ? H - u : FL_VL;
            const vreal d_h = dh_next[ub] + v_load_upto(dy + (long long)t * H + u, n);
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
        /* dL/dh_{t-1} = sum over the gates' rows j of dz_j W[j][0, H): a chain per gate. */
        vreal dh4[4][FL_SEED_NB];
        for (int q = 0; q < 4; q++) {
            for (int ub = 0; ub < nb; ub++) dh4[q][ub] = v_zero();
            for (int u = 0; u < H; u++) {
                const real dzj = dzt[q * Hp + u];
                const real *row = s.wn + (long long)(q * H + u) * Hp;
                for (int ub = 0; ub < nb; ub++) dh4[q][ub] += dzj * v_load(row + ub * FL_VL);
            }
        }
        for (int ub = 0; ub < nb; ub++)
            dh_next[ub] = (dh4[0][ub] + dh4[1][ub]) + (dh4[2][ub] + dh4[3][ub]);
    }
    /* dW[:, k] = sum_t dz_t [h_{t-1}, x_t][k], db = sum_t dz_t: each over t in order. */
    for (int k = 0; k <= K; k++) {
        vreal acc[4 * FL_SEED_NB];
        for (int v = 0; v < nv; v++) acc[v] = v_zero();
        for (int t = 0; t < T; t++) {
            const real a = k == K ? R(1)
                         : k < H ? s.hs[(long long)t * Hp + k] : x[(long long)t * I + k - H];
            const real *dzt = s.dz + (long long)t * 4 * Hp;
            for (int v = 0; v < nv; v++) acc[v] += a * v_load(dzt + v * FL_VL);
        }
        for (int v = 0; v < nv; v++) v_store(s.tmp + v * FL_VL, acc[v]);
        for (int q = 0; q < 4; q++)
            for (int u = 0; u < H; u++) {
                if (k == K) db[q * H + u] = s.tmp[q * Hp + u];
                else dw[(long long)(q * H + u) * K + k] = s.tmp[q * Hp + u];
            }
    }
}

static fl_status k_seed_small_forward(real *ws, const real *w, const real *b, const real *x,
                                      int T, int I, int H, real *hidden, real *cell,
                                      real *gates)
{
    if (k_seed_small_size(T, I, H) < 0 || !ws || !w || !b || !x || !hidden) return FL_ERR_ARG;
#define FL_NB_CASE(N)                                                                          \
    case N: seed_small_forward_nb(N, ws, w, b, x, T, I, H, hidden, cell, gates); break;
    switch ((H + FL_VL - 1) / FL_VL) {
        FL_NB_CASE(1) FL_NB_CASE(2) FL_NB_CASE(3) FL_NB_CASE(4)
    default:
        seed_small_forward_nb((H + FL_VL - 1) / FL_VL, ws, w, b, x, T, I, H, hidden, cell, gates);
    }
#undef FL_NB_CASE
    return FL_OK;
}

static fl_status k_seed_small_backward(real *ws, const real *x, const real *dy, int T, int I,
                                       int H, real *dw, real *db)
{
    if (k_seed_small_size(T, I, H) < 0 || !ws || !x || !dy || !dw || !db) return FL_ERR_ARG;
#define FL_NB_CASE(N)                                                                          \
    case N: seed_small_backward_nb(N, ws, x, dy, T, I, H, dw, db); break;
    switch ((H + FL_VL - 1) / FL_VL) {
        FL_NB_CASE(1) FL_NB_CASE(2) FL_NB_CASE(3) FL_NB_CASE(4)
    default:
        seed_small_backward_nb((H + FL_VL - 1) / FL_VL, ws, x, dy, T, I, H, dw, db);
    }
#undef FL_NB_CASE
    return FL_OK;
}
