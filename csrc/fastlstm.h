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
 * (the seed model's W acts on [h, x], so its W_hh and W_ih are column blocks of one matrix;
 * a bidirectional layer's outputs interleave the two directions in rows of 2H).
 *
 * Gate order, everywhere in this library: i, f, g, o (PyTorch's). A buffer of G = 4H values per
 * row holds the input gate in [0, H), the forget gate in [H, 2H), the candidate in [2H, 3H)
 * and the output gate in [3H, 4H).
 *
 * Where the code lives (docs/architecture.md has the whole picture):
 *   engine.c     one translation unit per ISA path and float width, the body of every kernel:
 *                fl_simd.h (vector type), fl_math.h (exp, sigmoid, tanh), fl_gemm.h (packing and
 *                the blocked product), fl_gates.h (the gate math, forward beside backward),
 *                fl_seq.h (the sequence loops and their threads).
 *   dispatch.c   picks the ISA path once (CPU features, FASTLSTM_ISA through fl_select_isa),
 *                and holds the entry points below; seed.c the notebook model; model.c a whole
 *                stacked model with its head (predict, a training epoch); naive.c the plain
 *                reference GEMM.
 *
 * Rules the kernels keep: they never allocate (the caller hands every buffer, described below as
 * "kept" when forward writes it for backward, "scratch" when its content is dead afterwards),
 * never print, never exit, hold no mutable global state (the chosen ISA path is read-only after
 * fl_select_isa, every call names the path its packed weights were made for, and the L1 size
 * the product's blocking follows is read once and kept), and return an
 * fl_status. They run without the GIL; two threads may run two models, or inference on one
 * model, at once. Threads: each sequence call opens one OpenMP team (when built with OpenMP) of
 * at most fl_exec.threads threads and splits outputs, never sums, between them, so the results
 * do not depend on the thread count.
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
    FL_ERR_ISA = 3,        /* an ISA path this build or this CPU does not have */
} fl_status;

/* The sigmoid used by the gates. The seed class clips its argument to [-15, 15] (its
 * np.clip guard against overflow); everything else uses the exact, overflow-safe sigmoid. */
enum fl_sigmoid { FL_SIGMOID_EXACT = 0, FL_SIGMOID_CLIP15 = 1 };

/* The activation of the candidate gate and of the cell output, h = o * act(c): Keras's
 * `activation` argument (the gates' own activation stays the sigmoid). relu keeps NaN. */
enum fl_activation { FL_ACT_TANH = 0, FL_ACT_RELU = 1, FL_ACT_LINEAR = 2 };

/* ISA paths. Each is the same source compiled for one instruction set; a path exists in a build
 * when the compiler targets that architecture, and runs when the CPU has the instructions. */
enum fl_isa {
    FL_ISA_GENERIC = 0, /* portable C, 16-byte vectors, no fused multiply-add: the reference */
    FL_ISA_AVX2 = 1,    /* x86-64 AVX2 + FMA, 32-byte vectors */
    FL_ISA_AVX512 = 2,  /* x86-64 AVX-512 F/BW/DQ/VL, 64-byte vectors */
    FL_ISA_NEON = 3,    /* aarch64 NEON (Advanced SIMD) with FMA, 16-byte vectors */
    FL_NUM_ISAS = 4
};

/* How a sequence call splits its recurrence between threads. */
enum fl_split {
    FL_SPLIT_AUTO = 0,   /* by the shape (fl_plan in fl_seq.h) */
    FL_SPLIT_BATCH = 1,  /* each thread carries its rows through every step: no barrier */
    FL_SPLIT_UNITS = 2,  /* each thread owns hidden units (their four gates): a barrier a step */
    FL_SPLIT_SERIAL = 3, /* one thread for the recurrence */
};

/* How a sequence forward runs its steps (fl_seq.h); the results are the same bits either way. */
enum fl_step {
    FL_STEP_AUTO = 0,   /* by the split: the panel step, or the unit-block step with units */
    FL_STEP_TILE = 1,   /* per step a tile over unit blocks (the four gates of VL units) with
                           the gate math on its registers */
    FL_STEP_PANELS = 2, /* per step a blocked product over gate-major panels of W_hh^T, then a
                           gate pass (with the units split only when H is a whole number of
                           panels, 2 vectors: else the unit-block step there) */
};

/* The parts of a layer's packed weights (fl_pack_weights_parts): what forward reads (W_ih^T for
 * the input projection, W_hh^T in the two step layouts) and what backward reads (W_hh for
 * dL/dh_{t-1}, W_ih for dL/dx). A call that needs only one side packs only it: the seed
 * model's backward packs the weights again (they may have changed since its forward) and
 * never computes dL/dx. */
enum fl_pack_part {
    FL_PACK_WX = 1, FL_PACK_UF = 2, FL_PACK_UP = 4, FL_PACK_UB = 8, FL_PACK_WD = 16,
    FL_PACK_FORWARD = FL_PACK_WX | FL_PACK_UF | FL_PACK_UP,
    FL_PACK_ALL = 31
};

/* What a call reports of its threads: the team it ran and its wall time. A caller that sees a
 * full team run slower than one thread (cores shared with someone else's busy threads) may run
 * on fewer; fastlstm's layers do, and the results do not depend on the team size. */
typedef struct {
    int team;
    double wall_seconds;
} fl_stats;

/* The cache blocking of the packed product (fl_gemm.h), for tests and tuning runs: a field at 0
 * takes the path's choice for this CPU (which follows the L1 data cache, fl_l1d_bytes). mr: rows
 * of a register tile (1 .. the path's most: 12 with 64-byte vectors, 6 otherwise); kc_bytes: the
 * bytes of one panel's block of k (k rows x 2 vectors of B), which sets the block of k;
 * mc_tiles: the row tiles of A that pass over one panel block before the next panel; ncq: the
 * panels of B a row block takes at a time; kca_bytes: kc_bytes for the products whose A is
 * transposed and packed (X^T dG), when it should differ (0: kc_bytes, or the path's choice).
 * Every blocking gives the same bits. */
typedef struct {
    int mr, kc_bytes, mc_tiles, ncq, kca_bytes;
} fl_blocking;

/* How to run one call: the ISA path (the one its packed weights were made for), the most
 * threads it may use, the split and the steps (FL_SPLIT_AUTO and FL_STEP_AUTO, 0, except in
 * tests and tuning runs), where to report its threads (NULL: nowhere), the product's blocking
 * (zeros, except in tests and tuning runs), and fixed_team: 0 (the default) cuts the team to
 * the cores other runnable threads leave free (fl_team_for), 1 runs the team asked for. */
typedef struct {
    int isa;
    int threads;
    int split;
    int step;
    fl_stats *stats;
    fl_blocking gemm;
    int fixed_team;
} fl_exec;

/* Sizes of one layer and direction over one call. */
typedef struct {
    int T, B, I, H;
} fl_dims;

/* The steps of a call when sequences differ in length or restart (fl_fwd_bufs.steps; NULL: B
 * rows at every step, no restart). The rows are ordered by length, longest first, and every
 * buffer indexed by step holds step t's rows one after another: batch_sizes[t] rows
 * (non-increasing in t, at most B, 0 allowed) from row offset sum_{t' < t} batch_sizes[t']
 * (PyTorch's PackedSequence layout; the rows of a padded (T, B) call are the case of all B).
 * Row r of a step takes its state from the step processed before it when r < that step's rows,
 * else from the initial state h_init, c_init (zeros if NULL): so the reverse direction starts
 * each sequence at its own last step. reset (one byte per row of that layout, or NULL): where
 * not 0, the row takes the initial state before that step, whatever came before. carried: at
 * the first step processed, rows r < carried take h0, c0 (the state carried in, which a call
 * over a later chunk of steps gets from the one before) and the others the initial state;
 * B for a whole sequence. */
typedef struct {
    const int *batch_sizes;        /* (T) or NULL: B at every step */
    const unsigned char *reset;    /* (rows) or NULL */
    int carried;
} fl_steps;

/* The cell of one layer and direction: direction, sigmoid, activation and ONNX's extras
 *   i = sig(.. + p_i c_{t-1}),  f = sig(.. + p_f c_{t-1})  (or 1 - i with input_forget),
 *   o = sig(.. + p_o c_t),  every activation's argument clipped to [-clip, clip] if clip > 0
 * (the peephole vector itself is in the weights). */
typedef struct {
    int reverse;        /* 1: t = T-1 .. 0 (the backward direction); buffers stay indexed by t */
    int sigmoid;        /* enum fl_sigmoid */
    int activation;     /* enum fl_activation */
    int input_forget;   /* 1: f = 1 - i, the f rows of the weights are ignored */
    double clip;        /* > 0: clip the activations' arguments; 0: no clipping */
} fl_cell;

/* A whole model (model.c): L stacked layers of D directions (1, or 2: bidirectional, the
 * outputs of both concatenated), I input features, H units, exact sigmoid, `activation` for
 * the candidate and the cell output; a dense head of O outputs on the last layer's final
 * hidden states ([forward, reverse]). single_bias = 1: the model has one bias per gate
 * (Keras's), kept in b_ih, and b_hh is held at 0 (its gradient is 0). */
#define FL_MODEL_MAX_LAYERS 64
typedef struct {
    int L, D, I, H, O;
    int activation;     /* enum fl_activation */
    int single_bias;
} fl_model_dims;

/* Optimizers of fl_model_train_epoch: Keras's rules and defaults (fastlstm.training). */
enum fl_optimizer_kind { FL_OPT_SGD = 0, FL_OPT_ADAM = 1 };

/* What one training epoch did. failed: 0, or 1 when a batch's loss was not finite (no update
 * from it; loss holds that batch's loss), or 2 when an update made a weight NaN or infinite
 * (undone: the weights are the ones before it). batches: the updates made. */
typedef struct {
    double loss;        /* mean of the batches' losses, weighted by their rows */
    double val_loss;    /* MSE on the validation windows after the epoch; NaN without them */
    long long batches;
    int failed;
} fl_epoch_result;

/* ISA paths: which exist in this build and run on this CPU, the one chosen by default, and the
 * name of each ("generic", "avx2", "avx512", "neon"); fl_isa_by_name gives -1 for an unknown
 * name. fl_openmp: 1 when built with OpenMP. fl_max_threads: OpenMP's current default team size
 * (what OMP_NUM_THREADS or threadpoolctl set), 1 without OpenMP. */
int fl_isa_compiled(int isa);
int fl_isa_supported(int isa);
int fl_isa_best(void);
const char *fl_isa_name(int isa);
int fl_isa_by_name(const char *name);
int fl_openmp(void);
int fl_max_threads(void);

/* Free cores (cores.c). A sequence call's team (FL_SPLIT_AUTO, fl_exec.fixed_team 0) is at most
 * the cores that other runnable threads on the machine leave free: fl_team_for(want, long_call)
 * gives that team (want when it cannot count, or when no core is free and long_call is set: a
 * long call with no barrier between steps, whose fair share of busy cores beats one thread). fl_busy_threads: the runnable threads besides the caller
 * and the team's own workers (counted at most once a millisecond), -1 when it cannot tell.
 * fl_core_check: 1 when the count is available here (Linux, and this process may run on every
 * online CPU), else 0. fl_online_cpus: the CPUs the count covers (-1: not available).
 * fl_note_team_member: a team member records its thread id (member 0, the caller, does not). */
int fl_team_for(int want, int long_call);
int fl_busy_threads(void);
int fl_core_check(void);
int fl_online_cpus(void);
void fl_note_team_member(int member);

/* Vector width in bytes of an ISA path (0 for one this build lacks). */
int fl_isa_vector_bytes(int isa);

/* The L1 data cache of one core in bytes, as the CPU reports it (CPUID on x86-64, the system
 * elsewhere), 0 when unknown. Read once and kept: a fact of the machine, the same on every
 * call. */
int fl_l1d_bytes(void);

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
