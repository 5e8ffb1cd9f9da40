/* dispatch_impl.h: the entry points of fastlstm_api.h for one width, included twice by
 * dispatch.c (like fastlstm_api.h, without an include guard). Each looks up the table of the
 * ISA path it is asked for and refuses a path this build or CPU lacks. */

long long FL_FN(fl_packed_size)(int isa, int I, int H)
{
    const FL_FN(fl_kernels) *k = FL_TABLE_FN(isa);
    return k ? k->packed_size(I, H) : -1;
}

fl_status FL_FN(fl_pack_weights_parts)(int isa, real *packed, const FL_FN(fl_weights) *w, int I,
                                       int H, int parts)
{
    const FL_FN(fl_kernels) *k = FL_TABLE_FN(isa);
    return k ? k->pack_weights(packed, w, I, H, parts) : FL_ERR_ISA;
}

fl_status FL_FN(fl_pack_weights)(int isa, real *packed, const FL_FN(fl_weights) *w, int I, int H)
{
    return FL_FN(fl_pack_weights_parts)(isa, packed, w, I, H, FL_PACK_ALL);
}

fl_status FL_FN(fl_seq_forward)(const fl_exec *ex, const fl_dims *d, const fl_cell *cell,
                                const FL_FN(fl_weights) *w, const FL_FN(fl_fwd_bufs) *f)
{
    if (!ex || !d) return FL_ERR_ARG;
    const FL_FN(fl_kernels) *k = FL_TABLE_FN(ex->isa);
    return k ? k->seq_forward(ex, d, cell, w, f) : FL_ERR_ISA;
}

long long FL_FN(fl_bwd_scratch_size_rows)(int isa, const fl_dims *d, long long rows)
{
    const FL_FN(fl_kernels) *k = FL_TABLE_FN(isa);
    return k && d ? k->bwd_scratch_size(d, rows) : -1;
}

long long FL_FN(fl_bwd_scratch_size)(int isa, const fl_dims *d)
{
    return d ? FL_FN(fl_bwd_scratch_size_rows)(isa, d, (long long)d->T * d->B) : -1;
}

fl_status FL_FN(fl_seq_backward)(const fl_exec *ex, const fl_dims *d, const fl_cell *cell,
                                 const FL_FN(fl_weights) *w, const FL_FN(fl_fwd_bufs) *f,
                                 const FL_FN(fl_bwd_bufs) *b)
{
    if (!ex || !d) return FL_ERR_ARG;
    const FL_FN(fl_kernels) *k = FL_TABLE_FN(ex->isa);
    return k ? k->seq_backward(ex, d, cell, w, f, b) : FL_ERR_ISA;
}

long long FL_FN(fl_gemm_scratch_size)(int isa, int k_, int n)
{
    const FL_FN(fl_kernels) *k = FL_TABLE_FN(isa);
    return k ? k->gemm_scratch_size(k_, n) : -1;
}

fl_status FL_FN(fl_gemm)(const fl_exec *ex, int trans_a, int trans_b, int m, int n, int k_,
                         real alpha, const real *a, int lda, const real *b, int ldb, real beta,
                         real *c, int ldc, real *scratch)
{
    if (!ex || m < 0 || n < 0 || k_ < 0) return FL_ERR_ARG;
    const FL_FN(fl_kernels) *k = FL_TABLE_FN(ex->isa);
    if (!k) return FL_ERR_ISA;
    if (m == 0 || n == 0) return FL_OK;
    k->gemm(ex, trans_a, trans_b, m, n, k_, alpha, a, lda, b, ldb, beta, c, ldc, scratch);
    return FL_OK;
}

fl_status FL_FN(fl_gemm_blocking)(int isa, const fl_blocking *req, int out[5])
{
    const FL_FN(fl_kernels) *k = FL_TABLE_FN(isa);
    if (!k || !out) return k ? FL_ERR_ARG : FL_ERR_ISA;
    k->gemm_blocking(req, out);
    return FL_OK;
}

fl_status FL_FN(fl_cell_step)(int isa, real *h_out, real *c_out, real *gates_out, real *scratch,
                              const real *x, const real *h_prev, const real *c_prev,
                              const real *w_ih, int ld_ih, const real *w_hh, int ld_hh,
                              const real *bias, int B, int I, int H)
{
    const FL_FN(fl_kernels) *k = FL_TABLE_FN(isa);
    if (!k) return FL_ERR_ISA;
    if (B < 0 || I < 0 || H < 1 || !h_out || !c_out || !scratch || !x || !h_prev || !c_prev ||
        !w_ih || !w_hh || !bias)
        return FL_ERR_ARG;
    const int G = 4 * H;
    for (int r = 0; r < B; r++) memcpy(scratch + (long long)r * G, bias, sizeof(real) * (size_t)G);
    FL_FN(fl_gemm_naive)(0, 1, B, G, I, 1, x, I, w_ih, ld_ih, 1, scratch, G);
    FL_FN(fl_gemm_naive)(0, 1, B, G, H, 1, h_prev, H, w_hh, ld_hh, 1, scratch, G);
    k->gate_forward(h_out, c_out, scratch, c_prev, B, H);
    if (gates_out) memcpy(gates_out, scratch, sizeof(real) * (size_t)B * (size_t)G);
    return FL_OK;
}

/* The small-model seed recurrence of an ISA path, for seed.c (NULL: none for this path). */
const FL_FN(fl_kernels) *FL_FN(fl_kernels_of)(int isa) { return FL_TABLE_FN(isa); }
