# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""The one Cython boundary between Python and the C kernels in csrc/.

Buffers in (flat, C-contiguous, already validated and allocated by the Python classes), the GIL
released around each kernel call, status codes turned into exceptions in one place (`_check`).
Sizes are checked once more here against the buffers so that no call can read or write out of
bounds even if a caller above forgot a check.
"""

from libc.stdint cimport int64_t
from scipy.linalg.cython_blas cimport sgemm, dgemm

from fastlstm._kernels cimport *

ctypedef fused floating:
    float
    double


# --------------------------------------------------------------------------------------------
# BLAS: row-major GEMM on SciPy's column-major sgemm/dgemm. Row-major C = op(A) op(B) is the
# column-major C^T = op(B)^T op(A)^T, so the operands swap places and keep their own flags.
# --------------------------------------------------------------------------------------------

cdef void _sgemm_rowmajor(int trans_a, int trans_b, int m, int n, int k, float alpha,
                          const float *a, int lda, const float *b, int ldb, float beta,
                          float *c, int ldc) noexcept nogil:
    cdef char ta = b'T' if trans_b else b'N'
    cdef char tb = b'T' if trans_a else b'N'
    sgemm(&ta, &tb, &n, &m, &k, &alpha, <float *>b, &ldb, <float *>a, &lda, &beta, c, &ldc)


cdef void _dgemm_rowmajor(int trans_a, int trans_b, int m, int n, int k, double alpha,
                          const double *a, int lda, const double *b, int ldb, double beta,
                          double *c, int ldc) noexcept nogil:
    cdef char ta = b'T' if trans_b else b'N'
    cdef char tb = b'T' if trans_a else b'N'
    dgemm(&ta, &tb, &n, &m, &k, &alpha, <double *>b, &ldb, <double *>a, &lda, &beta, c, &ldc)


# Whether the kernels may call BLAS (else they use their plain C loops for every size).
# Module-level configuration, read once per call; set through fastlstm.set_blas_enabled().
cdef bint _use_blas = True


def set_blas_enabled(bint enabled):
    """Let the kernels call SciPy's BLAS for large products (default) or never."""
    global _use_blas
    _use_blas = enabled


def blas_enabled():
    return bool(_use_blas)


cdef inline fl_gemm_f32 _gemm32() noexcept nogil:
    if _use_blas:
        return _sgemm_rowmajor
    return NULL


cdef inline fl_gemm_f64 _gemm64() noexcept nogil:
    if _use_blas:
        return _dgemm_rowmajor
    return NULL


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss; the weights were left at their last finite
    values."""


cdef int _check(fl_status status, str where) except -1:
    """The one place where a C status becomes a Python exception."""
    if status == FL_OK:
        return 0
    if status == FL_ERR_NONFINITE:
        raise NonFiniteLossError(
            f"{where}: the loss is not finite (NaN or inf); the weights were left at their "
            "last finite values. Lower the learning rate, scale the data, or clip gradients.")
    raise ValueError(f"{where}: the kernel refused its arguments (status {<int>status}); "
                     "this is a bug in fastlstm's validation, please report it")


cdef int _need(Py_ssize_t have, int64_t want, str name) except -1:
    if want < 0 or have < want:
        raise ValueError(f"internal: buffer {name} holds {have} values, the kernel needs {want}")
    return 0


def gemm(floating[:, ::1] a, floating[:, ::1] b, floating[:, ::1] c, bint trans_a=False,
         bint trans_b=False, double alpha=1.0, double beta=0.0, bint use_blas=True):
    """c = alpha op(a) op(b) + beta c through the kernels' GEMM dispatch (for tests/benchmarks)."""
    cdef int m = a.shape[1] if trans_a else a.shape[0]
    cdef int k = a.shape[0] if trans_a else a.shape[1]
    cdef int kb = b.shape[1] if trans_b else b.shape[0]
    cdef int n = b.shape[0] if trans_b else b.shape[1]
    cdef int i, j
    if k != kb or c.shape[0] != m or c.shape[1] != n:
        raise ValueError(f"gemm: shapes do not fit: op(a) ({m}, {k}), op(b) ({kb}, {n}), "
                         f"c ({c.shape[0]}, {c.shape[1]})")
    if m == 0 or n == 0:
        return
    if k == 0:  # nothing to multiply: C = beta C (BLAS semantics)
        for i in range(m):
            for j in range(n):
                c[i, j] = 0 if beta == 0 else c[i, j] * beta
        return
    cdef int lda = a.shape[1], ldb = b.shape[1], ldc = c.shape[1]
    if floating is float:
        with nogil:
            if use_blas:
                _sgemm_rowmajor(trans_a, trans_b, m, n, k, <float>alpha, &a[0, 0], lda,
                                &b[0, 0], ldb, <float>beta, &c[0, 0], ldc)
            else:
                fl_gemm_naive_f32(trans_a, trans_b, m, n, k, <float>alpha, &a[0, 0], lda,
                                  &b[0, 0], ldb, <float>beta, &c[0, 0], ldc)
    else:
        with nogil:
            if use_blas:
                _dgemm_rowmajor(trans_a, trans_b, m, n, k, alpha, &a[0, 0], lda, &b[0, 0], ldb,
                                beta, &c[0, 0], ldc)
            else:
                fl_gemm_naive_f64(trans_a, trans_b, m, n, k, alpha, &a[0, 0], lda, &b[0, 0],
                                  ldb, beta, &c[0, 0], ldc)


# --------------------------------------------------------------------------------------------
# One cell step
# --------------------------------------------------------------------------------------------

def cell_step(floating[::1] h_out, floating[::1] c_out, floating[::1] gates_out,
              floating[::1] scratch, const floating[::1] x, const floating[::1] h_prev,
              const floating[::1] c_prev, const floating[::1] w_ih, const floating[::1] w_hh,
              const floating[::1] bias, int B, int I, int H):
    """One LSTM cell step for B rows; weights in gate order i, f, g, o: w_ih (G, I),
    w_hh (G, H), bias (G); gates_out (B, G) receives the activated gates."""
    cdef int64_t G = 4 * <int64_t>H
    _need(h_out.shape[0], B * <int64_t>H, "h_out")
    _need(c_out.shape[0], B * <int64_t>H, "c_out")
    _need(gates_out.shape[0], B * G, "gates_out")
    _need(scratch.shape[0], B * G, "scratch")
    _need(x.shape[0], B * <int64_t>I, "x")
    _need(h_prev.shape[0], B * <int64_t>H, "h_prev")
    _need(c_prev.shape[0], B * <int64_t>H, "c_prev")
    _need(w_ih.shape[0], G * I, "w_ih")
    _need(w_hh.shape[0], G * H, "w_hh")
    _need(bias.shape[0], G, "bias")
    if B == 0:
        return
    if I < 1 or H < 1:
        raise ValueError("internal: cell_step needs I >= 1 and H >= 1")
    cdef fl_status st
    if floating is float:
        with nogil:
            st = fl_cell_step_f32(&h_out[0], &c_out[0], &gates_out[0], &scratch[0],
                                  &x[0], &h_prev[0], &c_prev[0], &w_ih[0], I, &w_hh[0], H,
                                  &bias[0], B, I, H)
    else:
        with nogil:
            st = fl_cell_step_f64(&h_out[0], &c_out[0], &gates_out[0], &scratch[0],
                                  &x[0], &h_prev[0], &c_prev[0], &w_ih[0], I, &w_hh[0], H,
                                  &bias[0], B, I, H)
    _check(st, "lstm_step")


# --------------------------------------------------------------------------------------------
# The seed model (fastlstm.LSTM)
# --------------------------------------------------------------------------------------------

def seed_workspace_size(int T, int I, int H, int O):
    return fl_seed_workspace_size(T, I, H, O)


def _set_tuning(long long packed_max_rows, long long packed_max_bytes):
    """Dispatch limits of the sequence kernels (csrc/fastlstm.h, fl_tuning_t); for tuning
    benchmarks only. Results do not depend on them beyond rounding."""
    fl_set_tuning(packed_max_rows, packed_max_bytes)


def _get_tuning():
    return fl_tuning.packed_max_rows, fl_tuning.packed_max_bytes


def seq_workspace_size(int I, int H):
    """Elements of the w_t / dw_t scratch of seq_forward / seq_backward (either dtype)."""
    return fl_seq_workspace_size(I, H)


def seed_forward(floating[::1] hidden, floating[::1] cell, floating[::1] gates,
                 floating[::1] outputs, floating[::1] w_t, const floating[::1] x,
                 const floating[::1] w,
                 const floating[::1] b, const floating[::1] wy, const floating[::1] by,
                 int T, int I, int H, int O):
    """Seed forward of one sequence: hidden, cell (T, H), gates (T, 4H), outputs (T, O) out."""
    cdef int64_t G = 4 * <int64_t>H, K = <int64_t>H + I
    _need(hidden.shape[0], T * <int64_t>H, "hidden")
    _need(cell.shape[0], T * <int64_t>H, "cell")
    _need(gates.shape[0], T * G, "gates")
    _need(outputs.shape[0], T * <int64_t>O, "outputs")
    _need(w_t.shape[0], fl_seq_workspace_size(I, H), "w_t")
    _need(x.shape[0], T * <int64_t>I, "x")
    _need(w.shape[0], G * K, "w")
    _need(b.shape[0], G, "b")
    _need(wy.shape[0], O * <int64_t>H, "wy")
    _need(by.shape[0], O, "by")
    if T == 0:
        return
    cdef fl_status st
    if floating is float:
        with nogil:
            st = fl_seed_forward_f32(&hidden[0], &cell[0], &gates[0], &outputs[0], &w_t[0],
                                     &x[0], &w[0],
                                     &b[0], &wy[0], &by[0], T, I, H, O, _gemm32())
    else:
        with nogil:
            st = fl_seed_forward_f64(&hidden[0], &cell[0], &gates[0], &outputs[0], &w_t[0],
                                     &x[0], &w[0],
                                     &b[0], &wy[0], &by[0], T, I, H, O, _gemm64())
    _check(st, "LSTM.forward")


def seed_backward(floating[::1] w, floating[::1] b, floating[::1] wy, floating[::1] by,
                  floating[::1] workspace, const floating[::1] targets, const floating[::1] x,
                  const floating[::1] hidden, const floating[::1] cell,
                  const floating[::1] gates, int T, int I, int H, int O, double lr,
                  double clip):
    """Seed BPTT + clipped SGD update of w, b, wy, by in place; returns the loss / T."""
    cdef int64_t G = 4 * <int64_t>H, K = <int64_t>H + I
    _need(w.shape[0], G * K, "w")
    _need(b.shape[0], G, "b")
    _need(wy.shape[0], O * <int64_t>H, "wy")
    _need(by.shape[0], O, "by")
    _need(workspace.shape[0], fl_seed_workspace_size(T, I, H, O), "workspace")
    _need(targets.shape[0], T * <int64_t>O, "targets")
    _need(x.shape[0], T * <int64_t>I, "x")
    _need(hidden.shape[0], T * <int64_t>H, "hidden")
    _need(cell.shape[0], T * <int64_t>H, "cell")
    _need(gates.shape[0], T * G, "gates")
    if T < 1:
        raise ValueError("internal: seed_backward needs at least one step")
    cdef double loss = 0
    cdef fl_status st
    if floating is float:
        with nogil:
            st = fl_seed_backward_f32(&w[0], &b[0], &wy[0], &by[0], &loss, &workspace[0],
                                      &targets[0], &x[0], &hidden[0], &cell[0], &gates[0],
                                      T, I, H, O, <float>lr, <float>clip, _gemm32())
    else:
        with nogil:
            st = fl_seed_backward_f64(&w[0], &b[0], &wy[0], &by[0], &loss, &workspace[0],
                                      &targets[0], &x[0], &hidden[0], &cell[0], &gates[0],
                                      T, I, H, O, lr, clip, _gemm64())
    _check(st, "LSTM.backward")
    return loss


def seed_train(floating[::1] w, floating[::1] b, floating[::1] wy, floating[::1] by,
               double[::1] epoch_loss, floating[::1] hidden, floating[::1] cell,
               floating[::1] gates, floating[::1] w_t, floating[::1] workspace,
               const floating[::1] x_all, const floating[::1] y_all,
               const long long[::1] offsets, int epochs, int I, int H, int O, double lr,
               double clip, int epoch_offset=0):
    """`epochs` passes of forward + backward + update over all sequences in one C call.
    Returns the number of epochs run; on a non-finite loss raises NonFiniteLossError after
    filling epoch_loss for the completed epochs (the exception carries `epochs_done`, counted
    from `epoch_offset`)."""
    cdef int n_seq = offsets.shape[0] - 1
    cdef int64_t G = 4 * <int64_t>H, K = <int64_t>H + I, t_max = 0, rows
    cdef int s
    if n_seq < 1:
        raise ValueError("internal: seed_train needs at least one sequence")
    for s in range(n_seq):
        if offsets[s + 1] <= offsets[s] or offsets[s] < 0:
            raise ValueError("internal: seed_train offsets must increase")
        t_max = max(t_max, offsets[s + 1] - offsets[s])
    rows = offsets[n_seq]
    _need(w.shape[0], G * K, "w")
    _need(b.shape[0], G, "b")
    _need(wy.shape[0], O * <int64_t>H, "wy")
    _need(by.shape[0], O, "by")
    _need(epoch_loss.shape[0], epochs, "epoch_loss")
    _need(hidden.shape[0], t_max * H, "hidden")
    _need(cell.shape[0], t_max * H, "cell")
    _need(gates.shape[0], t_max * G, "gates")
    _need(w_t.shape[0], fl_seq_workspace_size(I, H), "w_t")
    _need(workspace.shape[0], fl_seed_workspace_size(<int>t_max, I, H, O), "workspace")
    _need(x_all.shape[0], rows * I, "x_all")
    _need(y_all.shape[0], rows * O, "y_all")
    cdef int done_epochs = 0, done_seqs = 0
    cdef fl_status st
    if epochs == 0:
        return 0
    if floating is float:
        with nogil:
            st = fl_seed_train_f32(&w[0], &b[0], &wy[0], &by[0], &epoch_loss[0], &done_epochs,
                                   &done_seqs, &hidden[0], &cell[0], &gates[0], &w_t[0],
                                   &workspace[0], &x_all[0], &y_all[0], &offsets[0], n_seq,
                                   epochs, I, H, O, <float>lr, <float>clip, _gemm32())
    else:
        with nogil:
            st = fl_seed_train_f64(&w[0], &b[0], &wy[0], &by[0], &epoch_loss[0], &done_epochs,
                                   &done_seqs, &hidden[0], &cell[0], &gates[0], &w_t[0],
                                   &workspace[0], &x_all[0], &y_all[0], &offsets[0], n_seq,
                                   epochs, I, H, O, lr, clip, _gemm64())
    try:
        _check(st, f"LSTM.train (epoch {epoch_offset + done_epochs}, sequence {done_seqs})")
    except NonFiniteLossError as err:
        err.epochs_done = epoch_offset + done_epochs
        raise
    return done_epochs


# --------------------------------------------------------------------------------------------
# One layer, one direction, a whole sequence (fastlstm.LSTMLayer)
# --------------------------------------------------------------------------------------------

cdef inline floating *_ptr(floating[::1] buf) noexcept:
    """The data of an optional buffer: NULL for None (the kernels' "absent")."""
    if buf is None:
        return NULL
    return &buf[0]


cdef inline const floating *_cptr(const floating[::1] buf) noexcept:
    if buf is None:
        return NULL
    return &buf[0]


cdef int _need_rows(Py_ssize_t have, int64_t rows, int64_t ld, int64_t width, str name) except -1:
    """A (rows, width) block whose rows are ld apart fits in a buffer of `have` values."""
    if rows > 0:
        _need(have, (rows - 1) * ld + width, name)
    return 0


# Codes of enum fl_activation (csrc/fastlstm.h), by Keras's names for them.
ACTIVATIONS = {"tanh": 0, "relu": 1, "linear": 2}


cdef int _check_activation(int activation) except -1:
    if activation not in (0, 1, 2):
        raise ValueError(f"internal: activation code {activation}")
    return 0


cdef int _check_clip(double clip) except -1:
    if not clip >= 0:  # also refuses NaN
        raise ValueError(f"internal: clip must be >= 0, got {clip}")
    return 0


def seq_forward(floating[::1] hidden, int ld_hidden, floating[::1] cell, floating[::1] gates,
                floating[::1] c_last, floating[::1] w_t, const floating[::1] x,
                const floating[::1] h0, const floating[::1] c0, const floating[::1] w_ih,
                const floating[::1] w_hh, const floating[::1] bias, int T, int B, int I, int H,
                bint reverse, int activation=0, const floating[::1] peephole=None,
                double clip=0.0, bint input_forget=False):
    """fl_seq_forward on flat buffers; cell None = inference (then c_last is required);
    h0, c0, w_t, peephole (3H, ONNX order i, o, f) may be None; activation as ACTIVATIONS;
    clip > 0 and input_forget select the ONNX cell's extras."""
    cdef int64_t G = 4 * <int64_t>H, rows = <int64_t>T * B
    if hidden is None or gates is None or x is None or w_ih is None or w_hh is None or bias is None:
        raise ValueError("internal: seq_forward needs hidden, gates, x and the weights")
    if cell is None and c_last is None:
        raise ValueError("internal: inference needs c_last")
    _need_rows(hidden.shape[0], rows, ld_hidden, H, "hidden")
    _need(gates.shape[0], rows * G, "gates")
    _need(x.shape[0], rows * I, "x")
    _need(w_ih.shape[0], G * I, "w_ih")
    _need(w_hh.shape[0], G * H, "w_hh")
    _need(bias.shape[0], G, "bias")
    if cell is not None:
        _need(cell.shape[0], rows * H, "cell")
    if c_last is not None:
        _need(c_last.shape[0], B * <int64_t>H, "c_last")
    if w_t is not None:
        _need(w_t.shape[0], fl_seq_workspace_size(I, H), "w_t")
    if h0 is not None:
        _need(h0.shape[0], B * <int64_t>H, "h0")
    if c0 is not None:
        _need(c0.shape[0], B * <int64_t>H, "c0")
    _check_activation(activation)
    if rows == 0 or I < 1 or H < 1:
        if rows == 0:
            return
        raise ValueError("internal: seq_forward needs I >= 1 and H >= 1")
    if peephole is not None:
        _need(peephole.shape[0], 3 * <int64_t>H, "peephole")
    _check_clip(clip)
    cdef floating *p_cell = _ptr(cell)
    cdef floating *p_c_last = _ptr(c_last)
    cdef floating *p_w_t = _ptr(w_t)
    cdef const floating *p_h0 = _cptr(h0)
    cdef const floating *p_c0 = _cptr(c0)
    cdef bint use_extras = peephole is not None or clip > 0 or input_forget
    cdef fl_extras_f32 ex32
    cdef fl_extras_f64 ex64
    cdef fl_status st
    if floating is float:
        ex32.peephole = _cptr(peephole)
        ex32.d_peephole = NULL
        ex32.clip = <float>clip
        ex32.input_forget = input_forget
        with nogil:
            st = fl_seq_forward_f32(&hidden[0], ld_hidden, p_cell, &gates[0], p_c_last, p_w_t,
                                    &x[0], I, p_h0, p_c0, &w_ih[0], I, &w_hh[0], H, &bias[0],
                                    T, B, I, H, reverse, FL_SIGMOID_EXACT, activation,
                                    &ex32 if use_extras else NULL, _gemm32())
    else:
        ex64.peephole = _cptr(peephole)
        ex64.d_peephole = NULL
        ex64.clip = clip
        ex64.input_forget = input_forget
        with nogil:
            st = fl_seq_forward_f64(&hidden[0], ld_hidden, p_cell, &gates[0], p_c_last, p_w_t,
                                    &x[0], I, p_h0, p_c0, &w_ih[0], I, &w_hh[0], H, &bias[0],
                                    T, B, I, H, reverse, FL_SIGMOID_EXACT, activation,
                                    &ex64 if use_extras else NULL, _gemm64())
    _check(st, "LSTMLayer.forward")


def seq_backward(floating[::1] dx, floating[::1] dh0, floating[::1] dc0, floating[::1] dw_ih,
                 floating[::1] dw_hh, floating[::1] dbias, floating[::1] d_gates,
                 floating[::1] dh, floating[::1] dc, floating[::1] dw_t,
                 const floating[::1] dy, int ld_dy, const floating[::1] dh_last,
                 const floating[::1] dc_last, const floating[::1] x, const floating[::1] h0,
                 const floating[::1] c0, const floating[::1] hidden, int ld_hidden,
                 const floating[::1] cell, const floating[::1] gates,
                 const floating[::1] w_ih, const floating[::1] w_hh, int T, int B, int I, int H,
                 bint reverse, int activation=0, const floating[::1] peephole=None,
                 floating[::1] d_peephole=None, double clip=0.0, bint input_forget=False):
    """fl_seq_backward on flat buffers (dy, dh_last, dc_last, h0, c0, dw_t may be None);
    the extras as in seq_forward, d_peephole (3H) required with peephole."""
    cdef int64_t G = 4 * <int64_t>H, rows = <int64_t>T * B, BH = <int64_t>B * H
    _need(dx.shape[0], rows * I, "dx")
    _need(dh0.shape[0], BH, "dh0")
    _need(dc0.shape[0], BH, "dc0")
    _need(dw_ih.shape[0], G * I, "dw_ih")
    _need(dw_hh.shape[0], G * H, "dw_hh")
    _need(dbias.shape[0], G, "dbias")
    _need(d_gates.shape[0], rows * G, "d_gates")
    _need(dh.shape[0], BH, "dh")
    _need(dc.shape[0], BH, "dc")
    _need(x.shape[0], rows * I, "x")
    _need_rows(hidden.shape[0], rows, ld_hidden, H, "hidden")
    _need(cell.shape[0], rows * H, "cell")
    _need(gates.shape[0], rows * G, "gates")
    _need(w_ih.shape[0], G * I, "w_ih")
    _need(w_hh.shape[0], G * H, "w_hh")
    if dy is not None:
        _need_rows(dy.shape[0], rows, ld_dy, H, "dy")
    for buf, name in ((dh_last, "dh_last"), (dc_last, "dc_last"), (h0, "h0"), (c0, "c0")):
        if buf is not None:
            _need(buf.shape[0], BH, name)
    if dw_t is not None:
        _need(dw_t.shape[0], fl_seq_workspace_size(I, H), "dw_t")
    _check_activation(activation)
    if rows == 0 or I < 1 or H < 1:
        raise ValueError("internal: seq_backward needs T, B, I, H >= 1")
    if peephole is not None:
        _need(peephole.shape[0], 3 * <int64_t>H, "peephole")
        if d_peephole is None:
            raise ValueError("internal: seq_backward with peephole needs d_peephole")
        _need(d_peephole.shape[0], 3 * <int64_t>H, "d_peephole")
    _check_clip(clip)
    cdef bint use_extras = peephole is not None or clip > 0 or input_forget
    cdef fl_extras_f32 ex32
    cdef fl_extras_f64 ex64
    cdef floating *p_dw_t = _ptr(dw_t)
    cdef const floating *p_dy = _cptr(dy)
    cdef const floating *p_dhl = _cptr(dh_last)
    cdef const floating *p_dcl = _cptr(dc_last)
    cdef const floating *p_h0 = _cptr(h0)
    cdef const floating *p_c0 = _cptr(c0)
    cdef fl_status st
    if floating is float:
        ex32.peephole = _cptr(peephole)
        ex32.d_peephole = _ptr(d_peephole)
        ex32.clip = <float>clip
        ex32.input_forget = input_forget
        with nogil:
            st = fl_seq_backward_f32(&dx[0], I, &dh0[0], &dc0[0], &dw_ih[0], I, &dw_hh[0], H,
                                     &dbias[0], &d_gates[0], &dh[0], &dc[0], p_dw_t, p_dy, ld_dy,
                                     p_dhl, p_dcl, &x[0], I, p_h0, p_c0, &hidden[0], ld_hidden,
                                     &cell[0], &gates[0], &w_ih[0], I, &w_hh[0], H, T, B, I, H,
                                     reverse, activation, &ex32 if use_extras else NULL,
                                     _gemm32())
    else:
        ex64.peephole = _cptr(peephole)
        ex64.d_peephole = _ptr(d_peephole)
        ex64.clip = clip
        ex64.input_forget = input_forget
        with nogil:
            st = fl_seq_backward_f64(&dx[0], I, &dh0[0], &dc0[0], &dw_ih[0], I, &dw_hh[0], H,
                                     &dbias[0], &d_gates[0], &dh[0], &dc[0], p_dw_t, p_dy, ld_dy,
                                     p_dhl, p_dcl, &x[0], I, p_h0, p_c0, &hidden[0], ld_hidden,
                                     &cell[0], &gates[0], &w_ih[0], I, &w_hh[0], H, T, B, I, H,
                                     reverse, activation, &ex64 if use_extras else NULL,
                                     _gemm64())
    _check(st, "LSTMLayer.backward")
