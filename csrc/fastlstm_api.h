/*
 * fastlstm_api.h: the kernel prototypes for one float width. Deliberately without an include
 * guard: fastlstm.h includes it twice, with `real` defined as float and as double and FL_FN
 * adding the `_f32` / `_f64` suffix. Include fastlstm.h, never this file.
 */
/* Plain C GEMM (the reference and the path for tiny shapes); same contract as fl_gemm. */
void FL_FN(fl_gemm_naive)(int trans_a, int trans_b, int m, int n, int k, real alpha,
                         const real *a, int lda, const real *b, int ldb, real beta,
                         real *c, int ldc);

/* One cell step for B rows (seed 003's lstm_step, batched). Exact sigmoid.
 * gates_out may be NULL; else it receives the activated gates (B, G). */
fl_status FL_FN(fl_cell_step)(
    real *h_out,            /* (B, H) out */
    real *c_out,            /* (B, H) out */
    real *gates_out,        /* (B, G) out or NULL */
    real *scratch,          /* (B, G) scratch */
    const real *x,          /* (B, I) */
    const real *h_prev,     /* (B, H) */
    const real *c_prev,     /* (B, H) */
    const real *w_ih,       /* (G, I) rows ld_ih apart */
    int ld_ih,
    const real *w_hh,       /* (G, H) rows ld_hh apart */
    int ld_hh,
    const real *bias,       /* (G) */
    int B, int I, int H);

/* The ONNX LSTM cell's extras; a NULL pointer to them means none (the common, faster path).
 *   i = sig(.. + p_i c_{t-1}),  f = sig(.. + p_f c_{t-1})  (or 1 - i with input_forget),
 *   o = sig(.. + p_o c_t),  every activation's argument clipped to [-clip, clip] if clip > 0. */
typedef struct {
    const real *peephole;   /* (3H) in ONNX's order i, o, f, or NULL */
    real *d_peephole;       /* (3H) out of fl_seq_backward when peephole is set, else unused */
    real clip;              /* > 0: clip the activations' arguments; 0: no clipping */
    int input_forget;       /* 1: f = 1 - i, the f rows of the weights are ignored */
} FL_FN(fl_extras);

/* Forward over a whole sequence, one layer, one direction. h0/c0 NULL mean zeros.
 * reverse != 0 runs t = T-1 .. 0 (the backward direction of a bidirectional layer); buffers
 * stay indexed by t either way.
 * Training (cell != NULL): gates (T, B, G) is kept (the activated gates), cell (T, B, H) is
 * kept, hidden (T, B, H) rows ld_hidden apart is the output and kept.
 * Inference (cell == NULL): gates is scratch (T, B, G) and c_last (B, H), required then, holds
 * the running cell state and ends as the final one. In training c_last may be NULL (the final
 * cell state is a row block of cell). w_t, when given, receives the weights packed for the
 * small-batch kernel (faster than BLAS there); NULL means BLAS or the plain loops only. */
fl_status FL_FN(fl_seq_forward)(
    real *hidden, int ld_hidden, /* (T, B, H) out, rows ld_hidden apart */
    real *cell,             /* (T, B, H) out, kept; NULL for inference */
    real *gates,            /* (T, B, G) kept in training, scratch in inference */
    real *c_last,           /* (B, H) out or NULL: the final cell state */
    real *w_t,              /* fl_seq_workspace_size(I, H) scratch or NULL: packed weights */
    const real *x, int ld_x, /* (T, B, I) rows ld_x apart */
    const real *h0,         /* (B, H) or NULL */
    const real *c0,         /* (B, H) or NULL */
    const real *w_ih, int ld_ih, /* (G, I) */
    const real *w_hh, int ld_hh, /* (G, H) */
    const real *bias,       /* (G), b_ih + b_hh already summed */
    int T, int B, int I, int H, int reverse, int sigmoid_mode,
    int activation,         /* enum fl_activation */
    const FL_FN(fl_extras) *extras, /* NULL: none */
    FL_FN(fl_gemm) gemm);

/* Backward through a whole sequence (after a training forward with the same arguments).
 * dy / dh_last / dc_last may be NULL (zero). Outputs are overwritten, not accumulated:
 * dx (T, B, I) rows ld_dx apart (may be NULL), dh0 / dc0 (B, H) (may be NULL),
 * dw_ih (G, I) rows ld_dw_ih apart, dw_hh (G, H) rows ld_dw_hh apart, dbias (G).
 * d_gates (T, B, G) and dh / dc (B, H) each are scratch. */
fl_status FL_FN(fl_seq_backward)(
    real *dx, int ld_dx,
    real *dh0, real *dc0,
    real *dw_ih, int ld_dw_ih,
    real *dw_hh, int ld_dw_hh,
    real *dbias,
    real *d_gates,          /* (T, B, G) scratch */
    real *dh,               /* (B, H) scratch */
    real *dc,               /* (B, H) scratch */
    real *dw_t,             /* fl_seq_workspace_size(I, H) scratch or NULL: packed W_hh, dW^T */
    const real *dy, int ld_dy, /* (T, B, H) or NULL */
    const real *dh_last,    /* (B, H) or NULL: gradient of the final hidden state */
    const real *dc_last,    /* (B, H) or NULL: gradient of the final cell state */
    const real *x, int ld_x,
    const real *h0, const real *c0,
    const real *hidden, int ld_hidden,
    const real *cell, const real *gates,
    const real *w_ih, int ld_ih,
    const real *w_hh, int ld_hh,
    int T, int B, int I, int H, int reverse,
    int activation,         /* enum fl_activation, as in the forward */
    const FL_FN(fl_extras) *extras, /* as in the forward; fills d_peephole */
    FL_FN(fl_gemm) gemm);

/* The seed model (notebook 001): one sequence, batch 1, zero initial state, W (G, H+I) acting
 * on [h, x] in gate order i, f, g, o, dense head y = Wy h + by, clipped sigmoid.
 * Forward: hidden (T, H), cell (T, H), gates (T, G) kept; outputs (T, O) out, or NULL to skip
 * the head (backward recomputes the outputs itself). */
fl_status FL_FN(fl_seed_forward)(
    real *hidden, real *cell, real *gates, real *outputs,
    real *w_t,              /* fl_seq_workspace_size(I, H) scratch */
    const real *x,          /* (T, I) */
    const real *w,          /* (G, H+I) */
    const real *b,          /* (G) */
    const real *wy,         /* (O, H) */
    const real *by,         /* (O) */
    int T, int I, int H, int O, FL_FN(fl_gemm) gemm);

/* Seed backward: BPTT of the loss sum_t |y_t - target_t|^2 / 2 (y_t recomputed from the kept
 * hidden states with the current Wy, by, as the seed does), every gradient clipped
 * elementwise to [-clip, clip] (clip <= 0: no clipping), then SGD with learning rate lr, in
 * place on w, b, wy, by. *loss receives the loss divided by T. A non-finite loss returns
 * FL_ERR_NONFINITE before any weight changes, and so does a gradient that is
 * NaN (or inf, without clipping) after clipping. The workspace is fl_seed_workspace_size(...)
 * values of scratch. */
fl_status FL_FN(fl_seed_backward)(
    real *w, real *b, real *wy, real *by, double *loss,
    real *workspace,
    const real *targets,    /* (T, O) */
    const real *x, const real *hidden, const real *cell, const real *gates,
    int T, int I, int H, int O, real lr, real clip, FL_FN(fl_gemm) gemm);

/* Seed training: `epochs` passes of forward + backward + update over n_seq sequences, in order.
 * Sequence s is rows offsets[s] .. offsets[s+1] of x_all (rows, I) and y_all (rows, O).
 * epoch_loss (epochs) receives the mean per-sequence loss of each epoch. Scratch: hidden, cell
 * (T_max, H), gates (T_max, G), w_t fl_seq_workspace_size(I, H), workspace
 * fl_seed_workspace_size(T_max, ..).
 * On FL_ERR_NONFINITE, *done_epochs and *done_seqs say where it stopped; the weights are the
 * last finite ones. */
fl_status FL_FN(fl_seed_train)(
    real *w, real *b, real *wy, real *by,
    double *epoch_loss, int *done_epochs, int *done_seqs,
    real *hidden, real *cell, real *gates, real *w_t, real *workspace,
    const real *x_all, const real *y_all, const long long *offsets, int n_seq,
    int epochs, int I, int H, int O, real lr, real clip, FL_FN(fl_gemm) gemm);

