# _kernels.pxd: the C kernels' prototypes (csrc/fastlstm.h, csrc/fastlstm_api.h), both widths,
# declared nogil. Shapes and the buffer contracts are documented in those headers.

cdef extern from "fastlstm.h" nogil:
    ctypedef enum fl_status:
        FL_OK
        FL_ERR_ARG
        FL_ERR_NONFINITE
        FL_ERR_ISA

    enum:
        FL_SIGMOID_EXACT
        FL_SIGMOID_CLIP15
        FL_NUM_ISAS
        FL_SPLIT_AUTO
        FL_SPLIT_BATCH
        FL_SPLIT_UNITS
        FL_SPLIT_SERIAL
        FL_STEP_AUTO
        FL_STEP_TILE
        FL_STEP_PANELS
        FL_MODEL_MAX_LAYERS
        FL_OPT_SGD
        FL_OPT_ADAM

    ctypedef struct fl_stats:
        int team
        double wall_seconds

    ctypedef struct fl_blocking:
        int mr, kc_bytes, mc_tiles, ncq, kca_bytes

    ctypedef struct fl_exec:
        int isa
        int threads
        int split
        int step
        fl_stats *stats
        fl_blocking gemm
        int fixed_team

    ctypedef struct fl_dims:
        int T, B, I, H

    ctypedef struct fl_steps:
        const int *batch_sizes
        const unsigned char *reset
        int carried

    ctypedef struct fl_cell:
        int reverse
        int sigmoid
        int activation
        int input_forget
        double clip

    ctypedef struct fl_model_dims:
        int L, D, I, H, O
        int activation
        int single_bias

    ctypedef struct fl_epoch_result:
        double loss
        double val_loss
        long long batches
        int failed

    int fl_isa_compiled(int isa)
    int fl_isa_supported(int isa)
    int fl_isa_best()
    const char *fl_isa_name(int isa)
    int fl_isa_by_name(const char *name)
    int fl_openmp()
    int fl_max_threads()
    int fl_team_for(int want, int long_call)
    int fl_busy_threads()
    int fl_core_check()
    int fl_online_cpus()
    int fl_isa_vector_bytes(int isa)
    int fl_l1d_bytes()

    ctypedef struct fl_weights_f32:
        const float *w_ih
        int ld_ih
        const float *w_hh
        int ld_hh
        const float *bias
        const float *peephole
        const float *packed

    ctypedef struct fl_weights_f64:
        const double *w_ih
        int ld_ih
        const double *w_hh
        int ld_hh
        const double *bias
        const double *peephole
        const double *packed

    ctypedef struct fl_fwd_bufs_f32:
        float *hidden
        int ld_hidden
        float *cell
        float *gates
        float *c_last
        const float *x
        int ld_x
        const float *h0
        const float *c0
        const fl_steps *steps
        const float *h_init
        const float *c_init

    ctypedef struct fl_fwd_bufs_f64:
        double *hidden
        int ld_hidden
        double *cell
        double *gates
        double *c_last
        const double *x
        int ld_x
        const double *h0
        const double *c0
        const fl_steps *steps
        const double *h_init
        const double *c_init

    ctypedef struct fl_bwd_bufs_f32:
        float *dx
        int ld_dx
        int dx_accumulate
        float *dh0
        float *dc0
        float *dw_ih
        int ld_dw_ih
        float *dw_hh
        int ld_dw_hh
        float *dbias
        float *d_peephole
        float *d_gates
        float *scratch
        const float *dy
        int ld_dy
        const float *dh_last
        const float *dc_last
        float *h_prev_rows

    ctypedef struct fl_bwd_bufs_f64:
        double *dx
        int ld_dx
        int dx_accumulate
        double *dh0
        double *dc0
        double *dw_ih
        int ld_dw_ih
        double *dw_hh
        int ld_dw_hh
        double *dbias
        double *d_peephole
        double *d_gates
        double *scratch
        const double *dy
        int ld_dy
        const double *dh_last
        const double *dc_last
        double *h_prev_rows

    long long fl_packed_size_f32(int isa, int I, int H)
    long long fl_packed_size_f64(int isa, int I, int H)
    fl_status fl_pack_weights_parts_f32(int isa, float *packed, const fl_weights_f32 *w, int I,
                                        int H, int parts)
    fl_status fl_pack_weights_parts_f64(int isa, double *packed, const fl_weights_f64 *w, int I,
                                        int H, int parts)
    fl_status fl_seq_forward_f32(const fl_exec *ex, const fl_dims *d, const fl_cell *cell,
                                 const fl_weights_f32 *w, const fl_fwd_bufs_f32 *f)
    fl_status fl_seq_forward_f64(const fl_exec *ex, const fl_dims *d, const fl_cell *cell,
                                 const fl_weights_f64 *w, const fl_fwd_bufs_f64 *f)
    long long fl_bwd_scratch_size_rows_f32(int isa, const fl_dims *d, long long rows)
    long long fl_bwd_scratch_size_rows_f64(int isa, const fl_dims *d, long long rows)
    fl_status fl_seq_backward_f32(const fl_exec *ex, const fl_dims *d, const fl_cell *cell,
                                  const fl_weights_f32 *w, const fl_fwd_bufs_f32 *f,
                                  const fl_bwd_bufs_f32 *b)
    fl_status fl_seq_backward_f64(const fl_exec *ex, const fl_dims *d, const fl_cell *cell,
                                  const fl_weights_f64 *w, const fl_fwd_bufs_f64 *f,
                                  const fl_bwd_bufs_f64 *b)

    void fl_gemm_naive_f32(int trans_a, int trans_b, int m, int n, int k, float alpha,
                           const float *a, int lda, const float *b, int ldb, float beta,
                           float *c, int ldc)
    void fl_gemm_naive_f64(int trans_a, int trans_b, int m, int n, int k, double alpha,
                           const double *a, int lda, const double *b, int ldb, double beta,
                           double *c, int ldc)
    long long fl_gemm_scratch_size_f32(int isa, int k, int n)
    long long fl_gemm_scratch_size_f64(int isa, int k, int n)
    fl_status fl_gemm_blocking_f32(int isa, const fl_blocking *req, int *out)
    fl_status fl_gemm_blocking_f64(int isa, const fl_blocking *req, int *out)
    fl_status fl_gemm_f32(const fl_exec *ex, int trans_a, int trans_b, int m, int n, int k,
                          float alpha, const float *a, int lda, const float *b, int ldb,
                          float beta, float *c, int ldc, float *scratch)
    fl_status fl_gemm_f64(const fl_exec *ex, int trans_a, int trans_b, int m, int n, int k,
                          double alpha, const double *a, int lda, const double *b, int ldb,
                          double beta, double *c, int ldc, double *scratch)

    fl_status fl_cell_step_f32(int isa, float *h_out, float *c_out, float *gates_out,
                               float *scratch, const float *x, const float *h_prev,
                               const float *c_prev, const float *w_ih, int ld_ih,
                               const float *w_hh, int ld_hh, const float *bias, int B, int I,
                               int H)
    fl_status fl_cell_step_f64(int isa, double *h_out, double *c_out, double *gates_out,
                               double *scratch, const double *x, const double *h_prev,
                               const double *c_prev, const double *w_ih, int ld_ih,
                               const double *w_hh, int ld_hh, const double *bias, int B, int I,
                               int H)

    fl_status fl_seed_forward_f32(const fl_exec *ex, float *hidden, float *cell, float *gates,
                                  float *outputs, float *packed, const float *x, const float *w,
                                  const float *b, const float *wy, const float *by, int T, int I,
                                  int H, int O)
    fl_status fl_seed_forward_f64(const fl_exec *ex, double *hidden, double *cell, double *gates,
                                  double *outputs, double *packed, const double *x,
                                  const double *w, const double *b, const double *wy,
                                  const double *by, int T, int I, int H, int O)
    long long fl_seed_workspace_size_f32(int isa, int T, int I, int H, int O)
    long long fl_seed_workspace_size_f64(int isa, int T, int I, int H, int O)
    fl_status fl_seed_backward_f32(const fl_exec *ex, float *w, float *b, float *wy, float *by,
                                   double *loss, float *workspace, float *packed,
                                   const float *targets, const float *x, const float *hidden,
                                   const float *cell, const float *gates, int T, int I, int H,
                                   int O, float lr, float clip)
    fl_status fl_seed_backward_f64(const fl_exec *ex, double *w, double *b, double *wy, double *by,
                                   double *loss, double *workspace, double *packed,
                                   const double *targets, const double *x,
                                   const double *hidden, const double *cell,
                                   const double *gates, int T, int I, int H, int O, double lr,
                                   double clip)
    fl_status fl_seed_train_f32(int isa, float *w, float *b, float *wy, float *by,
                                double *epoch_loss, int *done_epochs, int *done_seqs,
                                float *hidden, float *cell, float *gates, float *packed,
                                float *workspace, const float *x_all, const float *y_all,
                                const long long *offsets, int n_seq, int epochs, int I, int H,
                                int O, float lr, float clip)
    fl_status fl_seed_train_f64(int isa, double *w, double *b, double *wy, double *by,
                                double *epoch_loss, int *done_epochs, int *done_seqs,
                                double *hidden, double *cell, double *gates, double *packed,
                                double *workspace, const double *x_all, const double *y_all,
                                const long long *offsets, int n_seq, int epochs, int I, int H,
                                int O, double lr, double clip)

    ctypedef struct fl_model_f32:
        fl_model_dims dims
        float *params
        long long n_params
        const long long *offsets
        float *head
    ctypedef struct fl_model_f64:
        fl_model_dims dims
        double *params
        long long n_params
        const long long *offsets
        double *head

    ctypedef struct fl_optimizer_f32:
        int kind
        double learning_rate, beta_1, beta_2, epsilon, momentum
        int nesterov
        double clip_value, clip_norm
        long long iterations
        float *m_params
        float *v_params
        float *m_head
        float *v_head
    ctypedef struct fl_optimizer_f64:
        int kind
        double learning_rate, beta_1, beta_2, epsilon, momentum
        int nesterov
        double clip_value, clip_norm
        long long iterations
        double *m_params
        double *v_params
        double *m_head
        double *v_head

    long long fl_model_predict_scratch_size_f32(int isa, const fl_model_dims *m, int T,
                                                long long N)
    long long fl_model_predict_scratch_size_f64(int isa, const fl_model_dims *m, int T,
                                                long long N)
    fl_status fl_model_predict_f32(const fl_exec *ex, const fl_model_f32 *m,
                                   const float *const *packed, const float *x,
                                   const int *lengths, long long N, int T, float *out,
                                   float *scratch)
    fl_status fl_model_predict_f64(const fl_exec *ex, const fl_model_f64 *m,
                                   const double *const *packed, const double *x,
                                   const int *lengths, long long N, int T, double *out,
                                   double *scratch)
    long long fl_model_train_scratch_size_f32(int isa, const fl_model_dims *m,
                                              long long n_params, int T, int batch_size,
                                              long long N_val)
    long long fl_model_train_scratch_size_f64(int isa, const fl_model_dims *m,
                                              long long n_params, int T, int batch_size,
                                              long long N_val)
    fl_status fl_model_train_epoch_f32(const fl_exec *ex, const fl_model_f32 *m,
                                       float *grad_params, float *grad_head,
                                       fl_optimizer_f32 *opt, const float *x,
                                       const int *lengths, const float *y,
                                       const long long *order, long long N, int T,
                                       int batch_size, const float *x_val,
                                       const int *lengths_val, const float *y_val,
                                       long long N_val, float *scratch, fl_epoch_result *res)
    fl_status fl_model_train_epoch_f64(const fl_exec *ex, const fl_model_f64 *m,
                                       double *grad_params, double *grad_head,
                                       fl_optimizer_f64 *opt, const double *x,
                                       const int *lengths, const double *y,
                                       const long long *order, long long N, int T,
                                       int batch_size, const double *x_val,
                                       const int *lengths_val, const double *y_val,
                                       long long N_val, double *scratch, fl_epoch_result *res)
