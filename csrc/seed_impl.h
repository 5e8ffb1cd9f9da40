/* seed_impl.h: the body of seed.c for one width (included twice, no include guard). */

/* One sequence of the seed model: T steps, batch 1, on the caller's ISA path, threads and
 * report (run: NULL for one thread, no report: packing, and training, where a step is too small
 * for a team). */
static void FL_FN(seed_args)(fl_exec *ex, fl_dims *d, fl_cell *cell, FL_FN(fl_weights) *wt,
                             int isa, const fl_exec *run, const real *w, const real *b,
                             const real *packed, int T, int I, int H)
{
    ex->isa = isa;
    ex->threads = run ? run->threads : 1;
    ex->split = run ? run->split : FL_SPLIT_AUTO;
    /* A batch of one runs the unit-block step: as fast as the panel step here (T=50, I=32,
     * H=128: 5.9 against 5.9 us a step, one thread, AVX-512), faster at the seed's H=10, and
     * what the units split runs; so forward packs W_hh in that one layout. */
    ex->step = run && run->step != FL_STEP_AUTO ? run->step : FL_STEP_TILE;
    ex->stats = run ? run->stats : NULL;
    if (run) ex->gemm = run->gemm;
    else memset(&ex->gemm, 0, sizeof ex->gemm);
    ex->fixed_team = run ? run->fixed_team : 0;
    d->T = T; d->B = 1; d->I = I; d->H = H;
    memset(cell, 0, sizeof *cell);
    cell->sigmoid = FL_SIGMOID_CLIP15;
    cell->activation = FL_ACT_TANH;
    wt->w_ih = w + H; wt->ld_ih = H + I;
    wt->w_hh = w; wt->ld_hh = H + I;
    wt->bias = b;
    wt->peephole = NULL;
    wt->packed = packed;
}

fl_status FL_FN(fl_seed_forward)(const fl_exec *run, real *hidden, real *cell, real *gates,
                                 real *outputs, real *packed, const real *x, const real *w,
                                 const real *b, const real *wy, const real *by, int T, int I,
                                 int H, int O)
{
    if (!run) return FL_ERR_ARG;
    const int isa = run->isa;
    if (T < 0 || I < 1 || H < 1 || O < 1 || !hidden || !cell || !gates || !x || !w || !b ||
        !wy || !by || !packed)
        return FL_ERR_ARG;
    fl_exec ex; fl_dims d; fl_cell c; FL_FN(fl_weights) wt;
    FL_FN(seed_args)(&ex, &d, &c, &wt, isa, run, w, b, packed, T, I, H);
    /* What this forward reads (backward packs what it reads itself: the weights may change in
     * between). ex.step = FL_STEP_TILE runs the unit-block step whatever the split. */
    const int parts = FL_PACK_WX | FL_PACK_UF | (ex.step == FL_STEP_PANELS ? FL_PACK_UP : 0);
    fl_status st = FL_FN(fl_pack_weights_parts)(isa, packed, &wt, I, H, parts);
    if (st != FL_OK) return st;
    FL_FN(fl_fwd_bufs) f = {hidden, H, cell, gates, NULL, x, I, NULL, NULL};
    st = FL_FN(fl_seq_forward)(&ex, &d, &c, &wt, &f);
    if (st != FL_OK || outputs == NULL) return st;
    /* outputs (T, O) = hidden (T, H) @ Wy^T + by */
    for (int t = 0; t < T; t++) memcpy(outputs + (long long)t * O, by, sizeof(real) * (size_t)O);
    FL_FN(fl_gemm_naive)(0, 1, T, O, H, 1, hidden, H, wy, H, 1, outputs, O);
    return FL_OK;
}

static long long FL_FN(seed_small_size)(int isa, int T, int I, int H, int O,
                                        long long *n_weights);

long long FL_FN(fl_seed_workspace_size)(int isa, int T, int I, int H, int O)
{
    const long long G = 4LL * H, K = (long long)H + I;
    const fl_dims d = {T, 1, I, H};
    const long long scratch = FL_FN(fl_bwd_scratch_size)(isa, &d);
    if (scratch < 0) return -1;
    /* err (T, O), dy (T, H), d_gates (T, G), dW (G, K), db (G), dWy (O, H), dby (O), the
     * sequence backward's scratch: the order of the views in fl_seed_backward; or, if larger,
     * what fl_seed_train needs for a small model (seed_small_size). */
    const long long general = (long long)T * O + (long long)T * H + (long long)T * G + G * K +
                              G + (long long)O * H + O + scratch;
    const long long step = FL_FN(seed_small_size)(isa, T, I, H, O, NULL);
    return step > general ? step : general;
}

#include "fl_finite.h"

/* 1 when no value is NaN (infinities allowed): x != x only for NaN; masks OR-ed, 16 bytes at
 * a time. */
static int FL_FN(no_nan)(const real *v, long long n)
{
    typedef real v16 __attribute__((vector_size(16)));
#if FL_REAL_IS_DOUBLE
    typedef long long m16 __attribute__((vector_size(16)));
#else
    typedef int m16 __attribute__((vector_size(16)));
#endif
    const int L = (int)(16 / sizeof(real));
    m16 bad = {0};
    long long k = 0;
    for (; k + L <= n; k += L) {
        v16 x;
        memcpy(&x, v + k, 16);
        bad |= x != x;
    }
    int any = 0;
    for (int j = 0; j < L; j++) any |= bad[j] != 0;
    for (; k < n; k++) any |= v[k] != v[k];
    return !any;
}

/* The seed's head and loss on hidden (T, H): err (T, O) = Wy h_t + by - target_t, the loss
 * sum_t |err_t|^2 / 2 summed from the last step to the first as the seed's loop does, dWy (O, H),
 * dby (O) and dy (T, H) = err Wy, the gradient reaching each h_t. FL_ERR_NONFINITE for a loss
 * that is not finite. The general path's (backward, and train beyond fl_seed_small.h's sizes);
 * the small model's path has the head and the update in fl_seed_small.h. */
static fl_status FL_FN(seed_head)(const real *wy, const real *by, const real *hidden,
                                  const real *targets, int T, int H, int O, real *err,
                                  real *dwy, real *dby, real *dy, double *total_out)
{
    /* The products as fl_gemm_naive forms them (each sum over its inner index in order, from
     * the bias or from 0), written out for the head's small shapes. */
    for (int t = 0; t < T; t++) {
        const real *ht = hidden + (long long)t * H;
        for (int k = 0; k < O; k++) {
            const real *wk = wy + (long long)k * H;
            real acc = by[k];
            for (int p = 0; p < H; p++) acc += ht[p] * wk[p];
            err[(long long)t * O + k] = acc;
        }
    }
    double total = 0;
    for (int t = T - 1; t >= 0; t--) {
        double step = 0;
        for (int k = 0; k < O; k++) {
            real e = err[(long long)t * O + k] - targets[(long long)t * O + k];
            err[(long long)t * O + k] = e;
            step += (double)e * (double)e;
        }
        total += step / 2;
    }
    if (!isfinite(total)) return FL_ERR_NONFINITE;
    /* dWy (O, H) = E^T H, dby = sum_t E, dY (T, H) = E Wy */
    for (long long k = 0; k < (long long)O * H; k++) dwy[k] = 0;
    for (int k = 0; k < O; k++) dby[k] = 0;
    for (int t = 0; t < T; t++) {
        const real *ht = hidden + (long long)t * H, *et = err + (long long)t * O;
        for (int k = 0; k < O; k++) {
            real *dk = dwy + (long long)k * H;
            for (int p = 0; p < H; p++) dk[p] += et[k] * ht[p];
            dby[k] += et[k];
        }
    }
    for (int t = 0; t < T; t++) {
        const real *et = err + (long long)t * O;
        real *dt = dy + (long long)t * H;
        for (int p = 0; p < H; p++) dt[p] = 0;
        for (int k = 0; k < O; k++)
            for (int p = 0; p < H; p++) dt[p] += et[k] * wy[(long long)k * H + p];
    }
    *total_out = total;
    return FL_OK;
}

/* The seed's update from the gradients of w (n_w values), b (n_b), wy (O, H), by (O), one
 * contiguous run at grads in that order: every gradient clipped to [-clip, clip] (an infinite
 * one to +-clip, as in the seed), and if any is NaN after that (or non-finite, with clip = none)
 * nothing changes; else SGD. The general path's (k_seed_small_apply is the small model's). */
static fl_status FL_FN(seed_apply)(real *w, long long n_w, real *b, long long n_b, real *wy,
                                   real *by, real *grads, int H, int O, real lr, real clip)
{
    const long long n_grads = n_w + n_b + (long long)O * H + O;
    real *dw = grads, *db = dw + n_w, *dwy = db + n_b, *dby = dwy + (long long)O * H;
    /* Clipping turns every infinity into +-clip and keeps NaN: so with clip > 0 only a NaN
     * stops, without it any non-finite value. Then one pass clips and updates. */
    if (!(clip > 0 ? FL_FN(no_nan)(grads, n_grads) : FL_FN(all_finite)(grads, n_grads)))
        return FL_ERR_NONFINITE;
    real *p[4] = {w, b, wy, by};
    real *g[4] = {dw, db, dwy, dby};
    const long long n[4] = {n_w, n_b, (long long)O * H, O};
    for (int j = 0; j < 4; j++) {
        real *pj = p[j];
        const real *gj = g[j];
        if (clip > 0)
            for (long long k = 0; k < n[j]; k++) {
                const real x = gj[k];
                pj[k] -= lr * (x < -clip ? -clip : (x > clip ? clip : x));
            }
        else
            for (long long k = 0; k < n[j]; k++) pj[k] -= lr * gj[k];
    }
    return FL_OK;
}

/* Workspace of fl_seed_train's small-model path for sequences of up to T steps
 * (fl_seed_small.h's: the kept model first, its gradients last). -1 where it does not apply. */
static long long FL_FN(seed_small_size)(int isa, int T, int I, int H, int O,
                                        long long *n_weights)
{
    const FL_FN(fl_kernels) *k = FL_FN(fl_kernels_of)(isa);
    return k ? k->seed_small_size(T, I, H, O, n_weights) : -1;
}

fl_status FL_FN(fl_seed_backward)(const fl_exec *run, real *w, real *b, real *wy, real *by,
                                  double *loss, real *workspace, real *packed,
                                  const real *targets, const real *x, const real *hidden,
                                  const real *cell, const real *gates, int T, int I, int H, int O,
                                  real lr, real clip)
{
    if (!run) return FL_ERR_ARG;
    const int isa = run->isa;
    if (T < 1 || I < 1 || H < 1 || O < 1 || !w || !b || !wy || !by || !loss || !workspace ||
        !targets || !x || !hidden || !cell || !gates || !packed)
        return FL_ERR_ARG;
    const int G = 4 * H, K = H + I;
    /* Workspace views, in the order fl_seed_workspace_size counts them. */
    real *err = workspace;                      /* (T, O)  y_t - target_t */
    real *dy = err + (long long)T * O;          /* (T, H)  dL/dh_t from the head */
    real *d_gates = dy + (long long)T * H;      /* (T, G) */
    real *dw = d_gates + (long long)T * G;      /* (G, K) */
    real *db = dw + (long long)G * K;           /* (G) */
    real *dwy = db + G;                         /* (O, H) */
    real *dby = dwy + (long long)O * H;         /* (O) */
    real *scratch = dby + O;                    /* fl_bwd_scratch_size */

    /* The outputs are recomputed with the current head, as the seed's backward does (they differ
     * from forward's after an update: a second backward, or a backward after train). */
    double total = 0;
    if (FL_FN(seed_head)(wy, by, hidden, targets, T, H, O, err, dwy, dby, dy, &total) != FL_OK)
        return FL_ERR_NONFINITE;

    /* The recurrence; dW_hh and dW_ih land in their column blocks of dW. */
    fl_exec ex; fl_dims d; fl_cell c; FL_FN(fl_weights) wt;
    FL_FN(seed_args)(&ex, &d, &c, &wt, isa, run, w, b, packed, T, I, H);
    /* W_hh as dL/dh_{t-1} reads it, from the weights as they are now (no dL/dx here) */
    fl_status st = FL_FN(fl_pack_weights_parts)(isa, packed, &wt, I, H, FL_PACK_UB);
    if (st != FL_OK) return st;
    FL_FN(fl_fwd_bufs) f = {(real *)hidden, H, (real *)cell, (real *)gates, NULL, x, I, NULL, NULL};
    FL_FN(fl_bwd_bufs) bw;
    memset(&bw, 0, sizeof bw);
    bw.dw_ih = dw + H; bw.ld_dw_ih = K;
    bw.dw_hh = dw; bw.ld_dw_hh = K;
    bw.dbias = db;
    bw.d_gates = d_gates;
    bw.scratch = scratch;
    bw.dy = dy; bw.ld_dy = H;
    st = FL_FN(fl_seq_backward)(&ex, &d, &c, &wt, &f, &bw);
    if (st != FL_OK) return st;
    /* dW, db, dWy, dby are one contiguous run of the workspace. */
    st = FL_FN(seed_apply)(w, (long long)G * K, b, G, wy, by, dw, H, O, lr, clip);
    if (st != FL_OK) return st;
    *loss = total / T;
    return FL_OK;
}

fl_status FL_FN(fl_seed_train)(int isa, real *w, real *b, real *wy, real *by, double *epoch_loss,
                               int *done_epochs, int *done_seqs, real *hidden, real *cell,
                               real *gates, real *packed, real *workspace, const real *x_all,
                               const real *y_all, const long long *offsets, int n_seq,
                               int epochs, int I, int H, int O, real lr, real clip)
{
    if (n_seq < 1 || epochs < 0 || !epoch_loss || !done_epochs || !done_seqs || !offsets ||
        !x_all || !y_all)
        return FL_ERR_ARG;
    *done_epochs = 0;
    *done_seqs = 0;
    int t_max = 0;
    for (int s = 0; s < n_seq; s++)
        if (offsets[s + 1] - offsets[s] > t_max) t_max = (int)(offsets[s + 1] - offsets[s]);
    /* The caller's workspace is fl_seed_workspace_size(.., t_max, ..): enough for the small
     * model's path, which keeps W and b in its own layout for the whole call. */
    const FL_FN(fl_kernels) *kt = FL_FN(fl_kernels_of)(isa);
    const long long small = FL_FN(seed_small_size)(isa, t_max, I, H, O, NULL);
    const fl_exec one = {isa, 1, FL_SPLIT_AUTO, FL_STEP_AUTO, NULL};
    if (small > 0) kt->seed_small_weights(workspace, w, b, wy, by, t_max, I, H, O, 1);
    fl_status st = FL_OK;
    for (int e = 0; e < epochs && st == FL_OK; e++) {
        double total = 0;
        for (int s = 0; s < n_seq; s++) {
            const long long start = offsets[s];
            const int T = (int)(offsets[s + 1] - start);
            const real *x = x_all + start * I, *targets = y_all + start * O;
            double loss = 0;
            if (small > 0) {
                /* no products, the head and the update inside (fl_seed_small.h); the last
                 * sequence's forward stays readable (hidden, cell, gates), as after the
                 * general path */
                const int last = e == epochs - 1 && s == n_seq - 1;
                double sum = 0;
                st = kt->seed_small_forward(workspace, x, targets, T, t_max, I, H, O,
                                            last ? hidden : NULL, last ? cell : NULL,
                                            last ? gates : NULL, &sum);
                if (st == FL_OK) st = kt->seed_small_backward(workspace, x, T, t_max, I, H, O);
                if (st == FL_OK) st = kt->seed_small_apply(workspace, t_max, I, H, O, lr, clip);
                loss = sum / T;
            } else {
                /* No outputs here: backward computes them with the head it is about to update. */
                st = FL_FN(fl_seed_forward)(&one, hidden, cell, gates, NULL, packed, x, w, b, wy,
                                            by, T, I, H, O);
                if (st == FL_OK)
                    st = FL_FN(fl_seed_backward)(&one, w, b, wy, by, &loss, workspace, packed,
                                                 targets, x, hidden, cell, gates, T, I, H, O, lr,
                                                 clip);
            }
            if (st != FL_OK) break;
            total += loss;
            *done_seqs = s + 1;
        }
        if (st != FL_OK) break;
        epoch_loss[e] = total / n_seq;
        *done_epochs = e + 1;
        *done_seqs = 0;
    }
    /* the kept weights back into W and b: the last finite ones, whatever stopped the loop */
    if (small > 0) kt->seed_small_weights(workspace, w, b, wy, by, t_max, I, H, O, 0);
    return st;
}
