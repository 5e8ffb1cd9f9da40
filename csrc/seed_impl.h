/*
 * seed_impl.h: the seed model of notebook 001 (fastlstm.LSTM) on the sequence kernels, written
 * once for `real` and compiled twice with lstm_impl.h.
 *
 * The seed's W_f, W_i, W_c, W_o (H, H+I) act on [h_{t-1}, x_t]; fastlstm.LSTM keeps them as row
 * blocks of one W (G, H+I) in gate order i, f, g, o, so W_hh is columns [0, H) and W_ih columns
 * [H, H+I) of it, both with leading dimension H+I: the sequence kernels take them as they are.
 * Math as the seed: zero initial state, clipped sigmoid, y_t = Wy h_t + by, loss
 * sum_t |y_t - target_t|^2 / 2, every gradient clipped to [-clip, clip], plain SGD.
 */

fl_status FL_FN(fl_seed_forward)(real *hidden, real *cell, real *gates, real *outputs,
                                 real *w_t, const real *x, const real *w, const real *b,
                                 const real *wy, const real *by, int T, int I, int H, int O,
                                 FL_FN(fl_gemm) gemm)
{
    if (T < 0 || I < 1 || H < 1 || O < 1 || !hidden || !cell || !gates || !x || !w || !b ||
        !wy || !by)
        return FL_ERR_ARG;
    const int K = H + I;
    fl_status st = FL_FN(fl_seq_forward)(hidden, H, cell, gates, NULL, w_t, x, I, NULL, NULL,
                                         w + H, K, w, K, b, T, 1, I, H, 0, FL_SIGMOID_CLIP15,
                                         FL_ACT_TANH, NULL, gemm);
    if (st != FL_OK || outputs == NULL) return st;
    /* outputs (T, O) = hidden (T, H) @ Wy^T + by */
    FL_FN(fill_rows)(outputs, by, T, O);
    FL_FN(gemm)(gemm, 0, 1, T, O, H, 1, hidden, H, wy, H, 1, outputs, O);
    return FL_OK;
}

/* 1 when no value is NaN or inf: x * 0 is 0 for finite x and NaN otherwise. */
static int FL_FN(all_finite)(const real *v, long long n)
{
    real acc = 0;
    for (long long k = 0; k < n; k++) acc += v[k] * 0;
    return acc == 0;
}

/* Clip to [-clip, clip] in place (clip <= 0: no clipping); NaN stays NaN, as in np.clip. */
static void FL_FN(clip)(real *grad, long long n, real clip)
{
    if (clip <= 0) return;
    for (long long k = 0; k < n; k++) {
        const real g = grad[k];
        grad[k] = g < -clip ? -clip : (g > clip ? clip : g);
    }
}

/* One SGD step: p -= lr * g. */
static void FL_FN(sgd_step)(real *param, const real *grad, long long n, real lr)
{
    for (long long k = 0; k < n; k++) param[k] -= lr * grad[k];
}

fl_status FL_FN(fl_seed_backward)(real *w, real *b, real *wy, real *by, double *loss,
                                  real *workspace, const real *targets, const real *x,
                                  const real *hidden, const real *cell, const real *gates,
                                  int T, int I, int H, int O, real lr, real clip,
                                  FL_FN(fl_gemm) gemm)
{
    if (T < 1 || I < 1 || H < 1 || O < 1 || !w || !b || !wy || !by || !loss || !workspace ||
        !targets || !x || !hidden || !cell || !gates)
        return FL_ERR_ARG;
    const int G = 4 * H, K = H + I;
    /* Workspace views, in the order fl_seed_workspace_size counts them. */
    real *err = workspace;                      /* (T, O)  y_t - target_t */
    real *dy = err + (long long)T * O;          /* (T, H)  dL/dh_t from the head */
    real *d_gates = dy + (long long)T * H;      /* (T, G) */
    real *dh = d_gates + (long long)T * G;      /* (H) */
    real *dc = dh + H;                          /* (H) */
    real *dw = dc + H;                          /* (G, K) */
    real *db = dw + (long long)G * K;           /* (G) */
    real *dwy = db + G;                         /* (O, H) */
    real *dby = dwy + (long long)O * H;         /* (O) */
    real *dw_t = dby + O;                       /* fl_seq_workspace_size(I, H) */

    /* The outputs are recomputed with the current head, as the seed's backward does (they differ
     * from forward's after an update: a second backward, or a backward after train). Loss,
     * summed from the last step to the first as the seed's loop does. */
    FL_FN(fill_rows)(err, by, T, O);
    FL_FN(gemm)(gemm, 0, 1, T, O, H, 1, hidden, H, wy, H, 1, err, O);
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

    /* Head: dWy (O, H) = E^T H, dby = sum_t E, dY (T, H) = E (T, O) @ Wy (O, H). */
    FL_FN(gemm)(gemm, 1, 0, O, H, T, 1, err, O, hidden, H, 0, dwy, H);
    for (int k = 0; k < O; k++) dby[k] = 0;
    for (int t = 0; t < T; t++)
        for (int k = 0; k < O; k++) dby[k] += err[(long long)t * O + k];
    FL_FN(gemm)(gemm, 0, 0, T, H, O, 1, err, O, wy, H, 0, dy, H);

    /* The recurrence; dW_hh and dW_ih land in their column blocks of dW. */
    fl_status st = FL_FN(fl_seq_backward)(NULL, I, NULL, NULL, dw + H, K, dw, K, db, d_gates, dh,
                                          dc, dw_t, dy, H, NULL, NULL, x, I, NULL, NULL, hidden, H,
                                          cell, gates, w + H, K, w, K, T, 1, I, H, 0, FL_ACT_TANH,
                                          NULL, gemm);
    if (st != FL_OK) return st;
    /* Clip first (an infinite gradient clips to +-clip, as in the seed), then check: a NaN, or
     * an inf left by clip = none, stops before any weight changes. dW, db, dWy, dby are one
     * contiguous run of the workspace. */
    const long long n_grads = (long long)G * K + G + (long long)O * H + O;
    FL_FN(clip)(dw, n_grads, clip);
    if (!FL_FN(all_finite)(dw, n_grads)) return FL_ERR_NONFINITE;
    FL_FN(sgd_step)(w, dw, (long long)G * K, lr);
    FL_FN(sgd_step)(b, db, G, lr);
    FL_FN(sgd_step)(wy, dwy, (long long)O * H, lr);
    FL_FN(sgd_step)(by, dby, O, lr);
    *loss = total / T;
    return FL_OK;
}

fl_status FL_FN(fl_seed_train)(real *w, real *b, real *wy, real *by, double *epoch_loss,
                               int *done_epochs, int *done_seqs, real *hidden, real *cell,
                               real *gates, real *w_t, real *workspace, const real *x_all,
                               const real *y_all, const long long *offsets, int n_seq,
                               int epochs, int I, int H, int O, real lr, real clip,
                               FL_FN(fl_gemm) gemm)
{
    if (n_seq < 1 || epochs < 0 || !epoch_loss || !done_epochs || !done_seqs || !offsets ||
        !x_all || !y_all)
        return FL_ERR_ARG;
    *done_epochs = 0;
    *done_seqs = 0;
    for (int e = 0; e < epochs; e++) {
        double total = 0;
        for (int s = 0; s < n_seq; s++) {
            const long long start = offsets[s];
            const int T = (int)(offsets[s + 1] - start);
            const real *x = x_all + start * I;
            double loss = 0;
            /* No outputs here: backward computes them with the head it is about to update. */
            fl_status st = FL_FN(fl_seed_forward)(hidden, cell, gates, NULL, w_t, x, w, b, wy,
                                                  by, T, I, H, O, gemm);
            if (st == FL_OK)
                st = FL_FN(fl_seed_backward)(w, b, wy, by, &loss, workspace, y_all + start * O,
                                             x, hidden, cell, gates, T, I, H, O, lr, clip,
                                             gemm);
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
