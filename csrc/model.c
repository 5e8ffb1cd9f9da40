/*
 * model.c: a whole model in one call, both widths from one body (model_impl.h).
 *
 * The model is seed 002's (fastlstm.LSTMRegressor): a stack of (bi)directional LSTM layers
 * whose last layer's final hidden states feed a dense head. `fl_model_predict` runs it over any
 * number of windows, in chunks of rows so its scratch stays bounded; `fl_model_train_epoch`
 * runs one training epoch: for each mini-batch in the caller's order, the gather, the layers'
 * forward and backward on the sequence kernels (whatever ISA path fl_exec names), the head,
 * the MSE loss, clipping, the SGD or Adam update (Keras's rules) and the non-finite checks,
 * then the validation loss. Python keeps only what happens once per epoch (early stopping,
 * the history, the progress bar), so a batch costs no interpreter work at all.
 *
 * The loops here are small (the head, the loss, the update, the gather); the products and the
 * gate math are the engine's. Like every kernel, these never allocate: the caller hands a
 * workspace of fl_model_*_scratch_size values.
 */
#include <math.h>
#include <string.h>

#include "fastlstm.h"

#ifdef _OPENMP
#include <omp.h>
static double model_now(void) { return omp_get_wtime(); }
#else
#include <time.h>
static double model_now(void) { return (double)clock() / CLOCKS_PER_SEC; }
#endif

/* Rows of a prediction chunk: its scratch (the input, two layer outputs, the gates of every
 * step) stays near 4 Mi values whatever the number of windows. */
static long long model_chunk_rows(const fl_model_dims *m, int T, long long N)
{
    const long long G = 4LL * m->H, DH = (long long)m->D * m->H;
    const long long per_row = (long long)T * (G + 2 * DH + m->I) + m->H + DH + m->O;
    long long rows = (1LL << 22) / per_row;
    if (rows < 1) rows = 1;
    if (rows > N) rows = N;
    return rows;
}

static int model_dims_ok(const fl_model_dims *m)
{
    return m && m->L >= 1 && (m->D == 1 || m->D == 2) && m->I >= 1 && m->H >= 1 && m->O >= 1 &&
           m->activation >= FL_ACT_TANH && m->activation <= FL_ACT_LINEAR;
}

/* The steps of a batch of windows of different lengths (fl_steps in fastlstm.h): the batch's
 * rows sorted by length, longest first, stably; row r of the sorted order is batch row
 * pos[r], of length len[r]; step t runs its first bs[t] rows, from row off[t] of the steps'
 * rows (off[T]: all of them). The workspace carves it (model_impl.h). */
typedef struct {
    int *bs, *pos, *len, *count;
    long long *off;
} model_steps;

/* Whether every length lies in [0, T]. */
static int model_lengths_ok(const int *lengths, long long N, int T)
{
    for (long long n = 0; n < N; n++)
        if (lengths[n] < 0 || lengths[n] > T) return 0;
    return 1;
}

/* The steps of batch rows 0 .. B: window idx[b] (or first + b when idx is NULL) of the
 * windows' lengths. A counting sort (count holds T + 1 values). */
static void model_steps_make(model_steps *s, const int *lengths, const long long *idx,
                             long long first, int B, int T)
{
    for (int l = 0; l <= T; l++) s->count[l] = 0;
    for (int b = 0; b < B; b++) s->count[lengths[idx ? idx[b] : first + b]]++;
    int at = 0;
    for (int l = T; l >= 0; l--) { /* where each length's rows start: the longest first */
        const int n = s->count[l];
        s->count[l] = at;
        at += n;
    }
    for (int b = 0; b < B; b++) {
        const int l = lengths[idx ? idx[b] : first + b], r = s->count[l]++;
        s->pos[r] = b;
        s->len[r] = l;
    }
    int n = B;
    s->off[0] = 0;
    for (int t = 0; t < T; t++) {
        while (n > 0 && s->len[n - 1] <= t) n--;
        s->bs[t] = n;
        s->off[t + 1] = s->off[t] + n;
    }
}

#define real float
#define FL_FN(name) name##_f32
#define FL_SQRT sqrtf
#include "model_impl.h"
#undef real
#undef FL_FN
#undef FL_SQRT

#define real double
#define FL_FN(name) name##_f64
#define FL_SQRT sqrt
#include "model_impl.h"
#undef real
#undef FL_FN
#undef FL_SQRT
