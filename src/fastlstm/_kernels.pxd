# _kernels.pxd: the C kernels' prototypes (csrc/fastlstm.h), both widths, declared nogil.
# Shapes and the workspace contract are documented in csrc/fastlstm.h and fastlstm_api.h.

cdef extern from "fastlstm.h" nogil:
    ctypedef enum fl_status:
        FL_OK
        FL_ERR_ARG
        FL_ERR_NONFINITE

    enum:
        FL_SIGMOID_EXACT
        FL_SIGMOID_CLIP15

    ctypedef void (*fl_gemm_f32)(int trans_a, int trans_b, int m, int n, int k, float alpha,
                                 const float *a, int lda, const float *b, int ldb, float beta,
                                 float *c, int ldc) noexcept nogil
    ctypedef void (*fl_gemm_f64)(int trans_a, int trans_b, int m, int n, int k, double alpha,
                                 const double *a, int lda, const double *b, int ldb, double beta,
                                 double *c, int ldc) noexcept nogil

    long long fl_seed_workspace_size(int T, int I, int H, int O)
    long long fl_seq_workspace_size(int I, int H)
    ctypedef struct fl_tuning_t:
        long long packed_max_rows
        long long packed_max_bytes
    fl_tuning_t fl_tuning
    void fl_set_tuning(long long packed_max_rows, long long packed_max_bytes)

    void fl_gemm_naive_f32(int trans_a, int trans_b, int m, int n, int k, float alpha,
                           const float *a, int lda, const float *b, int ldb, float beta,
                           float *c, int ldc)
    void fl_gemm_naive_f64(int trans_a, int trans_b, int m, int n, int k, double alpha,
                           const double *a, int lda, const double *b, int ldb, double beta,
                           double *c, int ldc)

    fl_status fl_cell_step_f32(float *h_out, float *c_out, float *gates_out, float *scratch,
                               const float *x, const float *h_prev, const float *c_prev,
                               const float *w_ih, int ld_ih, const float *w_hh, int ld_hh,
                               const float *bias, int B, int I, int H)
    fl_status fl_cell_step_f64(double *h_out, double *c_out, double *gates_out, double *scratch,
                               const double *x, const double *h_prev, const double *c_prev,
                               const double *w_ih, int ld_ih, const double *w_hh, int ld_hh,
                               const double *bias, int B, int I, int H)

    ctypedef struct fl_extras_f32:
        const float *peephole
        float *d_peephole
        float clip
        int input_forget
    ctypedef struct fl_extras_f64:
        const double *peephole
        double *d_peephole
        double clip
        int input_forget

    fl_status fl_seq_forward_f32(float *hidden, int ld_hidden, float *cell, float *gates,
                                 float *c_last, float *w_t, const float *x, int ld_x, const float *h0,
                                 const float *c0, const float *w_ih, int ld_ih,
                                 const float *w_hh, int ld_hh, const float *bias, int T, int B,
                                 int I, int H, int reverse, int sigmoid_mode, int activation,
                                 const fl_extras_f32 *extras, fl_gemm_f32 gemm)
    fl_status fl_seq_forward_f64(double *hidden, int ld_hidden, double *cell, double *gates,
                                 double *c_last, double *w_t, const double *x, int ld_x, const double *h0,
                                 const double *c0, const double *w_ih, int ld_ih,
                                 const double *w_hh, int ld_hh, const double *bias, int T, int B,
                                 int I, int H, int reverse, int sigmoid_mode, int activation,
                                 const fl_extras_f64 *extras, fl_gemm_f64 gemm)

    fl_status fl_seq_backward_f32(float *dx, int ld_dx, float *dh0, float *dc0, float *dw_ih,
                                  int ld_dw_ih, float *dw_hh, int ld_dw_hh, float *dbias,
                                  float *d_gates, float *dh, float *dc, float *dw_t,
                                  const float *dy,
                                  int ld_dy, const float *dh_last, const float *dc_last,
                                  const float *x, int ld_x, const float *h0, const float *c0,
                                  const float *hidden, int ld_hidden, const float *cell,
                                  const float *gates, const float *w_ih, int ld_ih,
                                  const float *w_hh, int ld_hh, int T, int B, int I, int H,
                                  int reverse, int activation, const fl_extras_f32 *extras,
                                  fl_gemm_f32 gemm)
    fl_status fl_seq_backward_f64(double *dx, int ld_dx, double *dh0, double *dc0, double *dw_ih,
                                  int ld_dw_ih, double *dw_hh, int ld_dw_hh, double *dbias,
                                  double *d_gates, double *dh, double *dc, double *dw_t,
                                  const double *dy,
                                  int ld_dy, const double *dh_last, const double *dc_last,
                                  const double *x, int ld_x, const double *h0, const double *c0,
                                  const double *hidden, int ld_hidden, const double *cell,
                                  const double *gates, const double *w_ih, int ld_ih,
                                  const double *w_hh, int ld_hh, int T, int B, int I, int H,
                                  int reverse, int activation, const fl_extras_f64 *extras,
                                  fl_gemm_f64 gemm)

    fl_status fl_seed_forward_f32(float *hidden, float *cell, float *gates, float *outputs,
                                  float *w_t, const float *x, const float *w, const float *b,
                                  const float *wy, const float *by, int T, int I, int H, int O,
                                  fl_gemm_f32 gemm)
    fl_status fl_seed_forward_f64(double *hidden, double *cell, double *gates, double *outputs,
                                  double *w_t, const double *x, const double *w, const double *b,
                                  const double *wy, const double *by, int T, int I, int H, int O,
                                  fl_gemm_f64 gemm)

    fl_status fl_seed_backward_f32(float *w, float *b, float *wy, float *by, double *loss,
                                   float *workspace, const float *targets, const float *x,
                                   const float *hidden, const float *cell, const float *gates,
                                   int T, int I, int H, int O, float lr, float clip,
                                   fl_gemm_f32 gemm)
    fl_status fl_seed_backward_f64(double *w, double *b, double *wy, double *by, double *loss,
                                   double *workspace, const double *targets, const double *x,
                                   const double *hidden, const double *cell,
                                   const double *gates, int T, int I, int H, int O, double lr,
                                   double clip, fl_gemm_f64 gemm)

    fl_status fl_seed_train_f32(float *w, float *b, float *wy, float *by, double *epoch_loss,
                                int *done_epochs, int *done_seqs, float *hidden, float *cell,
                                float *gates, float *w_t, float *workspace,
                                const float *x_all, const float *y_all,
                                const long long *offsets, int n_seq, int epochs, int I, int H,
                                int O, float lr, float clip, fl_gemm_f32 gemm)
    fl_status fl_seed_train_f64(double *w, double *b, double *wy, double *by,
                                double *epoch_loss, int *done_epochs, int *done_seqs,
                                double *hidden, double *cell, double *gates, double *w_t,
                                double *workspace, const double *x_all, const double *y_all,
                                const long long *offsets, int n_seq, int epochs, int I, int H,
                                int O, double lr, double clip, fl_gemm_f64 gemm)
