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
    ex->stats = run ? run->stats : NULL;
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
    fl_status st = FL_FN(fl_pack_weights)(isa, packed, &wt, I, H);
    if (st != FL_OK) return st;
    FL_FN(fl_fwd_bufs) f = {hidden, H, cell, gates, NULL, x, I, NULL, NULL};
    st = FL_FN(fl_seq_forward)(&ex, &d, &c, &wt, &f);
    if (st != FL_OK || outputs == NULL) return st;
    /* outputs (T, O) = hidden (T, H) @ Wy^T + by */
    for (int t = 0; t < T; t++) memcpy(outputs + (long long)t * O, by, sizeof(real) * (size_t)O);
    FL_FN(fl_gemm_naive)(0, 1, T, O, H, 1, hidden, H, wy, H, 1, outputs, O);
    return FL_OK;
}

fl_status FL_FN(fl_seed_pack)(int isa, real *packed, const real *w, int I, int H)
{
    if (!packed || !w || I < 1 || H < 1) return FL_ERR_ARG;
    fl_exec ex; fl_dims d; fl_cell c; FL_FN(fl_weights) wt;
    FL_FN(seed_args)(&ex, &d, &c, &wt, isa, NULL, w, NULL, packed, 1, I, H); /* no bias */
    return FL_FN(fl_pack_weights)(isa, packed, &wt, I, H);
}

long long FL_FN(fl_seed_workspace_size)(int isa, int T, int I, int H, int O)
{
    const long long G = 4LL * H, K = (long long)H + I;
    const fl_dims d = {T, 1, I, H};
    const long long scratch = FL_FN(fl_bwd_scratch_size)(isa, &d);
    if (scratch < 0) return -1;
    /* err (T, O), dy (T, H), d_gates (T, G), dW (G, K), db (G), dWy (O, H), dby (O), the
     * sequence backward's scratch: the order of the views in fl_seed_backward; or, if larger,
     * what fl_seed_step needs (fl_seed_train takes it for small models). */
    const long long general = (long long)T * O + (long long)T * H + (long long)T * G + G * K +
                              G + (long long)O * H + O + scratch;
    const long long step = FL_FN(fl_seed_step_size)(isa, T, I, H, O);
    return step > general ? step : general;
}

/* 1 when no value is NaN or inf: v - v is 0 for finite v and NaN otherwise. A flag, not a
 * floating-point sum, so the loop vectorises (no order of additions to keep). */
static int FL_FN(all_finite)(const real *v, long long n)
{
    int ok = 1;
    for (long long k = 0; k < n; k++) ok &= v[k] - v[k] == 0;
    return ok;
}

/* The seed's head and loss on hidden (T, H): err (T, O) = Wy h_t + by - target_t, the loss
 * sum_t |err_t|^2 / 2 summed from the last step to the first as the seed's loop does, dWy (O, H),
 * dby (O) and dy (T, H) = err Wy, the gradient reaching each h_t. FL_ERR_NONFINITE for a loss
 * that is not finite. Plain loops (this file has no fused multiply-add), so both training
 * paths round alike. */
static fl_status FL_FN(seed_head)(const real *wy, const real *by, const real *hidden,
                                  const real *targets, int T, int H, int O, real *err,
                                  real *dwy, real *dby, real *dy, double *total_out)
{
    for (int t = 0; t < T; t++) memcpy(err + (long long)t * O, by, sizeof(real) * (size_t)O);
    FL_FN(fl_gemm_naive)(0, 1, T, O, H, 1, hidden, H, wy, H, 1, err, O);
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
    FL_FN(fl_gemm_naive)(1, 0, O, H, T, 1, err, O, hidden, H, 0, dwy, H);
    for (int k = 0; k < O; k++) dby[k] = 0;
    for (int t = 0; t < T; t++)
        for (int k = 0; k < O; k++) dby[k] += err[(long long)t * O + k];
    FL_FN(fl_gemm_naive)(0, 0, T, H, O, 1, err, O, wy, H, 0, dy, H);
    *total_out = total;
    return FL_OK;
}

/* The seed's update from the gradients dW (G, K), db (G), dWy (O, H), dby (O), one contiguous
 * run at grads: clip first (an infinite gradient clips to +-clip, as in the seed), then check
 * (a NaN, or an inf left by clip = none, stops before any weight changes), then SGD. */
static fl_status FL_FN(seed_apply)(real *w, real *b, real *wy, real *by, real *grads, int G,
                                   int K, int H, int O, real lr, real clip)
{
    const long long n_grads = (long long)G * K + G + (long long)O * H + O;
    const real *dw = grads, *db = dw + (long long)G * K, *dwy = db + G;
    const real *dby = dwy + (long long)O * H;
    if (clip > 0)
        for (long long k = 0; k < n_grads; k++) {
            const real g = grads[k];
            grads[k] = g < -clip ? -clip : (g > clip ? clip : g); /* NaN stays NaN, as np.clip */
        }
    if (!FL_FN(all_finite)(grads, n_grads)) return FL_ERR_NONFINITE;
    for (long long k = 0; k < (long long)G * K; k++) w[k] -= lr * dw[k];
    for (int k = 0; k < G; k++) b[k] -= lr * db[k];
    for (long long k = 0; k < (long long)O * H; k++) wy[k] -= lr * dwy[k];
    for (int k = 0; k < O; k++) by[k] -= lr * dby[k];
    return FL_OK;
}

fl_status FL_FN(fl_seed_backward)(const fl_exec *run, real *w, real *b, real *wy, real *by,
                                  double *loss, real *workspace, const real *packed,
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
    FL_FN(fl_fwd_bufs) f = {(real *)hidden, H, (real *)cell, (real *)gates, NULL, x, I, NULL, NULL};
    FL_FN(fl_bwd_bufs) bw;
    memset(&bw, 0, sizeof bw);
    bw.dw_ih = dw + H; bw.ld_dw_ih = K;
    bw.dw_hh = dw; bw.ld_dw_hh = K;
    bw.dbias = db;
    bw.d_gates = d_gates;
    bw.scratch = scratch;
    bw.dy = dy; bw.ld_dy = H;
    fl_status st = FL_FN(fl_seq_backward)(&ex, &d, &c, &wt, &f, &bw);
    if (st != FL_OK) return st;
    /* dW, db, dWy, dby are one contiguous run of the workspace. */
    st = FL_FN(seed_apply)(w, b, wy, by, dw, G, K, H, O, lr, clip);
    if (st != FL_OK) return st;
    *loss = total / T;
    return FL_OK;
}

long long FL_FN(fl_seed_step_size)(int isa, int T, int I, int H, int O)
{
    const FL_FN(fl_kernels) *k = FL_FN(fl_kernels_of)(isa);
    if (!k || O < 1) return -1;
    const long long small = k->seed_small_size(T, I, H);
    if (small < 0) return -1;
    const long long G = 4LL * H, K = (long long)H + I;
    /* the recurrence's, err (T, O), dy (T, H), dW (G, K), db (G), dWy (O, H), dby (O) */
    return small + (long long)T * O + (long long)T * H + G * K + G + (long long)O * H + O;
}

fl_status FL_FN(fl_seed_step)(int isa, real *w, real *b, real *wy, real *by, double *loss,
                              real *workspace, real *hidden, real *cell, real *gates,
                              const real *x, const real *targets, int T, int I, int H, int O,
                              real lr, real clip)
{
    const FL_FN(fl_kernels) *k = FL_FN(fl_kernels_of)(isa);
    if (!k) return FL_ERR_ISA;
    const long long small = k->seed_small_size(T, I, H);
    if (small < 0 || O < 1 || !w || !b || !wy || !by || !loss || !workspace || !hidden || !x ||
        !targets)
        return FL_ERR_ARG;
    const int G = 4 * H, K = H + I;
    real *err = workspace + small;                 /* (T, O) */
    real *dy = err + (long long)T * O;             /* (T, H) */
    real *dw = dy + (long long)T * H;              /* (G, K), then db, dWy, dby */
    real *db = dw + (long long)G * K;
    real *dwy = db + G;
    real *dby = dwy + (long long)O * H;
    fl_status st = k->seed_small_forward(workspace, w, b, x, T, I, H, hidden, cell, gates);
    if (st != FL_OK) return st;
    double total = 0;
    if (FL_FN(seed_head)(wy, by, hidden, targets, T, H, O, err, dwy, dby, dy, &total) != FL_OK)
        return FL_ERR_NONFINITE;
    st = k->seed_small_backward(workspace, x, dy, T, I, H, dw, db);
    if (st != FL_OK) return st;
    st = FL_FN(seed_apply)(w, b, wy, by, dw, G, K, H, O, lr, clip);
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
    /* the caller's workspace is fl_seed_workspace_size(.., t_max, ..): enough for the step */
    const int small = FL_FN(fl_seed_step_size)(isa, t_max, I, H, O) > 0;
    const fl_exec one = {isa, 1, FL_SPLIT_AUTO, NULL};
    for (int e = 0; e < epochs; e++) {
        double total = 0;
        for (int s = 0; s < n_seq; s++) {
            const long long start = offsets[s];
            const int T = (int)(offsets[s + 1] - start);
            const real *x = x_all + start * I;
            double loss = 0;
            fl_status st;
            if (small) { /* one pass, no products (fl_seed_small.h) */
                /* the last sequence's forward stays readable (its cell and gates too) */
                const int last = e == epochs - 1 && s == n_seq - 1;
                st = FL_FN(fl_seed_step)(isa, w, b, wy, by, &loss, workspace, hidden,
                                         last ? cell : NULL, last ? gates : NULL, x,
                                         y_all + start * O, T, I, H, O, lr, clip);
                if (st != FL_OK) return st;
                total += loss;
                *done_seqs = s + 1;
                continue;
            }
            /* No outputs here: backward computes them with the head it is about to update. */
            st = FL_FN(fl_seed_forward)(&one, hidden, cell, gates, NULL, packed, x, w, b, wy, by,
                                        T, I, H, O);
            if (st == FL_OK)
                st = FL_FN(fl_seed_backward)(&one, w, b, wy, by, &loss, workspace, packed,
                                             y_all + start * O, x, hidden, cell, gates, T, I, H,
                                             O, lr, clip);
            if (st != FL_OK) return st;
            total += loss;
            *done_seqs = s + 1;
        }
        epoch_loss[e] = total / n_seq;
        *done_epochs = e + 1;
        *done_seqs = 0;
    }
    return FL_OK;
}
