/* workspace.c: sizes of the scratch buffers the kernels expect, shared by both widths. */
#include "fastlstm.h"

long long fl_seed_workspace_size(int T, int I, int H, int O)
{
    const long long G = 4LL * H, K = (long long)H + I;
    /* err (T, O), dy (T, H), d_gates (T, G), dh (H), dc (H), dW (G, K), db (G), dWy (O, H),
     * dby (O), dW^T (K, G): the order of the views in fl_seed_backward. */
    return (long long)T * O + (long long)T * H + (long long)T * G + 2LL * H + G * K + G +
           (long long)O * H + O + K * G;
}
