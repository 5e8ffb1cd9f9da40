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
