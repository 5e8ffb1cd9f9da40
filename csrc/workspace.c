/* workspace.c: sizes of the scratch buffers the kernels expect and the dispatch limits, shared
 * by both widths. */
#include "fastlstm.h"

fl_tuning_t fl_tuning = {64, 16LL << 20};

void fl_set_tuning(long long packed_max_rows, long long packed_max_bytes)
{
    fl_tuning.packed_max_rows = packed_max_rows;
    fl_tuning.packed_max_bytes = packed_max_bytes;
}

/* Elements of a k x n operand packed in panels of `nr` columns (lstm_impl.h, pack_panels). */
static long long packed(long long k, long long n, long long nr)
{
    return k * ((n + nr - 1) / nr) * nr;
}

long long fl_seq_workspace_size(int I, int H)
{
    /* Forward: W_ih^T (I, G) and W_hh^T (H, G) packed; backward: W_hh (G, H) packed during the
     * loop, then in turn W_ih (G, I) packed, dW_ih^T (I, G), dW_hh^T (H, G). Panels of 16
     * columns cover both widths (float32 packs 16, float64 8). */
    const long long G = 4LL * H, nr = 16;
    const long long sizes[] = {packed(I, G, nr) + packed(H, G, nr), packed(G, H, nr),
                               packed(G, I, nr), (long long)I * G, (long long)H * G};
    long long n = 0;
    for (int k = 0; k < 5; k++) n = sizes[k] > n ? sizes[k] : n;
    return n;
}

long long fl_seed_workspace_size(int T, int I, int H, int O)
{
    const long long G = 4LL * H, K = (long long)H + I;
    /* err (T, O), dy (T, H), d_gates (T, G), dh (H), dc (H), dW (G, K), db (G), dWy (O, H),
     * dby (O), the sequence backward's scratch: the order of the views in fl_seed_backward. */
    return (long long)T * O + (long long)T * H + (long long)T * G + 2LL * H + G * K + G +
           (long long)O * H + O + fl_seq_workspace_size(I, H);
}
