/* model_impl.h: the body of model.c for one width (included twice, no include guard). */

/* Workspace views: carved one after another, each rounded up to 16 values (64 bytes or more
 * apart); with base NULL only the count grows, so the size functions and the calls share one
 * layout. */
typedef struct {
    real *base;
    long long used;
} FL_FN(carver);

static real *FL_FN(carve)(FL_FN(carver) *c, long long n)
{
    real *p = c->base ? c->base + c->used : NULL;
    c->used += (n + 15) / 16 * 16;
    return p;
}

/* n ints (or long longs) carved as values of the workspace. */
static int *FL_FN(carve_ints)(FL_FN(carver) *c, long long n)
{
    const long long per = (long long)sizeof(real);
    return (int *)(void *)FL_FN(carve)(c, (n * (long long)sizeof(int) + per - 1) / per);
}

static long long *FL_FN(carve_longs)(FL_FN(carver) *c, long long n)
{
    const long long per = (long long)sizeof(real);
    return (long long *)(void *)FL_FN(carve)(c, (n * (long long)sizeof(long long) + per - 1) / per);
}

/* The steps of batches of up to `rows` windows of T steps. */
static model_steps FL_FN(carve_steps)(FL_FN(carver) *c, int T, long long rows)
{
    model_steps st;
    st.bs = FL_FN(carve_ints)(c, T);
    st.pos = FL_FN(carve_ints)(c, rows);
    st.len = FL_FN(carve_ints)(c, rows);
    st.count = FL_FN(carve_ints)(c, (long long)T + 1);
    st.off = FL_FN(carve_longs)(c, (long long)T + 1);
    return st;
}

static int FL_FN(model_ok)(const FL_FN(fl_model) *m)
{
    return m && model_dims_ok(&m->dims) && m->params && m->offsets && m->head &&
           m->n_params > 0;
}

static int FL_FN(layer_in)(const fl_model_dims *m, int l) { return l == 0 ? m->I : m->D * m->H; }

/* The weights of layer l, direction d. */
static FL_FN(fl_weights) FL_FN(layer_weights)(const FL_FN(fl_model) *m, int l, int d,
                                              const real *bias, const real *packed)
{
    const long long *off = m->offsets + 4LL * (l * m->dims.D + d);
    FL_FN(fl_weights) w;
    w.w_ih = m->params + off[0];
    w.ld_ih = FL_FN(layer_in)(&m->dims, l);
    w.w_hh = m->params + off[1];
    w.ld_hh = m->dims.H;
    w.bias = bias;
    w.peephole = NULL;
    w.packed = packed;
    return w;
}

static fl_cell FL_FN(layer_cell)(const fl_model_dims *m, int d)
{
    fl_cell c;
    memset(&c, 0, sizeof c);
    c.reverse = d == 1;
    c.sigmoid = FL_SIGMOID_EXACT;
    c.activation = m->activation;
    return c;
}

/* b_ih + b_hh of every layer and direction into bias (L*D, G). */
static void FL_FN(sum_biases)(const FL_FN(fl_model) *m, real *bias)
{
    const int G = 4 * m->dims.H;
    for (int k = 0; k < m->dims.L * m->dims.D; k++) {
        const real *b_ih = m->params + m->offsets[4 * k + 2];
        const real *b_hh = m->params + m->offsets[4 * k + 3];
        for (int j = 0; j < G; j++) bias[(long long)k * G + j] = b_ih[j] + b_hh[j];
    }
}

/* Pack every layer and direction: what forward reads, and with train what backward reads too
 * (W_ih for dL/dx above the first layer only: the inputs need no gradient). */
static fl_status FL_FN(pack_all)(int isa, const FL_FN(fl_model) *m, real *const *packed,
                                 int train)
{
    for (int l = 0; l < m->dims.L; l++)
        for (int d = 0; d < m->dims.D; d++) {
            const FL_FN(fl_weights) w = FL_FN(layer_weights)(m, l, d, NULL, NULL);
            const int parts = !train ? FL_PACK_FORWARD
                                     : FL_PACK_FORWARD | FL_PACK_UB | (l > 0 ? FL_PACK_WD : 0);
            const fl_status st = FL_FN(fl_pack_weights_parts)(isa, packed[l * m->dims.D + d], &w,
                                                              FL_FN(layer_in)(&m->dims, l),
                                                              m->dims.H, parts);
            if (st != FL_OK) return st;
        }
    return FL_OK;
}

/* The run of one sequence call, folded into the model call's report: the largest team. */
static fl_status FL_FN(run_forward)(const fl_exec *ex, int *team, const fl_dims *dm,
                                    const fl_cell *c, const FL_FN(fl_weights) *w,
                                    const FL_FN(fl_fwd_bufs) *f)
{
    fl_stats s = {1, 0};
    fl_exec e = *ex;
    e.stats = &s;
    const fl_status st = FL_FN(fl_seq_forward)(&e, dm, c, w, f);
    if (s.team > *team) *team = s.team;
    return st;
}

/* pred (B, O) = [final hidden states of the last layer] (B, D*H) @ W^T + b; the features are
 * kept in feat (B, D*H): the forward direction's at its last step, the reverse one's at step 0
 * (Keras's return_sequences=False, torch's h_n). With steps (st, else NULL: B rows at each of
 * the T steps) each row's own last step, zeros for a row of length 0; row b's prediction goes
 * to row row_to[b] of pred (NULL: row b). */
static void FL_FN(head_forward)(const FL_FN(fl_model) *m, const real *out, int T, int B,
                                const model_steps *st, real *feat, real *pred,
                                const int *row_to)
{
    const int H = m->dims.H, D = m->dims.D, DH = D * H, O = m->dims.O;
    const real *wh = m->head, *bh = m->head + (long long)O * DH;
    for (int b = 0; b < B; b++) {
        real *fb = feat + (long long)b * DH;
        const int ran = !st || st->len[b] > 0; /* a row of length 0 reads zeros */
        const real *first = out + (long long)b * DH; /* step 0: the reverse direction's end */
        const real *last = !st ? out + ((long long)(T - 1) * B + b) * DH
                         : ran ? out + (st->off[st->len[b] - 1] + b) * DH : NULL;
        for (int k = 0; k < H; k++) fb[k] = ran ? last[k] : 0;
        if (D == 2)
            for (int k = 0; k < H; k++) fb[H + k] = ran ? first[H + k] : 0;
        real *pb = pred + (long long)(row_to ? row_to[b] : b) * O;
        for (int o = 0; o < O; o++) {
            const real *wo = wh + (long long)o * DH;
            real acc = 0;
            for (int k = 0; k < DH; k++) acc += fb[k] * wo[k];
            pb[o] = acc + bh[o];
        }
    }
}

/* Forward of every layer over rows (T, B) of x_tb (T, B, I) at inference (nothing kept);
 * returns the last layer's output in *top. */
static fl_status FL_FN(infer_layers)(const fl_exec *ex, int *team, const FL_FN(fl_model) *m,
                                     const real *const *packed, const real *bias,
                                     const real *x_tb, int T, int B, const fl_steps *steps,
                                     real *out_a, real *out_b, real *gates, real *c_last,
                                     const real **top)
{
    const int H = m->dims.H, D = m->dims.D, G = 4 * H;
    const real *inp = x_tb;
    for (int l = 0; l < m->dims.L; l++) {
        const int in = FL_FN(layer_in)(&m->dims, l);
        real *out = (l % 2 == 0) ? out_a : out_b;
        for (int d = 0; d < D; d++) {
            const int k = l * D + d;
            const FL_FN(fl_weights) w = FL_FN(layer_weights)(m, l, d, bias + (long long)k * G,
                                                             packed[k]);
            const fl_cell c = FL_FN(layer_cell)(&m->dims, d);
            const fl_dims dm = {T, B, in, H};
            const FL_FN(fl_fwd_bufs) f = {out + d * H, D * H, NULL, gates, c_last, inp, in,
                                          NULL, NULL, steps, NULL, NULL};
            const fl_status st = FL_FN(run_forward)(ex, team, &dm, &c, &w, &f);
            if (st != FL_OK) return st;
        }
        inp = out;
    }
    *top = inp;
    return FL_OK;
}

/* x_tb (T, B, I) <- rows idx[0..B) (or first + 0..B when idx is NULL) of x (N, T, I). */
static void FL_FN(gather)(real *x_tb, const real *x, const long long *idx, long long first,
                          int B, int T, int I)
{
    for (int b = 0; b < B; b++) {
        const real *src = x + (idx ? idx[b] : first + b) * (long long)T * I;
        for (int t = 0; t < T; t++)
            memcpy(x_tb + ((long long)t * B + b) * I, src + (long long)t * I,
                   sizeof(real) * (size_t)I);
    }
}

/* x_tb <- the windows' steps in the layout of st (fl_steps): step t's rows one after another,
 * sorted row r being window idx[st->pos[r]] (or first + st->pos[r]). */
static void FL_FN(gather_steps)(real *x_tb, const real *x, const long long *idx, long long first,
                                const model_steps *st, int T, int I)
{
    for (int t = 0; t < T; t++)
        for (int r = 0; r < st->bs[t]; r++) {
            const long long win = idx ? idx[st->pos[r]] : first + st->pos[r];
            memcpy(x_tb + (st->off[t] + r) * I, x + (win * T + t) * I, sizeof(real) * (size_t)I);
        }
}

/* The prediction workspace for N windows of T steps, after `used` values of a larger one. */
typedef struct {
    real *x_tb, *out_a, *out_b, *gates, *c_last, *feat, *bias;
    model_steps st;
    long long rows;
} FL_FN(predict_ws);

static FL_FN(predict_ws) FL_FN(predict_layout)(FL_FN(carver) *c, const fl_model_dims *m, int T,
                                               long long N)
{
    FL_FN(predict_ws) p;
    const long long rows = model_chunk_rows(m, T, N), G = 4LL * m->H, DH = (long long)m->D * m->H;
    p.rows = rows;
    p.x_tb = FL_FN(carve)(c, (long long)T * rows * m->I);
    p.out_a = FL_FN(carve)(c, (long long)T * rows * DH);
    p.out_b = FL_FN(carve)(c, m->L > 1 ? (long long)T * rows * DH : 0);
    p.gates = FL_FN(carve)(c, (long long)T * rows * G);
    p.c_last = FL_FN(carve)(c, rows * m->H);
    p.feat = FL_FN(carve)(c, rows * DH);
    p.bias = FL_FN(carve)(c, (long long)m->L * m->D * G);
    p.st = FL_FN(carve_steps)(c, T, rows);
    return p;
}

/* Predictions (N, O) for windows x (N, T, I) of the given lengths (NULL: all T) on packed
 * weights, in chunks of rows. */
static fl_status FL_FN(predict_core)(const fl_exec *ex, int *team, const FL_FN(fl_model) *m,
                                     const real *const *packed, const real *x,
                                     const int *lengths, long long N, int T, real *out,
                                     const FL_FN(predict_ws) *p)
{
    FL_FN(sum_biases)(m, p->bias);
    for (long long r0 = 0; r0 < N; r0 += p->rows) {
        const int B = (int)(N - r0 < p->rows ? N - r0 : p->rows);
        const real *top;
        model_steps st = p->st;
        fl_steps steps = {NULL, NULL, B};
        if (lengths) {
            model_steps_make(&st, lengths, NULL, r0, B, T);
            FL_FN(gather_steps)(p->x_tb, x, NULL, r0, &st, T, m->dims.I);
            steps.batch_sizes = st.bs;
        } else {
            FL_FN(gather)(p->x_tb, x, NULL, r0, B, T, m->dims.I);
        }
        const fl_status s = FL_FN(infer_layers)(ex, team, m, packed, p->bias, p->x_tb, T, B,
                                                lengths ? &steps : NULL, p->out_a, p->out_b,
                                                p->gates, p->c_last, &top);
        if (s != FL_OK) return s;
        FL_FN(head_forward)(m, top, T, B, lengths ? &st : NULL, p->feat, out + r0 * m->dims.O,
                            lengths ? st.pos : NULL);
    }
    return FL_OK;
}

long long FL_FN(fl_model_predict_scratch_size)(int isa, const fl_model_dims *m, int T,
                                               long long N)
{
    (void)isa;
    if (!model_dims_ok(m) || T < 1 || N < 1) return -1;
    FL_FN(carver) c = {NULL, 0};
    FL_FN(predict_layout)(&c, m, T, N);
    return c.used;
}

fl_status FL_FN(fl_model_predict)(const fl_exec *ex, const FL_FN(fl_model) *m,
                                  const real *const *packed, const real *x, const int *lengths,
                                  long long N, int T, real *out, real *scratch)
{
    if (!ex || !FL_FN(model_ok)(m) || !packed || !x || !out || !scratch || T < 1 || N < 0 ||
        (lengths && !model_lengths_ok(lengths, N, T)))
        return FL_ERR_ARG;
    if (N == 0) return FL_OK;
    const double t0 = model_now();
    int team = 1;
    FL_FN(carver) c = {scratch, 0};
    const FL_FN(predict_ws) p = FL_FN(predict_layout)(&c, &m->dims, T, N);
    const fl_status st = FL_FN(predict_core)(ex, &team, m, packed, x, lengths, N, T, out, &p);
    if (ex->stats) {
        ex->stats->team = team;
        ex->stats->wall_seconds = model_now() - t0;
    }
    return st;
}

/* --- training ------------------------------------------------------------------------------ */

/* The training workspace: views for batches of at most Bm rows, then the validation's. */
typedef struct {
    real *packed[2 * FL_MODEL_MAX_LAYERS];
    real *bias, *x_tb, *y_b, *pred, *d_pred, *feat, *d_feat;
    real *out[FL_MODEL_MAX_LAYERS];
    real *gates[2 * FL_MODEL_MAX_LAYERS], *cell[2 * FL_MODEL_MAX_LAYERS];
    real *d_a, *d_b, *d_gates, *bwd, *keep_params, *keep_head, *val_pred;
    real *h_prev; /* (T Bm, H): backward's h_{t-1} of each row, with steps */
    model_steps st;
    FL_FN(predict_ws) val;
} FL_FN(train_ws);

static long long FL_FN(head_size)(const fl_model_dims *m)
{
    return (long long)m->O * m->D * m->H + m->O;
}

static int FL_FN(train_layout)(FL_FN(carver) *c, FL_FN(train_ws) *w, int isa,
                               const fl_model_dims *m, long long n_params, int T, int Bm,
                               long long N_val)
{
    const long long G = 4LL * m->H, DH = (long long)m->D * m->H, TB = (long long)T * Bm;
    long long bwd = 0;
    for (int l = 0; l < m->L; l++) {
        const int in = FL_FN(layer_in)(m, l);
        const long long size = FL_FN(fl_packed_size)(isa, in, m->H);
        const fl_dims dm = {T, Bm, in, m->H};
        const long long s = FL_FN(fl_bwd_scratch_size)(isa, &dm);
        if (size < 0 || s < 0) return 0;
        if (s > bwd) bwd = s;
        for (int d = 0; d < m->D; d++) w->packed[l * m->D + d] = FL_FN(carve)(c, size);
    }
    w->bias = FL_FN(carve)(c, (long long)m->L * m->D * G);
    w->x_tb = FL_FN(carve)(c, TB * m->I);
    w->y_b = FL_FN(carve)(c, (long long)Bm * m->O);
    w->pred = FL_FN(carve)(c, (long long)Bm * m->O);
    w->d_pred = FL_FN(carve)(c, (long long)Bm * m->O);
    w->feat = FL_FN(carve)(c, Bm * DH);
    w->d_feat = FL_FN(carve)(c, Bm * DH);
    for (int l = 0; l < m->L; l++) {
        w->out[l] = FL_FN(carve)(c, TB * DH);
        for (int d = 0; d < m->D; d++) {
            w->gates[l * m->D + d] = FL_FN(carve)(c, TB * G);
            w->cell[l * m->D + d] = FL_FN(carve)(c, TB * m->H);
        }
    }
    w->d_a = FL_FN(carve)(c, m->L > 1 ? TB * DH : 0);
    w->d_b = FL_FN(carve)(c, m->L > 2 ? TB * DH : 0);
    w->d_gates = FL_FN(carve)(c, TB * G);
    w->bwd = FL_FN(carve)(c, bwd);
    w->keep_params = FL_FN(carve)(c, n_params);
    w->keep_head = FL_FN(carve)(c, FL_FN(head_size)(m));
    w->val_pred = FL_FN(carve)(c, N_val * m->O);
    w->h_prev = FL_FN(carve)(c, TB * m->H);
    w->st = FL_FN(carve_steps)(c, T, Bm);
    if (N_val > 0) w->val = FL_FN(predict_layout)(c, m, T, N_val);
    return 1;
}

long long FL_FN(fl_model_train_scratch_size)(int isa, const fl_model_dims *m,
                                             long long n_params, int T, int batch_size,
                                             long long N_val)
{
    if (!model_dims_ok(m) || m->L > FL_MODEL_MAX_LAYERS || n_params < 1 || T < 1 ||
        batch_size < 1 || N_val < 0)
        return -1;
    FL_FN(carver) c = {NULL, 0};
    FL_FN(train_ws) w;
    if (!FL_FN(train_layout)(&c, &w, isa, m, n_params, T, batch_size, N_val)) return -1;
    return c.used;
}

#include "fl_finite.h"

/* Mean of (pred - y)^2 over n values (in double), and d_pred = (pred - y) * 2 / n. */
static double FL_FN(mse)(const real *pred, const real *y, long long n, real *d_pred)
{
    double total = 0;
    const real scale = (real)(2.0 / (double)n);
    for (long long k = 0; k < n; k++) {
        const real e = pred[k] - y[k];
        total += (double)e * (double)e;
        if (d_pred) d_pred[k] = e * scale;
    }
    return total / (double)n;
}

/* One buffer's update, Keras's rules (training.py's SGD and Adam say the same in NumPy). */
static void FL_FN(update)(const FL_FN(fl_optimizer) *o, real *p, const real *g, real *m,
                          real *v, long long n)
{
    if (o->kind == FL_OPT_ADAM) {
        const double t = (double)o->iterations;
        const real alpha =
            (real)(o->learning_rate * sqrt(1 - pow(o->beta_2, t)) / (1 - pow(o->beta_1, t)));
        const real c1 = (real)(1 - o->beta_1), c2 = (real)(1 - o->beta_2);
        const real eps = (real)o->epsilon;
        for (long long k = 0; k < n; k++) {
            const real gk = g[k];
            const real mk = m[k] + (gk - m[k]) * c1;
            const real vk = v[k] + (gk * gk - v[k]) * c2;
            m[k] = mk;
            v[k] = vk;
            p[k] -= alpha * mk / (FL_SQRT(vk) + eps);
        }
        return;
    }
    const real lr = (real)o->learning_rate;
    if (o->momentum == 0) {
        for (long long k = 0; k < n; k++) p[k] -= lr * g[k];
        return;
    }
    const real mu = (real)o->momentum;
    for (long long k = 0; k < n; k++) {
        const real vk = m[k] * mu - lr * g[k];
        m[k] = vk;
        p[k] += o->nesterov ? mu * vk - lr * g[k] : vk;
    }
}

/* Clip (by value, then by global norm) and update both buffers; iterations advances first. */
static void FL_FN(optimizer_step)(FL_FN(fl_optimizer) *o, const FL_FN(fl_model) *m,
                                  real *grad_params, real *grad_head)
{
    real *p[2] = {m->params, m->head}, *g[2] = {grad_params, grad_head};
    real *ma[2] = {o->m_params, o->m_head}, *va[2] = {o->v_params, o->v_head};
    const long long n[2] = {m->n_params, FL_FN(head_size)(&m->dims)};
    if (o->clip_value > 0) {
        const real c = (real)o->clip_value;
        for (int j = 0; j < 2; j++)
            for (long long k = 0; k < n[j]; k++) {
                const real x = g[j][k];
                g[j][k] = x < -c ? -c : (x > c ? c : x); /* NaN stays NaN, as np.clip */
            }
    }
    if (o->clip_norm > 0) {
        double sq = 0;
        for (int j = 0; j < 2; j++)
            for (long long k = 0; k < n[j]; k++) sq += (double)g[j][k] * (double)g[j][k];
        const double norm = sqrt(sq);
        if (norm > o->clip_norm) {
            const real s = (real)(o->clip_norm / norm);
            for (int j = 0; j < 2; j++)
                for (long long k = 0; k < n[j]; k++) g[j][k] *= s;
        }
    }
    o->iterations++;
    for (int j = 0; j < 2; j++) FL_FN(update)(o, p[j], g[j], ma[j], va[j], n[j]);
}

/* The sequence call of layer l, direction d over a batch of B rows in training: weights,
 * cell, dims and the forward buffers it kept (forward writes them, backward reads them back);
 * inp is the layer's input (T, B, in). */
typedef struct {
    FL_FN(fl_weights) wt;
    fl_cell c;
    fl_dims dm;
    FL_FN(fl_fwd_bufs) f;
} FL_FN(train_call);

static FL_FN(train_call) FL_FN(train_call_of)(const FL_FN(fl_model) *m, const FL_FN(train_ws) *w,
                                              int l, int d, int T, int B, const real *inp,
                                              const fl_steps *steps)
{
    const int H = m->dims.H, DH = m->dims.D * H, k = l * m->dims.D + d;
    const int in = FL_FN(layer_in)(&m->dims, l);
    FL_FN(train_call) tc;
    tc.wt = FL_FN(layer_weights)(m, l, d, w->bias + (long long)k * 4 * H, w->packed[k]);
    tc.c = FL_FN(layer_cell)(&m->dims, d);
    tc.dm.T = T; tc.dm.B = B; tc.dm.I = in; tc.dm.H = H;
    tc.f.hidden = w->out[l] + d * H; tc.f.ld_hidden = DH;
    tc.f.cell = w->cell[k]; tc.f.gates = w->gates[k]; tc.f.c_last = NULL;
    tc.f.x = inp; tc.f.ld_x = in;
    tc.f.h0 = NULL; tc.f.c0 = NULL;
    tc.f.steps = steps; tc.f.h_init = NULL; tc.f.c_init = NULL;
    return tc;
}

/* Forward, loss, backward of one batch of B rows (already gathered into w->x_tb, w->y_b; in
 * the layout of w->st when lengths, else B rows at every step), the gradients into
 * grad_params / grad_head; *loss receives the batch's loss. */
static fl_status FL_FN(train_batch)(const fl_exec *ex, int *team, const FL_FN(fl_model) *m,
                                    real *grad_params, real *grad_head, const FL_FN(train_ws) *w,
                                    int T, int B, int lengths, double *loss)
{
    const int L = m->dims.L, D = m->dims.D, H = m->dims.H, G = 4 * H, DH = D * H;
    const int O = m->dims.O;
    const fl_steps steps_of = {w->st.bs, NULL, B}, *steps = lengths ? &steps_of : NULL;
    fl_status st;
    /* The layers, training: gates, cell states and outputs kept. */
    const real *inp = w->x_tb;
    for (int l = 0; l < L; l++) {
        for (int d = 0; d < D; d++) {
            const FL_FN(train_call) tc = FL_FN(train_call_of)(m, w, l, d, T, B, inp, steps);
            st = FL_FN(run_forward)(ex, team, &tc.dm, &tc.c, &tc.wt, &tc.f);
            if (st != FL_OK) return st;
        }
        inp = w->out[l];
    }
    FL_FN(head_forward)(m, w->out[L - 1], T, B, lengths ? &w->st : NULL, w->feat, w->pred,
                        NULL);
    *loss = FL_FN(mse)(w->pred, w->y_b, (long long)B * O, w->d_pred);
    if (!isfinite(*loss)) return FL_ERR_NONFINITE;

    /* The head: dW = dP^T F, db = sum dP, dF = dP W (split by direction: (D, B, H)). */
    const real *wh = m->head;
    real *gw = grad_head, *gb = grad_head + (long long)O * DH;
    for (int o = 0; o < O; o++) {
        real *gwo = gw + (long long)o * DH;
        for (int k = 0; k < DH; k++) gwo[k] = 0;
        gb[o] = 0;
        for (int b = 0; b < B; b++) {
            const real dp = w->d_pred[(long long)b * O + o];
            const real *fb = w->feat + (long long)b * DH;
            for (int k = 0; k < DH; k++) gwo[k] += dp * fb[k];
            gb[o] += dp;
        }
    }
    for (int b = 0; b < B; b++)
        for (int k = 0; k < DH; k++) {
            real acc = 0;
            for (int o = 0; o < O; o++) acc += w->d_pred[(long long)b * O + o] * wh[(long long)o * DH + k];
            w->d_feat[((long long)(k / H) * B + b) * H + k % H] = acc;
        }

    /* The layers, last to first: d(output) of layer l is the d(input) of layer l + 1. */
    real *d_out = NULL, *spare[2] = {w->d_a, w->d_b};
    for (int l = L - 1; l >= 0; l--) {
        const int in = FL_FN(layer_in)(&m->dims, l);
        const real *lin = l == 0 ? w->x_tb : w->out[l - 1];
        real *d_in = l == 0 ? NULL : spare[(L - 1 - l) % 2];
        for (int d = 0; d < D; d++) {
            const int k = l * D + d;
            const long long *off = m->offsets + 4LL * k;
            const FL_FN(train_call) tc = FL_FN(train_call_of)(m, w, l, d, T, B, lin, steps);
            FL_FN(fl_bwd_bufs) bw;
            memset(&bw, 0, sizeof bw);
            bw.dx = d_in; bw.ld_dx = in; bw.dx_accumulate = d > 0;
            bw.dw_ih = grad_params + off[0]; bw.ld_dw_ih = in;
            bw.dw_hh = grad_params + off[1]; bw.ld_dw_hh = H;
            bw.dbias = grad_params + off[2];
            bw.d_gates = w->d_gates;
            bw.scratch = w->bwd;
            bw.dy = d_out ? d_out + d * H : NULL; bw.ld_dy = DH;
            bw.dh_last = l == L - 1 ? w->d_feat + (long long)d * B * H : NULL;
            bw.h_prev_rows = steps ? w->h_prev : NULL;
            fl_stats s = {1, 0};
            fl_exec e = *ex;
            e.stats = &s;
            st = FL_FN(fl_seq_backward)(&e, &tc.dm, &tc.c, &tc.wt, &tc.f, &bw);
            if (s.team > *team) *team = s.team;
            if (st != FL_OK) return st;
            /* Both biases enter as their sum; a model with one bias holds b_hh at 0. */
            real *g_hh = grad_params + off[3];
            for (int j = 0; j < G; j++) g_hh[j] = m->dims.single_bias ? 0 : bw.dbias[j];
        }
        d_out = d_in;
    }
    return FL_OK;
}

fl_status FL_FN(fl_model_train_epoch)(const fl_exec *ex, const FL_FN(fl_model) *m,
                                      real *grad_params, real *grad_head,
                                      FL_FN(fl_optimizer) *opt, const real *x,
                                      const int *lengths, const real *y,
                                      const long long *order, long long N, int T,
                                      int batch_size, const real *x_val, const int *lengths_val,
                                      const real *y_val, long long N_val, real *scratch,
                                      fl_epoch_result *res)
{
    if (!ex || !FL_FN(model_ok)(m) || m->dims.L > FL_MODEL_MAX_LAYERS || !grad_params ||
        !grad_head || !opt || !x || !y || !order || N < 1 || T < 1 || batch_size < 1 ||
        N_val < 0 || (N_val > 0 && (!x_val || !y_val)) || !scratch || !res ||
        (opt->kind != FL_OPT_SGD && opt->kind != FL_OPT_ADAM) ||
        (opt->kind == FL_OPT_ADAM && (!opt->m_params || !opt->v_params || !opt->m_head ||
                                      !opt->v_head)) ||
        (opt->kind == FL_OPT_SGD && opt->momentum != 0 && (!opt->m_params || !opt->m_head)) ||
        (lengths && !model_lengths_ok(lengths, N, T)) ||
        (lengths_val && N_val > 0 && !model_lengths_ok(lengths_val, N_val, T)))
        return FL_ERR_ARG;
    const double t0 = model_now();
    int team = 1;
    const int Bm = (int)(batch_size < N ? batch_size : N);
    const int O = m->dims.O, I = m->dims.I;
    const long long n_head = FL_FN(head_size)(&m->dims);
    FL_FN(carver) c = {scratch, 0};
    FL_FN(train_ws) w;
    if (!FL_FN(train_layout)(&c, &w, ex->isa, &m->dims, m->n_params, T, Bm, N_val))
        return FL_ERR_ISA;
    res->loss = 0;
    res->val_loss = NAN;
    res->batches = 0;
    res->failed = 0;
    fl_status st = FL_OK;
    double total = 0;
    for (long long s = 0; s < N; s += Bm) {
        const int B = (int)(N - s < Bm ? N - s : Bm);
        const long long *idx = order + s;
        if (lengths) { /* the batch's rows sorted by length, in the steps' layout */
            model_steps_make(&w.st, lengths, idx, 0, B, T);
            FL_FN(gather_steps)(w.x_tb, x, idx, 0, &w.st, T, I);
        } else {
            FL_FN(gather)(w.x_tb, x, idx, 0, B, T, I);
        }
        for (int b = 0; b < B; b++) {
            const long long row = idx[lengths ? w.st.pos[b] : b];
            memcpy(w.y_b + (long long)b * O, y + row * O, sizeof(real) * (size_t)O);
        }
        /* The weights changed with the last update: pack them for this batch. */
        st = FL_FN(pack_all)(ex->isa, m, w.packed, 1);
        if (st != FL_OK) break;
        FL_FN(sum_biases)(m, w.bias);
        double loss = 0;
        st = FL_FN(train_batch)(ex, &team, m, grad_params, grad_head, &w, T, B, lengths != NULL,
                                &loss);
        if (st == FL_ERR_NONFINITE) {
            res->failed = 1;
            res->loss = loss;
            break;
        }
        if (st != FL_OK) break;
        memcpy(w.keep_params, m->params, sizeof(real) * (size_t)m->n_params);
        memcpy(w.keep_head, m->head, sizeof(real) * (size_t)n_head);
        FL_FN(optimizer_step)(opt, m, grad_params, grad_head);
        if (!FL_FN(all_finite)(m->params, m->n_params) || !FL_FN(all_finite)(m->head, n_head)) {
            memcpy(m->params, w.keep_params, sizeof(real) * (size_t)m->n_params);
            memcpy(m->head, w.keep_head, sizeof(real) * (size_t)n_head);
            res->failed = 2;
            st = FL_ERR_NONFINITE;
            break;
        }
        total += loss * B;
        res->batches++;
    }
    if (st == FL_OK) {
        res->loss = total / (double)N;
        if (N_val > 0) {
            st = FL_FN(pack_all)(ex->isa, m, w.packed, 0);
            if (st == FL_OK)
                st = FL_FN(predict_core)(ex, &team, m, (const real *const *)w.packed, x_val,
                                         lengths_val, N_val, T, w.val_pred, &w.val);
            if (st == FL_OK)
                res->val_loss = FL_FN(mse)(w.val_pred, y_val, N_val * O, NULL);
        }
    }
    if (ex->stats) {
        ex->stats->team = team;
        ex->stats->wall_seconds = model_now() - t0;
    }
    return st;
}
