/*
 * fastlstm.h: the C kernels of fastlstm, float32 (`_f32`) and float64 (`_f64`).
 *
 * Dims legend (used in every shape comment below):
 *   T  time steps            B  batch size
 *   I  input features        H  hidden units          G = 4H (the four gates)
 *   O  outputs of the seed model's dense head
 *
 * Layout: every matrix is row-major and contiguous in its rows; a leading dimension
 * (`ld_*`) gives the distance between rows where a buffer may be a view into a wider one
 * (the seed model's W acts on [h, x], so its W_hh and W_ih are column blocks of one matrix).
 *
 * Gate order, everywhere in this library: i, f, g, o (PyTorch's). A buffer of G = 4H values per
 * row holds the input gate in [0, H), the forget gate in [H, 2H), the candidate in [2H, 3H)
 * and the output gate in [3H, 4H).
 *
 * Rules the kernels keep: they never allocate (the caller hands every buffer, described below as
 * "kept" when forward writes it for backward, "scratch" when its content is dead afterwards),
 * never print, never exit, hold no global mutable state, and return an fl_status. They run
 * without the GIL; two threads may run two models, or inference on one model, at once.
 */
#ifndef FASTLSTM_H
#define FASTLSTM_H

#ifdef __cplusplus
extern "C" {
#endif

enum fl_gate { FL_GATE_I = 0, FL_GATE_F = 1, FL_GATE_G = 2, FL_GATE_O = 3, FL_NUM_GATES = 4 };

typedef enum fl_status {
    FL_OK = 0,
    FL_ERR_ARG = 1,        /* a size or pointer the caller should have validated */
    FL_ERR_NONFINITE = 2,  /* training produced a NaN/inf loss; weights were left unchanged */
} fl_status;

/* The sigmoid used by the gates. The seed class clips its argument to [-15, 15] (its
 * np.clip guard against overflow); everything else uses the exact, overflow-safe sigmoid. */
enum fl_sigmoid { FL_SIGMOID_EXACT = 0, FL_SIGMOID_CLIP15 = 1 };

/* The activation of the candidate gate and of the cell output, h = o * act(c): Keras's
 * `activation` argument (the gates' own activation stays the sigmoid). relu keeps NaN. */
enum fl_activation { FL_ACT_TANH = 0, FL_ACT_RELU = 1, FL_ACT_LINEAR = 2 };

/* Row-major C (m, n) = alpha * op(A) (m, k) @ op(B) (k, n) + beta * C.
 * Handed in by the caller (SciPy's BLAS through Cython); NULL means "use the plain C loops". */
typedef void (*fl_gemm_f32)(int trans_a, int trans_b, int m, int n, int k, float alpha,
                            const float *a, int lda, const float *b, int ldb, float beta,
                            float *c, int ldc);
typedef void (*fl_gemm_f64)(int trans_a, int trans_b, int m, int n, int k, double alpha,
                            const double *a, int lda, const double *b, int ldb, double beta,
                            double *c, int ldc);

/* Scratch values fl_seed_backward needs for a sequence of T steps. */
long long fl_seed_workspace_size(int T, int I, int H, int O);
/* Dispatch limits of the sequence kernels (lstm_impl.h, use_packed): process-wide, read on
 * every call; set only through fl_set_tuning, for tuning benchmarks. */
typedef struct {
    long long packed_max_rows;  /* the packed kernel below this many rows (batch) ... */
    long long packed_max_bytes; /* ... for weights up to this size */
} fl_tuning_t;
extern fl_tuning_t fl_tuning;
void fl_set_tuning(long long packed_max_rows, long long packed_max_bytes);

/* Elements of w_t (fl_seq_forward) and dw_t (fl_seq_backward), either width. */
long long fl_seq_workspace_size(int I, int H);

/* The prototypes for one float width; included once per width ("real" and the name suffix
 * are macros), so float and double share one declaration as they share one body. */
#define real float
#define FL_FN(name) name##_f32
#include "fastlstm_api.h"
#undef real
#undef FL_FN

#define real double
#define FL_FN(name) name##_f64
#include "fastlstm_api.h"
#undef real
#undef FL_FN

#ifdef __cplusplus
}
#endif

#endif /* FASTLSTM_H */
