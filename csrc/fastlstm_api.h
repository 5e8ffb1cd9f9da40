/*
 * fastlstm_api.h: the kernel prototypes for one float width. Deliberately without an include
 * guard: fastlstm.h includes it twice, with `real` defined as float and as double and FL_FN
 * adding the `_f32` / `_f64` suffix. Include fastlstm.h, never this file.
 */

/* The weights of one layer and direction. The natural ones are PyTorch's; `packed` holds them
 * rearranged for one ISA path by fl_pack_weights (fl_packed_size values), made once and kept
 * while the weights do not change (the Python layer caches it and checks the weights against a
 * copy before each call). */
typedef struct {
    const real *w_ih; int ld_ih;  /* (G, I) rows ld_ih apart */
    const real *w_hh; int ld_hh;  /* (G, H) rows ld_hh apart */
    const real *bias;             /* (G): b_ih + b_hh */
    const real *peephole;         /* (3H) in ONNX's order i, o, f, or NULL */
    const real *packed;           /* fl_packed_size(isa, I, H) values for exec.isa */
} FL_FN(fl_weights);

/* What forward writes, and backward reads back.
 * Training (cell != NULL): gates (T, B, G) kept (the activated gates), cell (T, B, H) kept,
 * hidden (T, B, H) rows ld_hidden apart is the output and kept; c_last (B, H) may be NULL.
 * Inference (cell == NULL): gates is scratch (T, B, G) and c_last (B, H), required then, holds
 * the running cell state and ends as the final one (it may be c0: the state carries over). */
typedef struct {
    real *hidden; int ld_hidden;  /* (T, B, H) out, rows ld_hidden apart */
    real *cell;                   /* (T, B, H) out, kept; NULL for inference */
    real *gates;                  /* (T, B, G) kept in training, scratch in inference */
    real *c_last;                 /* (B, H) out or NULL */
    const real *x; int ld_x;      /* (T, B, I) rows ld_x apart */
    const real *h0;               /* (B, H) or NULL (zeros) */
    const real *c0;               /* (B, H) or NULL (zeros) */
    const fl_steps *steps;        /* NULL: B rows at every step, or fastlstm.h's fl_steps */
    const real *h_init, *c_init;  /* (B, H) or NULL (zeros): restarts, with steps only */
} FL_FN(fl_fwd_bufs);

/* With f->steps, backward reads the forward's kept buffers in its layout (rows of steps), and
 * dh_last, dc_last are each row's gradients at its own last step; dh0, dc0 sum every use of
 * the initial state (a first step, a restart); it needs carried = B, h_init = h0, c_init = c0
 * (a training forward is one call).
 *
 * What backward writes. Outputs are overwritten, except dx with dx_accumulate = 1 (dx += ..,
 * for the second direction of a bidirectional layer). dx, dh0, dc0, d_peephole may be NULL
 * (d_peephole is required when the weights have peepholes); dy, dh_last, dc_last may be NULL
 * (zeros). d_gates (T, B, G) and scratch (fl_bwd_scratch_size_rows values for the call's
 * rows, the sum of its batch sizes) are scratch. */
typedef struct {
    real *dx; int ld_dx;          /* (T, B, I) out or NULL */
    int dx_accumulate;
    real *dh0, *dc0;              /* (B, H) out or NULL */
    real *dw_ih; int ld_dw_ih;    /* (G, I) out */
    real *dw_hh; int ld_dw_hh;    /* (G, H) out */
    real *dbias;                  /* (G) out: the gradient of b_ih, and of b_hh */
    real *d_peephole;             /* (3H) out, ONNX order i, o, f */
    real *d_gates;                /* (T, B, G) scratch */
    real *scratch;                /* fl_bwd_scratch_size_rows(isa, dims, rows) scratch */
    const real *dy; int ld_dy;    /* (T, B, H) rows ld_dy apart, or NULL */
    const real *dh_last;          /* (B, H) or NULL: gradient of the final hidden state */
    const real *dc_last;          /* (B, H) or NULL: gradient of the final cell state */
    real *h_prev_rows;            /* (rows, H) scratch, with f->steps only: each row's h_{t-1} */
} FL_FN(fl_bwd_bufs);

/* Values of `packed` for an ISA path (-1 for a path this build lacks). */
long long FL_FN(fl_packed_size)(int isa, int I, int H);

/* Pack w->w_ih and w->w_hh (natural) into `packed` for an ISA path: every part, or the parts
 * named (enum fl_pack_part; the others are left as they were). */
fl_status FL_FN(fl_pack_weights)(int isa, real *packed, const FL_FN(fl_weights) *w, int I, int H);
fl_status FL_FN(fl_pack_weights_parts)(int isa, real *packed, const FL_FN(fl_weights) *w, int I,
                                       int H, int parts);

/* Forward over a whole sequence, one layer, one direction. */
fl_status FL_FN(fl_seq_forward)(const fl_exec *ex, const fl_dims *d, const fl_cell *cell,
                                const FL_FN(fl_weights) *w, const FL_FN(fl_fwd_bufs) *f);

/* Values of backward's scratch: for a call over `rows` rows of steps (T B without fl_steps, the
 * sum of the batch sizes with them), or for T B rows. -1 for rows outside [0, T B]. */
long long FL_FN(fl_bwd_scratch_size_rows)(int isa, const fl_dims *d, long long rows);
long long FL_FN(fl_bwd_scratch_size)(int isa, const fl_dims *d);

/* Backward through a whole sequence, after a training forward with the same arguments (f as
 * the forward had it: its kept buffers are read). */
fl_status FL_FN(fl_seq_backward)(const fl_exec *ex, const fl_dims *d, const fl_cell *cell,
                                 const FL_FN(fl_weights) *w, const FL_FN(fl_fwd_bufs) *f,
                                 const FL_FN(fl_bwd_bufs) *b);

/* Row-major C (m, n) = alpha op(A) (m, k) op(B) (k, n) + beta C in plain C loops: the reference
 * product of the tests and the one for the seed model's tiny head. beta = 0 does not read C. */
void FL_FN(fl_gemm_naive)(int trans_a, int trans_b, int m, int n, int k, real alpha,
                          const real *a, int lda, const real *b, int ldb, real beta,
                          real *c, int ldc);

/* The same contract on an ISA path's packed product (B packed into `scratch`, which holds
 * fl_gemm_scratch_size(isa, k, n) values); for tests and benchmarks of the product itself. */
long long FL_FN(fl_gemm_scratch_size)(int isa, int k, int n);
fl_status FL_FN(fl_gemm)(const fl_exec *ex, int trans_a, int trans_b, int m, int n, int k,
                         real alpha, const real *a, int lda, const real *b, int ldb, real beta,
                         real *c, int ldc, real *scratch);

/* The blocking the packed product of an ISA path runs for `req` (NULL or zeros: the path's
 * choice on this CPU): out = {mr, kc, mc, ncq} (tile rows, rows of a block of k, rows of A a
 * block passes over one panel, panels a row block takes). */
fl_status FL_FN(fl_gemm_blocking)(int isa, const fl_blocking *req, int out[5]);

/* One cell step for B rows (seed 003's lstm_step, batched), exact sigmoid, tanh, on natural
 * weights (plain products: a step is too small for packing to pay). gates_out may be NULL; else
 * it receives the activated gates (B, G). */
fl_status FL_FN(fl_cell_step)(
    int isa,
    real *h_out,            /* (B, H) out */
    real *c_out,            /* (B, H) out */
    real *gates_out,        /* (B, G) out or NULL */
    real *scratch,          /* (B, G) scratch */
    const real *x,          /* (B, I) */
    const real *h_prev,     /* (B, H) */
    const real *c_prev,     /* (B, H) */
    const real *w_ih, int ld_ih, /* (G, I) */
    const real *w_hh, int ld_hh, /* (G, H) */
    const real *bias,       /* (G) */
    int B, int I, int H);

/* The seed model (notebook 001): one sequence, batch 1, zero initial state, W (G, H+I) acting
 * on [h, x] in gate order i, f, g, o, dense head y = Wy h + by, clipped sigmoid.
 * Forward: hidden (T, H), cell (T, H), gates (T, G) kept; outputs (T, O) out, or NULL to skip
 * the head (backward recomputes the outputs itself). `packed` holds
 * fl_packed_size(isa, I, H) values of scratch (the weights packed for this call). */
fl_status FL_FN(fl_seed_forward)(
    const fl_exec *ex,      /* ISA path, threads (the units split, one barrier a step), report */
    real *hidden, real *cell, real *gates, real *outputs,
    real *packed,
    const real *x,          /* (T, I) */
    const real *w,          /* (G, H+I) */
    const real *b,          /* (G) */
    const real *wy,         /* (O, H) */
    const real *by,         /* (O) */
    int T, int I, int H, int O);

/* Scratch values fl_seed_backward needs for a sequence of T steps. */
long long FL_FN(fl_seed_workspace_size)(int isa, int T, int I, int H, int O);

/* Seed backward: BPTT of the loss sum_t |y_t - target_t|^2 / 2 (y_t recomputed from the kept
 * hidden states with the current Wy, by, as the seed does), every gradient clipped
 * elementwise to [-clip, clip] (clip <= 0: no clipping), then SGD with learning rate lr, in
 * place on w, b, wy, by. *loss receives the loss divided by T. A non-finite loss returns
 * FL_ERR_NONFINITE before any weight changes, and so does a gradient that is
 * NaN (or inf, without clipping) after clipping. `packed` (fl_packed_size values) receives
 * the part of the packed weights backward reads (FL_PACK_UB), packed from w as it is at the
 * call, so the weights may have changed since the forward; the workspace is
 * fl_seed_workspace_size(...) values. */
fl_status FL_FN(fl_seed_backward)(
    const fl_exec *ex, real *w, real *b, real *wy, real *by, double *loss,
    real *workspace, real *packed,
    const real *targets,    /* (T, O) */
    const real *x, const real *hidden, const real *cell, const real *gates,
    int T, int I, int H, int O, real lr, real clip);

/* Seed training: `epochs` passes of forward + backward + update over n_seq sequences, in order.
 * Sequence s is rows offsets[s] .. offsets[s+1] of x_all (rows, I) and y_all (rows, O).
 * epoch_loss (epochs) receives the mean per-sequence loss of each epoch. Scratch: hidden, cell
 * (T_max, H), gates (T_max, G), packed fl_packed_size(isa, I, H), workspace
 * fl_seed_workspace_size(isa, T_max, ..).
 * On FL_ERR_NONFINITE, *done_epochs and *done_seqs say where it stopped; the weights are the
 * last finite ones. */
fl_status FL_FN(fl_seed_train)(
    int isa, real *w, real *b, real *wy, real *by,
    double *epoch_loss, int *done_epochs, int *done_seqs,
    real *hidden, real *cell, real *gates, real *packed, real *workspace,
    const real *x_all, const real *y_all, const long long *offsets, int n_seq,
    int epochs, int I, int H, int O, real lr, real clip);

/* A model's buffers (fl_model_dims says its shape). params: the LSTM parameters, n_params
 * values (LSTMLayer's flat buffer); offsets (L*D*4): where w_ih (G, in) rows in apart, w_hh
 * (G, H), b_ih (G) and b_hh (G) of layer l, direction d start in params, at (l*D + d)*4;
 * head: W (O, D*H) then b (O). */
typedef struct {
    fl_model_dims dims;
    real *params;
    long long n_params;
    const long long *offsets;
    real *head;
} FL_FN(fl_model);

/* The optimizer's settings and state. Adam: m_*, v_* are its moments (zeros at first);
 * SGD with momentum: m_* is the velocity (v_* unused); plain SGD: none is read. clip_value,
 * clip_norm > 0: clip every gradient to [-clip_value, clip_value], then scale them all
 * together to a global L2 norm of at most clip_norm, before each update. iterations counts
 * the updates (Adam's t), in and out. */
typedef struct {
    int kind;                 /* enum fl_optimizer_kind */
    double learning_rate, beta_1, beta_2, epsilon, momentum;
    int nesterov;
    double clip_value, clip_norm;
    long long iterations;
    real *m_params, *v_params, *m_head, *v_head;
} FL_FN(fl_optimizer);

/* Scratch values of fl_model_predict over N windows of T steps (bounded: chunks of rows). */
long long FL_FN(fl_model_predict_scratch_size)(int isa, const fl_model_dims *m, int T,
                                               long long N);

/* out (N, O) = the model on windows x (N, T, I) (batch first), on weights packed for ex->isa
 * (packed[l*D + d], as fl_pack_weights makes them). lengths (N) or NULL (every window T steps):
 * window n runs its first lengths[n] steps, in [0, T] (right padding; its prediction is read
 * at its own last step, PyTorch's packed sequences, from zeros for a length of 0). ex->stats
 * gets the largest team and the whole call's wall time. */
fl_status FL_FN(fl_model_predict)(const fl_exec *ex, const FL_FN(fl_model) *m,
                                  const real *const *packed, const real *x, const int *lengths,
                                  long long N, int T, real *out, real *scratch);

/* Scratch values of fl_model_train_epoch (packed weights, the kept activations of a batch of
 * batch_size rows, the validation's prediction). */
long long FL_FN(fl_model_train_scratch_size)(int isa, const fl_model_dims *m,
                                             long long n_params, int T, int batch_size,
                                             long long N_val);

/* One epoch: the batches are rows order[s .. s + batch_size) of x (N, T, I) and y (N, O), in
 * that order (the last may be smaller); each is forward, the MSE loss over its B * O values,
 * backward (the gradients land in grad_params, laid out as params, and grad_head), clipping
 * and the update of m->params and m->head in place. Then the MSE on x_val (N_val, T, I),
 * y_val (N_val, O) if N_val > 0. lengths (N), lengths_val (N_val) or NULL: as in
 * fl_model_predict (each batch runs sorted by length in the steps' layout, fl_steps). A
 * non-finite loss or weight stops the epoch with FL_ERR_NONFINITE (res->failed says which;
 * the weights are the last finite ones). */
fl_status FL_FN(fl_model_train_epoch)(const fl_exec *ex, const FL_FN(fl_model) *m,
                                      real *grad_params, real *grad_head,
                                      FL_FN(fl_optimizer) *opt, const real *x,
                                      const int *lengths, const real *y,
                                      const long long *order, long long N, int T,
                                      int batch_size, const real *x_val, const int *lengths_val,
                                      const real *y_val, long long N_val, real *scratch,
                                      fl_epoch_result *res);

/* The table of one ISA path's kernels (engine.c fills one per path and width). */
typedef struct {
    int vector_bytes;
    long long (*packed_size)(int I, int H);
    fl_status (*pack_weights)(real *packed, const FL_FN(fl_weights) *w, int I, int H, int parts);
    fl_status (*seq_forward)(const fl_exec *ex, const fl_dims *d, const fl_cell *cell,
                             const FL_FN(fl_weights) *w, const FL_FN(fl_fwd_bufs) *f);
    long long (*bwd_scratch_size)(const fl_dims *d, long long rows);
    fl_status (*seq_backward)(const fl_exec *ex, const fl_dims *d, const fl_cell *cell,
                              const FL_FN(fl_weights) *w, const FL_FN(fl_fwd_bufs) *f,
                              const FL_FN(fl_bwd_bufs) *b);
    long long (*gemm_scratch_size)(int k, int n);
    void (*gemm_blocking)(const fl_blocking *req, int out[5]); /* mr, kc, mc, ncq, kca it runs */
    void (*gemm)(const fl_exec *ex, int trans_a, int trans_b, int m, int n, int k, real alpha,
                 const real *a, int lda, const real *b, int ldb, real beta, real *c, int ldc,
                 real *scratch);
    void (*gate_forward)(real *hidden, real *c_out, real *gates, const real *c_prev, int B,
                         int H); /* one step's gate pass on rows of G preactivations */
    /* The seed model for small H, recurrence and head, on a model kept in its own layout for a
     * whole training call (fl_seed_small.h): the workspace size (-1: not for these sizes;
     * n_weights receives the values of the kept model, which starts the workspace, and of its
     * gradients, which end it), laying W, b, Wy, by out or back, forward with the loss,
     * backward, the clipped SGD update. */
    long long (*seed_small_size)(int T, int I, int H, int O, long long *n_weights);
    void (*seed_small_weights)(real *ws, real *w, real *b, real *wy, real *by, int T, int I,
                               int H, int O, int load);
    fl_status (*seed_small_forward)(real *ws, const real *x, const real *targets, int T, int Tw,
                                    int I, int H, int O, real *hidden, real *cell, real *gates,
                                    double *loss);
    fl_status (*seed_small_backward)(real *ws, const real *x, int T, int Tw, int I, int H,
                                     int O);
    fl_status (*seed_small_apply)(real *ws, int Tw, int I, int H, int O, real lr, real clip);
} FL_FN(fl_kernels);

/* The kernel table of an ISA path, NULL if this build or this CPU lacks it (for the library's
 * own C files: seed.c runs the small-model recurrence through it). */
const FL_FN(fl_kernels) *FL_FN(fl_kernels_of)(int isa);
