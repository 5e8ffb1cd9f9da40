# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""The one Cython boundary between Python and the C kernels in csrc/.

Buffers in (flat, C-contiguous, already validated and allocated by the Python classes), the GIL
released around each kernel call, status codes turned into exceptions in one place (`_check`).
Sizes are checked once more here against the buffers so that no call can read or write out of
bounds even if a caller above forgot a check.

Process-wide choices live here and nowhere else: the ISA path (chosen at import: the best the
CPU has, or the environment variable FASTLSTM_ISA) and the thread count (set_num_threads; by
default OpenMP's, which follows OMP_NUM_THREADS and threadpoolctl), the core check
(set_core_check: whether a call's team is cut to the cores others leave free), and in tuning
runs and tests only, the packed product's blocking (_set_gemm_blocking). Every kernel call is
handed them explicitly, so the C side holds no setting; what it keeps are facts of the machine
(the L1 size, and cores.c's count of busy threads, at most a millisecond old).
"""

import os

from cpython.buffer cimport PyBUF_C_CONTIGUOUS, PyBUF_FORMAT, PyBuffer_Release, PyObject_GetBuffer
from libc.stdint cimport int64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcmp, memcpy, memset

cimport numpy as cnp

cdef extern from *:
    # NumPy's headers bring C99's <complex.h>, whose macro I would rename fields called I.
    """
    #undef I
    """

from fastlstm._kernels cimport *

cnp.import_array()

ctypedef fused floating:
    float
    double


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
    if status == FL_ERR_ISA:
        raise RuntimeError(f"{where}: the ISA path is not available on this CPU or build")
    raise ValueError(f"{where}: the kernel refused its arguments (status {<int>status}); "
                     "this is a bug in fastlstm's validation, please report it")


cdef int _need(Py_ssize_t have, int64_t want, str name) except -1:
    if want < 0 or have < want:
        raise ValueError(f"internal: buffer {name} holds {have} values, the kernel needs {want}")
    return 0


cdef int _need_rows(Py_ssize_t have, int64_t rows, int64_t ld, int64_t width, str name) except -1:
    """A (rows, width) block whose rows are ld apart fits in a buffer of `have` values."""
    if ld < width:
        raise ValueError(f"internal: {name} rows are {ld} apart, narrower than {width}")
    if rows > 0:
        _need(have, (rows - 1) * ld + width, name)
    return 0


# --------------------------------------------------------------------------------------------
# ISA paths and threads
# --------------------------------------------------------------------------------------------

ISA_NAMES = tuple(fl_isa_name(k).decode() for k in range(FL_NUM_ISAS))


def compiled_isas():
    """Names of the ISA paths this build has."""
    return [n for k, n in enumerate(ISA_NAMES) if fl_isa_compiled(k)]


def supported_isas():
    """Names of the ISA paths this build has and this CPU runs, best first."""
    names = [n for k, n in enumerate(ISA_NAMES) if fl_isa_supported(k)]
    best = ISA_NAMES[fl_isa_best()]
    return [best] + [n for n in reversed(names) if n != best]


cdef int _isa_by_name(str name, str where) except -1:
    cdef int k = fl_isa_by_name(name.encode())
    if k < 0:
        raise ValueError(f"{where}: unknown ISA path {name!r}; expected one of "
                         f"{', '.join(ISA_NAMES)}")
    if not fl_isa_compiled(k):
        raise RuntimeError(f"{where}: this build of fastlstm has no {name} path (it has "
                           f"{', '.join(compiled_isas())})")
    if not fl_isa_supported(k):
        raise RuntimeError(f"{where}: this CPU cannot run the {name} path (it runs "
                           f"{', '.join(supported_isas())})")
    return k


cdef int _isa = fl_isa_best()
_env_isa = os.environ.get("FASTLSTM_ISA", "").strip().lower()
if _env_isa:
    _isa = _isa_by_name(_env_isa, "FASTLSTM_ISA")


def isa():
    """Code of the ISA path in use (an index into ISA_NAMES)."""
    return _isa


def isa_name():
    return ISA_NAMES[_isa]


def _set_isa(str name):
    """Switch the ISA path of this process (tests and benchmarks; not thread-safe with calls
    in flight in other threads). Returns the previous name. Packed weights are tagged with the
    path they were made for, so layers repack on their next call."""
    global _isa
    previous = ISA_NAMES[_isa]
    _isa = _isa_by_name(name, "isa")
    return previous


def vector_bytes(int isa_code):
    return fl_isa_vector_bytes(isa_code)


def openmp():
    """Whether the kernels were built with OpenMP (without it they run on one thread)."""
    return bool(fl_openmp())


cdef int _threads = 0  # 0: follow OpenMP's default


def set_num_threads(n):
    """Threads each kernel call may use; None goes back to the default (OpenMP's, which follows
    OMP_NUM_THREADS and threadpoolctl's limits)."""
    global _threads
    if n is None:
        _threads = 0
        return
    if isinstance(n, bool) or not isinstance(n, int) and not hasattr(n, "__index__"):
        raise TypeError(f"n: expected a positive int or None, got {type(n).__name__}")
    n = int(n)
    if n < 1:
        raise ValueError(f"n: expected a positive number of threads or None, got {n}")
    _threads = n


def get_num_threads():
    """Threads each kernel call may use (1 in a build without OpenMP)."""
    if not fl_openmp():
        return 1
    return _threads if _threads > 0 else max(1, fl_max_threads())


cdef int _core_check = 1  # cut teams to the free cores (fl_team_for); 0: the team asked for


def set_core_check(on):
    """Whether a call's team is cut to the cores that other runnable threads leave free (on by
    default; fastlstm.set_core_check)."""
    global _core_check
    if not isinstance(on, bool):
        raise TypeError(f"on: expected True or False, got {type(on).__name__}")
    _core_check = 1 if on else 0


def core_check():
    """'on', 'off', or 'unavailable' (not Linux, or this process may run on only some of the
    online CPUs: the machine's count of runnable threads would mix in other CPUs')."""
    if not fl_core_check():
        return "unavailable"
    return "on" if _core_check else "off"


def core_check_on():
    """Whether the kernels cut teams to the free cores now (the check is on and available)."""
    return _core_check != 0 and fl_core_check() != 0


def busy_threads():
    """Runnable threads on the machine besides the caller and fastlstm's own team (counted at
    most once a millisecond), or -1 when this process cannot tell."""
    return fl_busy_threads()


def team_for(int want, bint long_call=False):
    """The team a call that may use ``want`` threads gets now (the core check applied);
    ``long_call``: a long call with no barrier between steps (kept whole when no core is free)."""
    return fl_team_for(want, long_call)


def online_cpus():
    """The CPUs the core check counts, or -1 when it is not available."""
    return fl_online_cpus()


cdef fl_blocking _blocking  # the product's blocking: zeros (the path's choice) but in tuning runs
_blocking.mr = _blocking.kc_bytes = _blocking.mc_tiles = _blocking.ncq = _blocking.kca_bytes = 0


cdef fl_exec _exec(int isa_code, int threads, int split, int step=FL_STEP_AUTO):
    cdef fl_exec ex
    ex.isa = isa_code
    ex.threads = threads if threads > 0 else get_num_threads()
    ex.split = split
    ex.step = step
    ex.stats = NULL
    ex.gemm = _blocking
    ex.fixed_team = 0 if _core_check else 1
    return ex


def l1d_bytes():
    """The L1 data cache of one core in bytes as the CPU reports it (0: unknown); the
    AVX-512 product's blocking follows it."""
    return fl_l1d_bytes()


def _set_gemm_blocking(mr=0, kc_bytes=0, mc_tiles=0, ncq=0, kca_bytes=0):
    """Override the packed product's blocking for this process (tests and tuning runs; 0
    keeps the path's choice for a field; not thread-safe with calls in flight). The results
    are the same bits under every blocking. Returns the previous overrides as a dict."""
    global _blocking
    new = {"mr": mr, "kc_bytes": kc_bytes, "mc_tiles": mc_tiles, "ncq": ncq,
           "kca_bytes": kca_bytes}
    for name, value in new.items():
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**30:
            raise ValueError(f"{name}: expected an int in [0, 2**30), got {value!r}")
    previous = <dict>_blocking  # Cython turns the struct into a dict of its fields, and back
    _blocking = new
    return previous


def gemm_blocking(dtype="float32", isa_code=None):
    """The blocking the packed product of an ISA path (default: the one in use) runs now:
    {"mr": tile rows, "kc": rows of a block of k, "mc": rows of A a block passes over one
    panel, "ncq": panels a row block takes, "kca": rows of a block of k where A is transposed
    and packed (X^T dG)}."""
    import numpy as np
    cdef int code = _isa if isa_code is None else isa_code
    cdef int out[5]
    cdef fl_status st
    if np.dtype(dtype) == np.float32:
        st = fl_gemm_blocking_f32(code, &_blocking, out)
    elif np.dtype(dtype) == np.float64:
        st = fl_gemm_blocking_f64(code, &_blocking, out)
    else:
        raise TypeError(f"dtype: expected float32 or float64, got {dtype!r}")
    _check(st, "gemm_blocking")
    return {"mr": out[0], "kc": out[1], "mc": out[2], "ncq": out[3], "kca": out[4]}


SPLITS = {"auto": FL_SPLIT_AUTO, "batch": FL_SPLIT_BATCH, "units": FL_SPLIT_UNITS,
          "serial": FL_SPLIT_SERIAL}
# How a forward runs its steps (fl_step; the same bits every way).
STEPS = {"auto": FL_STEP_AUTO, "tile": FL_STEP_TILE, "panels": FL_STEP_PANELS}


def same_bytes(a, b):
    """Whether two contiguous arrays hold the same bytes (the packed-weights cache's check)."""
    cdef const unsigned char[::1] x = memoryview(a).cast("B")
    cdef const unsigned char[::1] y = memoryview(b).cast("B")
    cdef int r
    if x.shape[0] != y.shape[0]:
        return False
    if x.shape[0] == 0:
        return True
    with nogil:
        r = memcmp(&x[0], &y[0], x.shape[0])
    return r == 0


# --------------------------------------------------------------------------------------------
# GEMM (for tests and benchmarks of the product itself)
# --------------------------------------------------------------------------------------------

def gemm(floating[:, ::1] a, floating[:, ::1] b, floating[:, ::1] c, bint trans_a=False,
         bint trans_b=False, double alpha=1.0, double beta=0.0, str path="packed",
         int threads=0):
    """c = alpha op(a) op(b) + beta c on the packed product of the ISA path in use
    (path="packed") or the plain C loops (path="naive")."""
    cdef int m = a.shape[1] if trans_a else a.shape[0]
    cdef int k = a.shape[0] if trans_a else a.shape[1]
    cdef int kb = b.shape[1] if trans_b else b.shape[0]
    cdef int n = b.shape[0] if trans_b else b.shape[1]
    if k != kb or c.shape[0] != m or c.shape[1] != n:
        raise ValueError(f"gemm: shapes do not fit: op(a) ({m}, {k}), op(b) ({kb}, {n}), "
                         f"c ({c.shape[0]}, {c.shape[1]})")
    if path not in ("packed", "naive"):
        raise ValueError(f"path: expected 'packed' or 'naive', got {path!r}")
    if m == 0 or n == 0:
        return
    import numpy as np
    cdef int lda = a.shape[1], ldb = b.shape[1], ldc = c.shape[1]
    cdef fl_exec ex = _exec(_isa, threads, FL_SPLIT_AUTO)
    cdef fl_status st = FL_OK
    cdef float[::1] s32
    cdef double[::1] s64
    cdef const floating *pa = &a[0, 0] if a.shape[0] * a.shape[1] else NULL
    cdef const floating *pb = &b[0, 0] if b.shape[0] * b.shape[1] else NULL
    if floating is float:
        s32 = np.empty(max(1, fl_gemm_scratch_size_f32(_isa, k, n)), np.float32)
        with nogil:
            if path == "naive":
                fl_gemm_naive_f32(trans_a, trans_b, m, n, k, <float>alpha, pa, lda, pb, ldb,
                                  <float>beta, &c[0, 0], ldc)
            else:
                st = fl_gemm_f32(&ex, trans_a, trans_b, m, n, k, <float>alpha, pa, lda, pb, ldb,
                                 <float>beta, &c[0, 0], ldc, &s32[0])
    else:
        s64 = np.empty(max(1, fl_gemm_scratch_size_f64(_isa, k, n)), np.float64)
        with nogil:
            if path == "naive":
                fl_gemm_naive_f64(trans_a, trans_b, m, n, k, alpha, pa, lda, pb, ldb, beta,
                                  &c[0, 0], ldc)
            else:
                st = fl_gemm_f64(&ex, trans_a, trans_b, m, n, k, alpha, pa, lda, pb, ldb, beta,
                                 &c[0, 0], ldc, &s64[0])
    _check(st, "gemm")


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
    cdef int isa_code = _isa
    if floating is float:
        with nogil:
            st = fl_cell_step_f32(isa_code, &h_out[0], &c_out[0], &gates_out[0], &scratch[0],
                                  &x[0], &h_prev[0], &c_prev[0], &w_ih[0], I, &w_hh[0], H,
                                  &bias[0], B, I, H)
    else:
        with nogil:
            st = fl_cell_step_f64(isa_code, &h_out[0], &c_out[0], &gates_out[0], &scratch[0],
                                  &x[0], &h_prev[0], &c_prev[0], &w_ih[0], I, &w_hh[0], H,
                                  &bias[0], B, I, H)
    _check(st, "lstm_step")


# --------------------------------------------------------------------------------------------
# The seed model (fastlstm.LSTM)
# --------------------------------------------------------------------------------------------

def packed_size(dtype, int I, int H, isa_code=None):
    """Values of the packed weights of one layer and direction for an ISA path (default: the
    one in use) in float32 (dtype 'float32') or float64."""
    cdef int k = _isa if isa_code is None else isa_code
    cdef long long n = fl_packed_size_f32(k, I, H) if str(dtype) == "float32" else \
        fl_packed_size_f64(k, I, H)
    if n < 0:
        raise ValueError(f"internal: no packed size for I={I}, H={H} on ISA {k}")
    return n


def seed_workspace_size(dtype, int T, int I, int H, int O):
    cdef long long n = fl_seed_workspace_size_f32(_isa, T, I, H, O) if str(dtype) == "float32" \
        else fl_seed_workspace_size_f64(_isa, T, I, H, O)
    if n < 0:
        raise ValueError("internal: no seed workspace size")
    return n


def seed_forward(floating[::1] hidden, floating[::1] cell, floating[::1] gates,
                 floating[::1] outputs, floating[::1] packed, const floating[::1] x,
                 const floating[::1] w,
                 const floating[::1] b, const floating[::1] wy, const floating[::1] by,
                 int T, int I, int H, int O, int threads=1):
    """Seed forward of one sequence: hidden, cell (T, H), gates (T, 4H), outputs (T, O) out;
    packed receives the weights packed for this call (packed_size values). Returns the
    sequence call's (team, wall seconds)."""
    cdef int64_t G = 4 * <int64_t>H, K = <int64_t>H + I
    cdef int isa_code = _isa
    _need(hidden.shape[0], T * <int64_t>H, "hidden")
    _need(cell.shape[0], T * <int64_t>H, "cell")
    _need(gates.shape[0], T * G, "gates")
    _need(outputs.shape[0], T * <int64_t>O, "outputs")
    _need(packed.shape[0], packed_size("float32" if floating is float else "float64", I, H),
          "packed")
    _need(x.shape[0], T * <int64_t>I, "x")
    _need(w.shape[0], G * K, "w")
    _need(b.shape[0], G, "b")
    _need(wy.shape[0], O * <int64_t>H, "wy")
    _need(by.shape[0], O, "by")
    if T == 0:
        return 1, 0.0
    cdef fl_exec ex = _exec(isa_code, threads, FL_SPLIT_AUTO)
    cdef fl_stats stats
    stats.team = 1
    stats.wall_seconds = 0
    ex.stats = &stats
    cdef fl_status st
    if floating is float:
        with nogil:
            st = fl_seed_forward_f32(&ex, &hidden[0], &cell[0], &gates[0], &outputs[0],
                                     &packed[0], &x[0], &w[0], &b[0], &wy[0], &by[0], T, I, H, O)
    else:
        with nogil:
            st = fl_seed_forward_f64(&ex, &hidden[0], &cell[0], &gates[0], &outputs[0],
                                     &packed[0], &x[0], &w[0], &b[0], &wy[0], &by[0], T, I, H, O)
    _check(st, "LSTM.forward")
    return stats.team, stats.wall_seconds


def seed_backward(floating[::1] w, floating[::1] b, floating[::1] wy, floating[::1] by,
                  floating[::1] workspace, floating[::1] packed, const floating[::1] targets,
                  const floating[::1] x, const floating[::1] hidden, const floating[::1] cell,
                  const floating[::1] gates, int T, int I, int H, int O, double lr,
                  double clip, int threads=1):
    """Seed BPTT + clipped SGD update of w, b, wy, by in place; returns (the loss / T, the
    sequence call's team, its wall seconds). The C call packs the part of the weights it reads
    into `packed` itself (they may have changed since the forward)."""
    cdef int64_t G = 4 * <int64_t>H, K = <int64_t>H + I
    cdef int isa_code = _isa
    dt = "float32" if floating is float else "float64"
    _need(w.shape[0], G * K, "w")
    _need(b.shape[0], G, "b")
    _need(wy.shape[0], O * <int64_t>H, "wy")
    _need(by.shape[0], O, "by")
    _need(workspace.shape[0], seed_workspace_size(dt, T, I, H, O), "workspace")
    _need(packed.shape[0], packed_size(dt, I, H), "packed")
    _need(targets.shape[0], T * <int64_t>O, "targets")
    _need(x.shape[0], T * <int64_t>I, "x")
    _need(hidden.shape[0], T * <int64_t>H, "hidden")
    _need(cell.shape[0], T * <int64_t>H, "cell")
    _need(gates.shape[0], T * G, "gates")
    if T < 1:
        raise ValueError("internal: seed_backward needs at least one step")
    cdef double loss = 0
    cdef fl_exec ex = _exec(isa_code, threads, FL_SPLIT_AUTO)
    cdef fl_stats stats
    stats.team = 1
    stats.wall_seconds = 0
    ex.stats = &stats
    cdef fl_status st
    if floating is float:
        with nogil:
            st = fl_seed_backward_f32(&ex, &w[0], &b[0], &wy[0], &by[0], &loss,
                                      &workspace[0], &packed[0], &targets[0], &x[0],
                                      &hidden[0], &cell[0], &gates[0], T, I, H, O,
                                      <float>lr, <float>clip)
    else:
        with nogil:
            st = fl_seed_backward_f64(&ex, &w[0], &b[0], &wy[0], &by[0], &loss,
                                      &workspace[0], &packed[0], &targets[0], &x[0],
                                      &hidden[0], &cell[0], &gates[0], T, I, H, O, lr, clip)
    _check(st, "LSTM.backward")
    return loss, stats.team, stats.wall_seconds


def seed_train(floating[::1] w, floating[::1] b, floating[::1] wy, floating[::1] by,
               double[::1] epoch_loss, floating[::1] hidden, floating[::1] cell,
               floating[::1] gates, floating[::1] packed, floating[::1] workspace,
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
    cdef int isa_code = _isa
    dt = "float32" if floating is float else "float64"
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
    _need(packed.shape[0], packed_size(dt, I, H), "packed")
    _need(workspace.shape[0], seed_workspace_size(dt, <int>t_max, I, H, O), "workspace")
    _need(x_all.shape[0], rows * I, "x_all")
    _need(y_all.shape[0], rows * O, "y_all")
    cdef int done_epochs = 0, done_seqs = 0
    cdef fl_status st
    if epochs == 0:
        return 0
    if floating is float:
        with nogil:
            st = fl_seed_train_f32(isa_code, &w[0], &b[0], &wy[0], &by[0], &epoch_loss[0],
                                   &done_epochs, &done_seqs, &hidden[0], &cell[0], &gates[0],
                                   &packed[0], &workspace[0], &x_all[0], &y_all[0], &offsets[0],
                                   n_seq, epochs, I, H, O, <float>lr, <float>clip)
    else:
        with nogil:
            st = fl_seed_train_f64(isa_code, &w[0], &b[0], &wy[0], &by[0], &epoch_loss[0],
                                   &done_epochs, &done_seqs, &hidden[0], &cell[0], &gates[0],
                                   &packed[0], &workspace[0], &x_all[0], &y_all[0], &offsets[0],
                                   n_seq, epochs, I, H, O, lr, clip)
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


# Codes of enum fl_activation (csrc/fastlstm.h), by Keras's names for them.
ACTIVATIONS = {"tanh": 0, "relu": 1, "linear": 2}


cdef fl_cell _cell(bint reverse, int sigmoid, int activation, double clip,
                   bint input_forget) except *:
    if activation not in (0, 1, 2):
        raise ValueError(f"internal: activation code {activation}")
    if not clip >= 0:  # also refuses NaN
        raise ValueError(f"internal: clip must be >= 0, got {clip}")
    cdef fl_cell c
    c.reverse = reverse
    c.sigmoid = sigmoid
    c.activation = activation
    c.input_forget = input_forget
    c.clip = clip
    return c


cdef int _check_isa(int isa_code) except -1:
    if isa_code < 0 or isa_code >= FL_NUM_ISAS or not fl_isa_supported(isa_code):
        raise ValueError(f"internal: ISA code {isa_code} is not available")
    return 0


# The parts of packed weights (enum fl_pack_part): forward's W_ih^T, W_hh^T in the unit-block
# and in the panel layout, backward's W_hh and W_ih.
PACK_PARTS = {"wx": 1, "uf": 2, "up": 4, "ub": 8, "wd": 16}
PACK_ALL = 31


def pack_weights(floating[::1] packed, const floating[::1] w_ih, const floating[::1] w_hh,
                 int I, int H, int isa_code, int parts=PACK_ALL):
    """w_ih (G, I) and w_hh (G, H) packed for an ISA path into packed (packed_size values):
    every part, or the parts named (a sum of PACK_PARTS values; the rest is left as it was)."""
    cdef int64_t G = 4 * <int64_t>H
    _check_isa(isa_code)
    dt = "float32" if floating is float else "float64"
    _need(packed.shape[0], packed_size(dt, I, H, isa_code), "packed")
    _need(w_ih.shape[0], G * I, "w_ih")
    _need(w_hh.shape[0], G * H, "w_hh")
    cdef fl_weights_f32 w32
    cdef fl_weights_f64 w64
    cdef fl_status st
    if floating is float:
        w32.w_ih = &w_ih[0]; w32.ld_ih = I; w32.w_hh = &w_hh[0]; w32.ld_hh = H
        w32.bias = NULL; w32.peephole = NULL; w32.packed = NULL
        with nogil:
            st = fl_pack_weights_parts_f32(isa_code, &packed[0], &w32, I, H, parts)
    else:
        w64.w_ih = &w_ih[0]; w64.ld_ih = I; w64.w_hh = &w_hh[0]; w64.ld_hh = H
        w64.bias = NULL; w64.peephole = NULL; w64.packed = NULL
        with nogil:
            st = fl_pack_weights_parts_f64(isa_code, &packed[0], &w64, I, H, parts)
    _check(st, "LSTMLayer (packing weights)")


def bwd_scratch_size(dtype, int T, int B, int I, int H, isa_code=None, long long rows=-1):
    """Values of seq_backward's scratch for a call over `rows` rows of steps (-1: T * B, the
    padded call; with lengths, the sum of the lengths)."""
    cdef fl_dims d
    d.T = T; d.B = B; d.I = I; d.H = H
    cdef int k = _isa if isa_code is None else isa_code
    if rows < 0:
        rows = <long long>T * B
    cdef long long n = fl_bwd_scratch_size_rows_f32(k, &d, rows) if str(dtype) == "float32" \
        else fl_bwd_scratch_size_rows_f64(k, &d, rows)
    if n < 0:
        raise ValueError("internal: no backward scratch size")
    return n


cdef int64_t _steps_rows(const int[::1] batch_sizes, const unsigned char[::1] reset, int T,
                        int B, int carried) except -1:
    """The rows of a call's steps (fl_steps), every rule of the C side checked here first."""
    cdef int64_t rows = <int64_t>T * B
    cdef int t, prev = B
    if carried < 0 or carried > B:
        raise ValueError(f"internal: carried {carried} outside [0, {B}]")
    if batch_sizes is not None:
        if batch_sizes.shape[0] != T:
            raise ValueError(f"internal: {batch_sizes.shape[0]} batch sizes for {T} steps")
        rows = 0
        for t in range(T):
            if batch_sizes[t] < 0 or batch_sizes[t] > prev:
                raise ValueError("internal: batch sizes must be non-increasing in [0, B]")
            prev = batch_sizes[t]
            rows += prev
    if reset is not None and reset.shape[0] != rows:
        raise ValueError(f"internal: reset holds {reset.shape[0]} rows, the steps {rows}")
    return rows


def seq_forward(floating[::1] hidden, int ld_hidden, floating[::1] cell, floating[::1] gates,
                floating[::1] c_last, const floating[::1] packed, const floating[::1] x,
                const floating[::1] h0, const floating[::1] c0, const floating[::1] bias,
                int T, int B, int I, int H, bint reverse, int activation=0,
                const floating[::1] peephole=None, double clip=0.0, bint input_forget=False,
                int isa_code=-1, int threads=0, int split=0,
                const int[::1] batch_sizes=None, const unsigned char[::1] reset=None,
                int carried=-1, const floating[::1] h_init=None,
                const floating[::1] c_init=None, int step=0):
    """fl_seq_forward on flat buffers (returns the call's team size and wall seconds): cell
    None = inference (then c_last is required); h0, c0, peephole (3H, ONNX order i, o, f) may be
    None; packed from pack_weights for isa_code; activation as ACTIVATIONS; clip > 0 and
    input_forget select the ONNX cell's extras. batch_sizes (T), reset (rows), carried (-1: B),
    h_init, c_init: fl_steps (the rows of the steps one after another); without batch_sizes and
    reset, the padded layout."""
    cdef int64_t G = 4 * <int64_t>H, rows
    cdef bint ragged = batch_sizes is not None or reset is not None
    if carried < 0:
        carried = B
    rows = _steps_rows(batch_sizes, reset, T, B, carried)
    if isa_code < 0:
        isa_code = _isa
    _check_isa(isa_code)
    if hidden is None or gates is None or x is None or packed is None or bias is None:
        raise ValueError("internal: seq_forward needs hidden, gates, x, packed and bias")
    if cell is None and c_last is None:
        raise ValueError("internal: inference needs c_last")
    if I < 1 or H < 1:
        raise ValueError("internal: seq_forward needs I >= 1 and H >= 1")
    if split not in (FL_SPLIT_AUTO, FL_SPLIT_BATCH, FL_SPLIT_UNITS, FL_SPLIT_SERIAL):
        raise ValueError(f"internal: split {split}")
    if step not in (FL_STEP_AUTO, FL_STEP_TILE, FL_STEP_PANELS):
        raise ValueError(f"internal: step {step}")
    dt = "float32" if floating is float else "float64"
    _need_rows(hidden.shape[0], rows, ld_hidden, H, "hidden")
    _need(gates.shape[0], rows * G, "gates")
    _need(x.shape[0], rows * I, "x")
    _need(packed.shape[0], packed_size(dt, I, H, isa_code), "packed")
    _need(bias.shape[0], G, "bias")
    if cell is not None:
        _need(cell.shape[0], rows * H, "cell")
    for buf, name in ((c_last, "c_last"), (h0, "h0"), (c0, "c0"), (h_init, "h_init"),
                      (c_init, "c_init")):
        if buf is not None:
            _need(buf.shape[0], B * <int64_t>H, name)
    if peephole is not None:
        _need(peephole.shape[0], 3 * <int64_t>H, "peephole")
    if T == 0 or B == 0:
        return 1, 0.0
    cdef fl_steps steps
    steps.batch_sizes = &batch_sizes[0] if batch_sizes is not None else NULL
    steps.reset = &reset[0] if reset is not None else NULL
    steps.carried = carried
    cdef fl_exec ex = _exec(isa_code, threads, split, step)
    cdef fl_stats stats
    ex.stats = &stats
    cdef fl_dims d
    d.T = T; d.B = B; d.I = I; d.H = H
    cdef fl_cell c = _cell(reverse, FL_SIGMOID_EXACT, activation, clip, input_forget)
    cdef fl_weights_f32 w32
    cdef fl_weights_f64 w64
    cdef fl_fwd_bufs_f32 f32
    cdef fl_fwd_bufs_f64 f64
    cdef fl_status st
    if floating is float:
        w32.w_ih = NULL; w32.ld_ih = I; w32.w_hh = NULL; w32.ld_hh = H
        w32.bias = &bias[0]; w32.peephole = _cptr(peephole); w32.packed = &packed[0]
        f32.hidden = &hidden[0]; f32.ld_hidden = ld_hidden; f32.cell = _ptr(cell)
        f32.gates = &gates[0]; f32.c_last = _ptr(c_last); f32.x = &x[0]; f32.ld_x = I
        f32.h0 = _cptr(h0); f32.c0 = _cptr(c0)
        f32.steps = &steps if ragged else NULL
        f32.h_init = _cptr(h_init); f32.c_init = _cptr(c_init)
        with nogil:
            st = fl_seq_forward_f32(&ex, &d, &c, &w32, &f32)
    else:
        w64.w_ih = NULL; w64.ld_ih = I; w64.w_hh = NULL; w64.ld_hh = H
        w64.bias = &bias[0]; w64.peephole = _cptr(peephole); w64.packed = &packed[0]
        f64.hidden = &hidden[0]; f64.ld_hidden = ld_hidden; f64.cell = _ptr(cell)
        f64.gates = &gates[0]; f64.c_last = _ptr(c_last); f64.x = &x[0]; f64.ld_x = I
        f64.h0 = _cptr(h0); f64.c0 = _cptr(c0)
        f64.steps = &steps if ragged else NULL
        f64.h_init = _cptr(h_init); f64.c_init = _cptr(c_init)
        with nogil:
            st = fl_seq_forward_f64(&ex, &d, &c, &w64, &f64)
    _check(st, "LSTMLayer.forward")
    return stats.team, stats.wall_seconds


def seq_backward(floating[::1] dw_ih, floating[::1] dw_hh, floating[::1] dbias,
                 floating[::1] dx, bint dx_accumulate, floating[::1] dh0, floating[::1] dc0,
                 floating[::1] d_peephole, floating[::1] d_gates, floating[::1] scratch,
                 const floating[::1] dy, int ld_dy, const floating[::1] dh_last,
                 const floating[::1] dc_last, const floating[::1] x, const floating[::1] h0,
                 const floating[::1] c0, const floating[::1] hidden, int ld_hidden,
                 const floating[::1] cell, const floating[::1] gates,
                 const floating[::1] packed, int T, int B, int I, int H, bint reverse,
                 int activation=0, const floating[::1] peephole=None, double clip=0.0,
                 bint input_forget=False, int isa_code=-1, int threads=0, int split=0,
                 const int[::1] batch_sizes=None, const unsigned char[::1] reset=None,
                 floating[::1] h_prev_rows=None):
    """fl_seq_backward on flat buffers (dx, dh0, dc0, dy, dh_last, dc_last, h0, c0 may be
    None; the first argument, which picks the dtype, may not); the extras as in seq_forward,
    d_peephole (3H) required with peephole; packed as the forward had it; batch_sizes, reset
    as the forward had them, with h_prev_rows (rows * H) scratch."""
    cdef int64_t G = 4 * <int64_t>H, rows, BH = <int64_t>B * H
    cdef bint ragged = batch_sizes is not None or reset is not None
    rows = _steps_rows(batch_sizes, reset, T, B, B)
    if ragged:
        if h_prev_rows is None:
            raise ValueError("internal: seq_backward with steps needs h_prev_rows")
        _need(h_prev_rows.shape[0], rows * H, "h_prev_rows")
    if isa_code < 0:
        isa_code = _isa
    _check_isa(isa_code)
    if T < 1 or B < 1 or I < 1 or H < 1:
        raise ValueError("internal: seq_backward needs T, B, I, H >= 1")
    for buf, name in ((dw_ih, "dw_ih"), (dw_hh, "dw_hh"), (dbias, "dbias"), (d_gates, "d_gates"),
                      (scratch, "scratch"), (x, "x"), (hidden, "hidden"), (cell, "cell"),
                      (gates, "gates"), (packed, "packed")):
        if buf is None:
            raise ValueError(f"internal: seq_backward needs {name}")
    if split not in (FL_SPLIT_AUTO, FL_SPLIT_BATCH, FL_SPLIT_UNITS, FL_SPLIT_SERIAL):
        raise ValueError(f"internal: split {split}")
    dt = "float32" if floating is float else "float64"
    if dx is not None:
        _need(dx.shape[0], rows * I, "dx")
    for buf, name in ((dh0, "dh0"), (dc0, "dc0"), (dh_last, "dh_last"), (dc_last, "dc_last"),
                      (h0, "h0"), (c0, "c0")):
        if buf is not None:
            _need(buf.shape[0], BH, name)
    _need(dw_ih.shape[0], G * I, "dw_ih")
    _need(dw_hh.shape[0], G * H, "dw_hh")
    _need(dbias.shape[0], G, "dbias")
    _need(d_gates.shape[0], rows * G, "d_gates")
    _need(scratch.shape[0], bwd_scratch_size(dt, T, B, I, H, isa_code, rows), "scratch")
    _need(x.shape[0], rows * I, "x")
    _need_rows(hidden.shape[0], rows, ld_hidden, H, "hidden")
    _need(cell.shape[0], rows * H, "cell")
    _need(gates.shape[0], rows * G, "gates")
    _need(packed.shape[0], packed_size(dt, I, H, isa_code), "packed")
    if dy is not None:
        _need_rows(dy.shape[0], rows, ld_dy, H, "dy")
    if peephole is not None:
        _need(peephole.shape[0], 3 * <int64_t>H, "peephole")
        if d_peephole is None:
            raise ValueError("internal: seq_backward with peephole needs d_peephole")
        _need(d_peephole.shape[0], 3 * <int64_t>H, "d_peephole")
    cdef fl_exec ex = _exec(isa_code, threads, split)
    cdef fl_stats stats
    ex.stats = &stats
    cdef fl_dims d
    d.T = T; d.B = B; d.I = I; d.H = H
    cdef fl_steps steps
    steps.batch_sizes = &batch_sizes[0] if batch_sizes is not None else NULL
    steps.reset = &reset[0] if reset is not None and rows > 0 else NULL
    steps.carried = B
    cdef fl_cell c = _cell(reverse, FL_SIGMOID_EXACT, activation, clip, input_forget)
    cdef fl_weights_f32 w32
    cdef fl_weights_f64 w64
    cdef fl_fwd_bufs_f32 f32
    cdef fl_fwd_bufs_f64 f64
    cdef fl_bwd_bufs_f32 b32
    cdef fl_bwd_bufs_f64 b64
    cdef fl_status st
    if floating is float:
        w32.w_ih = NULL; w32.ld_ih = I; w32.w_hh = NULL; w32.ld_hh = H; w32.bias = NULL
        w32.peephole = _cptr(peephole); w32.packed = &packed[0]
        f32.hidden = <float *>&hidden[0]; f32.ld_hidden = ld_hidden; f32.cell = <float *>&cell[0]
        f32.gates = <float *>&gates[0]; f32.c_last = NULL; f32.x = &x[0]; f32.ld_x = I
        f32.h0 = _cptr(h0); f32.c0 = _cptr(c0)
        b32.dx = _ptr(dx); b32.ld_dx = I; b32.dx_accumulate = dx_accumulate
        b32.dh0 = _ptr(dh0); b32.dc0 = _ptr(dc0)
        b32.dw_ih = &dw_ih[0]; b32.ld_dw_ih = I; b32.dw_hh = &dw_hh[0]; b32.ld_dw_hh = H
        b32.dbias = &dbias[0]; b32.d_peephole = _ptr(d_peephole); b32.d_gates = &d_gates[0]
        b32.scratch = &scratch[0]; b32.dy = _cptr(dy); b32.ld_dy = ld_dy
        b32.dh_last = _cptr(dh_last); b32.dc_last = _cptr(dc_last)
        f32.steps = &steps if ragged else NULL
        f32.h_init = f32.h0; f32.c_init = f32.c0
        b32.h_prev_rows = _ptr(h_prev_rows)
        with nogil:
            st = fl_seq_backward_f32(&ex, &d, &c, &w32, &f32, &b32)
    else:
        w64.w_ih = NULL; w64.ld_ih = I; w64.w_hh = NULL; w64.ld_hh = H; w64.bias = NULL
        w64.peephole = _cptr(peephole); w64.packed = &packed[0]
        f64.hidden = <double *>&hidden[0]; f64.ld_hidden = ld_hidden
        f64.cell = <double *>&cell[0]
        f64.gates = <double *>&gates[0]; f64.c_last = NULL; f64.x = &x[0]; f64.ld_x = I
        f64.h0 = _cptr(h0); f64.c0 = _cptr(c0)
        b64.dx = _ptr(dx); b64.ld_dx = I; b64.dx_accumulate = dx_accumulate
        b64.dh0 = _ptr(dh0); b64.dc0 = _ptr(dc0)
        b64.dw_ih = &dw_ih[0]; b64.ld_dw_ih = I; b64.dw_hh = &dw_hh[0]; b64.ld_dw_hh = H
        b64.dbias = &dbias[0]; b64.d_peephole = _ptr(d_peephole); b64.d_gates = &d_gates[0]
        b64.scratch = &scratch[0]; b64.dy = _cptr(dy); b64.ld_dy = ld_dy
        b64.dh_last = _cptr(dh_last); b64.dc_last = _cptr(dc_last)
        f64.steps = &steps if ragged else NULL
        f64.h_init = f64.h0; f64.c_init = f64.c0
        b64.h_prev_rows = _ptr(h_prev_rows)
        with nogil:
            st = fl_seq_backward_f64(&ex, &d, &c, &w64, &f64, &b64)
    _check(st, "LSTMLayer.backward")
    return stats.team, stats.wall_seconds


# --------------------------------------------------------------------------------------------
# The rows of the steps of a call with lengths (fastlstm.layer._StepPlan): small loops that cost
# a dozen NumPy calls each there (about 50 us of a 0.3 ms call at T=50, B=32, H=64)
# --------------------------------------------------------------------------------------------

def steps_of_lengths(const int64_t[::1] lengths, int T):
    """The steps of sequences of the given lengths (each in [0, T]) sorted longest first,
    stably: (order or None when already sorted, the sorted lengths, batch_sizes (T,) int32,
    offsets (T + 1,) int64 where each step's rows start, index (rows,) int64: the caller's
    row t B + order[r] of each row r of step t)."""
    import numpy as np
    cdef Py_ssize_t B = lengths.shape[0], b, r
    cdef int t
    cdef int64_t v
    for b in range(B):
        if lengths[b] < 0 or lengths[b] > T:
            raise ValueError(f"internal: a length outside [0, {T}]")
    above = np.zeros(T + 2, np.int64)  # above[v]: sequences longer than v
    cdef int64_t[::1] ab = above
    for b in range(B):
        ab[lengths[b]] += 1
    for v in range(T - 1, -1, -1):
        ab[v] += ab[v + 1]
    # counts[t] = sequences running at step t = lengths > t = ab[t + 1]; a stable descending
    # counting sort places length v from position ab[v + 1]
    order_a = np.empty(B, np.int64)
    sorted_a = np.empty(B, np.int64)
    cdef int64_t[::1] order = order_a, srt = sorted_a
    start_a = above[1:].copy()
    cdef int64_t[::1] start = start_a
    cdef bint identity = True
    cdef int64_t pos
    for b in range(B):
        pos = start[lengths[b]]
        start[lengths[b]] = pos + 1
        order[pos] = b
        srt[pos] = lengths[b]
        identity = identity and pos == b
    bs_a = np.empty(T, np.int32)
    off_a = np.empty(T + 1, np.int64)
    cdef int[::1] bs = bs_a
    cdef int64_t[::1] off = off_a
    off[0] = 0
    for t in range(T):
        bs[t] = <int>ab[t + 1]
        off[t + 1] = off[t] + ab[t + 1]
    index_a = np.empty(off[T], np.int64)
    cdef int64_t[::1] index = index_a
    for t in range(T):
        for r in range(bs[t]):
            index[off[t] + r] = t * <int64_t>B + order[r]
    return None if identity else order_a, sorted_a, bs_a, off_a, index_a


cdef int _check_steps(const int[::1] bs, const int64_t[::1] off, Py_ssize_t B,
                      Py_ssize_t n_rows) except -1:
    cdef Py_ssize_t T = bs.shape[0], t
    if off.shape[0] != T + 1 or off[0] != 0:
        raise ValueError("internal: offsets do not match batch_sizes")
    for t in range(T):
        if bs[t] < 0 or bs[t] > B or off[t + 1] != off[t] + bs[t]:
            raise ValueError("internal: offsets do not match batch_sizes")
    if off[T] > n_rows:
        raise ValueError(f"internal: the steps hold {off[T]} rows, the buffer {n_rows}")
    return 0


def scatter_steps(floating[::1] out, const floating[::1] rows, Py_ssize_t width, Py_ssize_t B,
                  const int[::1] batch_sizes, const int64_t[::1] offsets, order):
    """out (T * B, width) in the caller's order <- rows (rows, width) of the steps, zeros where
    a sequence had ended (order: the plan's sort, None for the identity)."""
    cdef Py_ssize_t T = batch_sizes.shape[0], t, r, b
    if width < 1 or B < 1 or rows.shape[0] % width or out.shape[0] != T * B * width:
        raise ValueError("internal: scatter_steps shapes")
    _check_steps(batch_sizes, offsets, B, rows.shape[0] // width)
    cdef const int64_t[::1] od
    cdef bint sorted_ = order is None
    if not sorted_:
        od = order
        if od.shape[0] != B:
            raise ValueError("internal: scatter_steps order")
        for r in range(B):
            if od[r] < 0 or od[r] >= B:
                raise ValueError("internal: scatter_steps order")
    cdef floating *dst
    with nogil:
        for t in range(T):
            for r in range(B):
                b = r if sorted_ else od[r]
                dst = &out[(t * B + b) * width]
                if r < batch_sizes[t]:
                    memcpy(dst, &rows[(offsets[t] + r) * width], width * sizeof(floating))
                else:  # +0.0 is all zero bits in both widths
                    memset(dst, 0, width * sizeof(floating))
    return 0


def last_rows(floating[::1] out, const floating[::1] hidden, Py_ssize_t ld, Py_ssize_t col,
              Py_ssize_t H, const int64_t[::1] lengths, const int64_t[::1] offsets,
              bint backwards, h0):
    """out (B, H): each sorted row's state at the last step it ran, columns [col, col + H) of
    hidden (rows ld apart): step length - 1 forwards, step 0 for a direction that runs
    backwards; rows that ran no step take h0 (B * H values in the plan's order) or zeros."""
    cdef Py_ssize_t B = lengths.shape[0], T = offsets.shape[0] - 1, r, src
    if out.shape[0] != B * H or col < 0 or col + H > ld or hidden.shape[0] % ld:
        raise ValueError("internal: last_rows shapes")
    cdef Py_ssize_t n_rows = hidden.shape[0] // ld
    cdef const floating[::1] init
    cdef bint has_init = h0 is not None
    if has_init:
        init = h0
        if init.shape[0] != B * H:
            raise ValueError("internal: last_rows h0")
    for r in range(B):
        if lengths[r] < 0 or lengths[r] > T:
            raise ValueError("internal: last_rows lengths")
        if lengths[r] > 0:
            src = r if backwards else offsets[lengths[r] - 1] + r
            if src >= n_rows or (not backwards and src >= offsets[lengths[r]]):
                raise ValueError("internal: last_rows offsets")
    with nogil:
        for r in range(B):
            if lengths[r] > 0:
                src = r if backwards else offsets[lengths[r] - 1] + r
                memcpy(&out[r * H], &hidden[src * ld + col], H * sizeof(floating))
            elif has_init:
                memcpy(&out[r * H], &init[r * H], H * sizeof(floating))
            else:
                memset(&out[r * H], 0, H * sizeof(floating))
    return 0


# --------------------------------------------------------------------------------------------
# A whole model in one call: predict, a training epoch (csrc/model.c; fastlstm.LSTMRegressor)
# --------------------------------------------------------------------------------------------

cdef fl_model_dims _model_dims(tuple dims) except *:
    """(L, D, I, H, O, activation, single_bias) checked and as the C struct."""
    cdef fl_model_dims m
    if len(dims) != 7:
        raise ValueError(f"internal: model dims {dims!r}")
    m.L, m.D, m.I, m.H, m.O, m.activation, m.single_bias = dims
    if not (1 <= m.L <= FL_MODEL_MAX_LAYERS and m.D in (1, 2) and m.I >= 1 and m.H >= 1
            and m.O >= 1 and m.activation in (0, 1, 2)):
        raise ValueError(f"internal: model dims {dims!r}")
    return m


cdef int _check_model(const fl_model_dims *m, Py_ssize_t n_params, const int64_t[::1] offsets,
                      Py_ssize_t n_head) except -1:
    """Every weight the offsets name lies inside params; the head has O * D * H + O values."""
    cdef int64_t G = 4 * <int64_t>m.H, k, width
    cdef int l
    _need(offsets.shape[0], 4 * <int64_t>m.L * m.D, "offsets")
    _need(n_head, <int64_t>m.O * m.D * m.H + m.O, "head")
    for k in range(m.L * m.D):
        l = <int>(k // m.D)
        width = m.I if l == 0 else m.D * m.H
        for j, size in enumerate((G * width, G * m.H, G, G)):
            if offsets[4 * k + j] < 0 or offsets[4 * k + j] + size > n_params:
                raise ValueError(f"internal: model weight {k}/{j} lies outside params")
    return 0


cdef _check_model_lengths(const int[::1] lengths, long long N, int T, str name):
    """Each of the N lengths in [0, T] (None passes), before the nogil call."""
    if lengths is None:
        return
    _need(lengths.shape[0], N, name)
    cdef Py_ssize_t n
    for n in range(N):
        if lengths[n] < 0 or lengths[n] > T:
            raise ValueError(f"internal: {name}[{n}] = {lengths[n]} outside [0, {T}]")


def model_predict_scratch_size(dtype, tuple dims, int T, long long N, isa_code=None):
    cdef fl_model_dims m = _model_dims(dims)
    cdef int k = _isa if isa_code is None else isa_code
    cdef long long n = fl_model_predict_scratch_size_f32(k, &m, T, N) \
        if str(dtype) == "float32" else fl_model_predict_scratch_size_f64(k, &m, T, N)
    if n < 0:
        raise ValueError("internal: no model predict scratch size")
    return n


def model_train_scratch_size(dtype, tuple dims, long long n_params, int T, int batch_size,
                             long long N_val, isa_code=None):
    cdef fl_model_dims m = _model_dims(dims)
    cdef int k = _isa if isa_code is None else isa_code
    cdef long long n = fl_model_train_scratch_size_f32(k, &m, n_params, T, batch_size, N_val) \
        if str(dtype) == "float32" else \
        fl_model_train_scratch_size_f64(k, &m, n_params, T, batch_size, N_val)
    if n < 0:
        raise ValueError("internal: no model training scratch size")
    return n


def model_predict(const floating[::1] params, const int64_t[::1] offsets,
                  const floating[::1] head,
                  list packed, const floating[::1] x, floating[::1] out, floating[::1] scratch,
                  tuple dims, long long N, int T, int isa_code=-1, int threads=0,
                  const int[::1] lengths=None):
    """out (N, O) = the model (dims as _model_dims) on x (N, T, I), on packed[l*D + d] (from
    pack_weights for isa_code); lengths (N) in [0, T] or None. Returns (team, wall
    seconds)."""
    cdef fl_model_dims m = _model_dims(dims)
    if isa_code < 0:
        isa_code = _isa
    _check_isa(isa_code)
    dt = "float32" if floating is float else "float64"
    _check_model(&m, params.shape[0], offsets, head.shape[0])
    if N < 0 or T < 1:
        raise ValueError(f"internal: model_predict N={N}, T={T}")
    _need(x.shape[0], N * T * <int64_t>m.I, "x")
    _need(out.shape[0], N * <int64_t>m.O, "out")
    _check_model_lengths(lengths, N, T, "lengths")
    if N == 0:
        return 1, 0.0
    _need(scratch.shape[0], model_predict_scratch_size(dt, dims, T, N, isa_code), "scratch")
    if len(packed) != m.L * m.D:
        raise ValueError("internal: model_predict needs one packed buffer per layer and direction")
    cdef const float *p32[2 * FL_MODEL_MAX_LAYERS]
    cdef const double *p64[2 * FL_MODEL_MAX_LAYERS]
    cdef floating[::1] pk
    cdef int k
    for k in range(m.L * m.D):
        pk = packed[k]
        _need(pk.shape[0], packed_size(dt, m.I if k < m.D else m.D * m.H, m.H, isa_code),
              "packed")
        if floating is float:
            p32[k] = &pk[0]
        else:
            p64[k] = &pk[0]
    cdef fl_exec ex = _exec(isa_code, threads, FL_SPLIT_AUTO)
    cdef fl_stats stats
    ex.stats = &stats
    cdef fl_model_f32 m32
    cdef fl_model_f64 m64
    cdef fl_status st
    cdef const int *lens = &lengths[0] if lengths is not None else NULL
    if floating is float:
        # the model's buffers are only read here (they may be read-only, as a memmap)
        m32.dims = m; m32.params = <float *>&params[0]; m32.n_params = params.shape[0]
        m32.offsets = <const long long *>&offsets[0]; m32.head = <float *>&head[0]
        with nogil:
            st = fl_model_predict_f32(&ex, &m32, p32, &x[0], lens, N, T, &out[0], &scratch[0])
    else:
        # the model's buffers are only read here (they may be read-only, as a memmap)
        m64.dims = m; m64.params = <double *>&params[0]; m64.n_params = params.shape[0]
        m64.offsets = <const long long *>&offsets[0]; m64.head = <double *>&head[0]
        with nogil:
            st = fl_model_predict_f64(&ex, &m64, p64, &x[0], lens, N, T, &out[0], &scratch[0])
    _check(st, "predict")
    return stats.team, stats.wall_seconds


def model_train_epoch(floating[::1] params, const int64_t[::1] offsets, floating[::1] head,
                      floating[::1] grad_params, floating[::1] grad_head, int kind,
                      double learning_rate, double beta_1, double beta_2, double epsilon,
                      double momentum, bint nesterov, double clip_value, double clip_norm,
                      long long iterations, floating[::1] m_params, floating[::1] v_params,
                      floating[::1] m_head, floating[::1] v_head, const floating[::1] x,
                      const floating[::1] y, const int64_t[::1] order, long long N, int T,
                      int batch_size, const floating[::1] x_val, const floating[::1] y_val,
                      long long N_val, floating[::1] scratch, tuple dims, int isa_code=-1,
                      int threads=0, const int[::1] lengths=None,
                      const int[::1] lengths_val=None):
    """One training epoch of the model (csrc/model.c fl_model_train_epoch). kind: 0 SGD,
    1 Adam; the m_*/v_* slots as fl_optimizer says (None where unused); lengths (N),
    lengths_val (N_val) in [0, T] or None. Returns (loss,
    val_loss, batches, failed, iterations, team, wall seconds); failed as fl_epoch_result
    (the kernel's non-finite stop is reported there, not raised)."""
    cdef fl_model_dims m = _model_dims(dims)
    if isa_code < 0:
        isa_code = _isa
    _check_isa(isa_code)
    dt = "float32" if floating is float else "float64"
    _check_model(&m, params.shape[0], offsets, head.shape[0])
    cdef int64_t n_head = <int64_t>m.O * m.D * m.H + m.O
    if kind not in (FL_OPT_SGD, FL_OPT_ADAM):
        raise ValueError(f"internal: optimizer kind {kind}")
    if N < 1 or T < 1 or batch_size < 1 or N_val < 0:
        raise ValueError(f"internal: model_train_epoch N={N}, T={T}, batch_size={batch_size}")
    _need(grad_params.shape[0], params.shape[0], "grad_params")
    _need(grad_head.shape[0], n_head, "grad_head")
    if kind == FL_OPT_ADAM or momentum != 0:
        for buf, name, n in ((m_params, "m_params", params.shape[0]), (m_head, "m_head", n_head)):
            if buf is None:
                raise ValueError(f"internal: the optimizer needs {name}")
            _need(buf.shape[0], n, name)
    if kind == FL_OPT_ADAM:
        for buf, name, n in ((v_params, "v_params", params.shape[0]), (v_head, "v_head", n_head)):
            if buf is None:
                raise ValueError(f"internal: the optimizer needs {name}")
            _need(buf.shape[0], n, name)
    _need(x.shape[0], N * T * <int64_t>m.I, "x")
    _need(y.shape[0], N * <int64_t>m.O, "y")
    _need(order.shape[0], N, "order")
    cdef Py_ssize_t r
    for r in range(N):
        if order[r] < 0 or order[r] >= N:
            raise ValueError(f"internal: order[{r}] = {order[r]} is not a row of {N}")
    if N_val > 0:
        if x_val is None or y_val is None:
            raise ValueError("internal: validation rows need x_val and y_val")
        _need(x_val.shape[0], N_val * T * <int64_t>m.I, "x_val")
        _need(y_val.shape[0], N_val * <int64_t>m.O, "y_val")
    _need(scratch.shape[0], model_train_scratch_size(dt, dims, params.shape[0], T, batch_size,
                                                     N_val, isa_code), "scratch")
    _check_model_lengths(lengths, N, T, "lengths")
    _check_model_lengths(lengths_val, N_val, T, "lengths_val")
    cdef const int *lens = &lengths[0] if lengths is not None else NULL
    cdef const int *lens_val = &lengths_val[0] if lengths_val is not None and N_val > 0 else NULL
    cdef fl_exec ex = _exec(isa_code, threads, FL_SPLIT_AUTO)
    cdef fl_stats stats
    ex.stats = &stats
    cdef fl_epoch_result res
    cdef fl_model_f32 m32
    cdef fl_model_f64 m64
    cdef fl_optimizer_f32 o32
    cdef fl_optimizer_f64 o64
    cdef fl_status st
    cdef const floating *xv
    cdef const floating *yv
    if floating is float:
        m32.dims = m; m32.params = &params[0]; m32.n_params = params.shape[0]
        m32.offsets = <const long long *>&offsets[0]; m32.head = &head[0]
        o32.kind = kind; o32.learning_rate = learning_rate; o32.beta_1 = beta_1
        o32.beta_2 = beta_2; o32.epsilon = epsilon; o32.momentum = momentum
        o32.nesterov = nesterov; o32.clip_value = clip_value; o32.clip_norm = clip_norm
        o32.iterations = iterations
        o32.m_params = _ptr(m_params); o32.v_params = _ptr(v_params)
        o32.m_head = _ptr(m_head); o32.v_head = _ptr(v_head)
        xv, yv = _cptr(x_val), _cptr(y_val)
        with nogil:
            st = fl_model_train_epoch_f32(&ex, &m32, &grad_params[0], &grad_head[0], &o32,
                                          &x[0], lens, &y[0], <const long long *>&order[0], N,
                                          T, batch_size, xv, lens_val, yv, N_val, &scratch[0],
                                          &res)
        iterations = o32.iterations
    else:
        m64.dims = m; m64.params = &params[0]; m64.n_params = params.shape[0]
        m64.offsets = <const long long *>&offsets[0]; m64.head = &head[0]
        o64.kind = kind; o64.learning_rate = learning_rate; o64.beta_1 = beta_1
        o64.beta_2 = beta_2; o64.epsilon = epsilon; o64.momentum = momentum
        o64.nesterov = nesterov; o64.clip_value = clip_value; o64.clip_norm = clip_norm
        o64.iterations = iterations
        o64.m_params = _ptr(m_params); o64.v_params = _ptr(v_params)
        o64.m_head = _ptr(m_head); o64.v_head = _ptr(v_head)
        xv, yv = _cptr(x_val), _cptr(y_val)
        with nogil:
            st = fl_model_train_epoch_f64(&ex, &m64, &grad_params[0], &grad_head[0], &o64,
                                          &x[0], lens, &y[0], <const long long *>&order[0], N,
                                          T, batch_size, xv, lens_val, yv, N_val, &scratch[0],
                                          &res)
        iterations = o64.iterations
    if st != FL_ERR_NONFINITE:
        _check(st, "LSTMRegressor.fit")
    return (res.loss, res.val_loss, res.batches, res.failed, iterations, stats.team,
            stats.wall_seconds)



# --------------------------------------------------------------------------------------------
# A stream: one step of every layer per call (fastlstm.LSTMStream)
# --------------------------------------------------------------------------------------------

cdef class StreamRunner:
    """The kernels' side of an LSTMStream: every buffer, size and struct checked and built
    once, so a step is one call that runs the layers on one step (fl_seq_forward, T = 1) and
    copies the last layer's output, with nothing allocated and nothing checked but the input's
    size. h is (2, L, B, H) (a step reads one half and writes the other), c (L, B, H) in
    place, out (B, H); the arrays are the caller's, kept alive here."""

    cdef int L, B, H, in0, is_double, cur
    cdef fl_exec ex
    cdef fl_dims *dims
    cdef fl_cell *cells
    cdef fl_weights_f32 *w32
    cdef fl_weights_f64 *w64
    cdef char *h
    cdef char *c
    cdef char *gates
    cdef char *out
    cdef size_t item
    cdef object keep

    def __cinit__(self):
        self.dims = NULL
        self.cells = NULL
        self.w32 = NULL
        self.w64 = NULL

    def __dealloc__(self):
        free(self.dims)
        free(self.cells)
        free(self.w32)
        free(self.w64)

    def __init__(self, str dtype, int isa_code, int threads, int B, int H, list runs,
                 int activation, h, c, gates, out):
        """runs: per layer (packed, bias, peephole or None, clip, input_forget, in_size)."""
        import numpy as np
        _check_isa(isa_code)
        cdef int L = len(runs), k
        if L < 1 or B < 1 or H < 1:
            raise ValueError("internal: StreamRunner sizes")
        dt = np.dtype(dtype)
        if dt not in (np.float32, np.float64):
            raise ValueError(f"internal: StreamRunner dtype {dtype}")
        self.L, self.B, self.H = L, B, H
        self.is_double = dt == np.float64
        self.item = dt.itemsize
        arrays = {"h": (h, 2 * L * B * H), "c": (c, L * B * H), "gates": (gates, 4 * B * H),
                  "out": (out, B * H)}
        for name, (arr, n) in arrays.items():
            if not (isinstance(arr, np.ndarray) and arr.dtype == dt and arr.flags.c_contiguous
                    and arr.flags.writeable):
                raise ValueError(f"internal: StreamRunner {name} must be a writable "
                                 f"C-contiguous {dtype} array")
            _need(arr.size, n, name)
        self.h = <char *><size_t>h.ctypes.data
        self.c = <char *><size_t>c.ctypes.data
        self.gates = <char *><size_t>gates.ctypes.data
        self.out = <char *><size_t>out.ctypes.data
        self.ex = _exec(isa_code, threads, FL_SPLIT_AUTO)
        self.dims = <fl_dims *>calloc(L, sizeof(fl_dims))
        self.cells = <fl_cell *>calloc(L, sizeof(fl_cell))
        if self.is_double:
            self.w64 = <fl_weights_f64 *>calloc(L, sizeof(fl_weights_f64))
        else:
            self.w32 = <fl_weights_f32 *>calloc(L, sizeof(fl_weights_f32))
        if self.dims == NULL or self.cells == NULL or (self.w32 == NULL and self.w64 == NULL):
            raise MemoryError()
        keep = [h, c, gates, out]
        for k in range(L):
            packed, bias, peephole, clip, input_forget, in_size = runs[k]
            if k == 0:
                self.in0 = in_size
            elif in_size != H:
                raise ValueError("internal: StreamRunner layers above the first take H inputs")
            for name, arr, n in (("packed", packed, packed_size(dtype, in_size, H, isa_code)),
                                 ("bias", bias, 4 * H),
                                 ("peephole", peephole, 3 * H)):
                if arr is None and name == "peephole":
                    continue
                if not (isinstance(arr, np.ndarray) and arr.dtype == dt
                        and arr.flags.c_contiguous):
                    raise ValueError(f"internal: StreamRunner {name} of layer {k}")
                _need(arr.size, n, name)
                keep.append(arr)
            self.dims[k].T = 1
            self.dims[k].B = B
            self.dims[k].I = in_size
            self.dims[k].H = H
            self.cells[k] = _cell(False, FL_SIGMOID_EXACT, activation, clip, input_forget)
            if self.is_double:
                self.w64[k].w_ih = NULL; self.w64[k].ld_ih = in_size
                self.w64[k].w_hh = NULL; self.w64[k].ld_hh = H
                self.w64[k].bias = <const double *><size_t>bias.ctypes.data
                self.w64[k].peephole = NULL if peephole is None else \
                    <const double *><size_t>peephole.ctypes.data
                self.w64[k].packed = <const double *><size_t>packed.ctypes.data
            else:
                self.w32[k].w_ih = NULL; self.w32[k].ld_ih = in_size
                self.w32[k].w_hh = NULL; self.w32[k].ld_hh = H
                self.w32[k].bias = <const float *><size_t>bias.ctypes.data
                self.w32[k].peephole = NULL if peephole is None else \
                    <const float *><size_t>peephole.ctypes.data
                self.w32[k].packed = <const float *><size_t>packed.ctypes.data
        self.keep = keep
        self.cur = 0

    @property
    def current(self):
        """Which half of h holds the state after the last step."""
        return self.cur

    def step(self, x):
        """Run one step on x, an object whose C-contiguous buffer holds B * I values of the
        stream's dtype (the caller checked the dtype); the output lands in out."""
        cdef Py_buffer view
        PyObject_GetBuffer(x, &view, PyBUF_C_CONTIGUOUS)
        cdef int k, L = self.L, B = self.B, H = self.H
        cdef int src = self.cur, dst = 1 - self.cur
        cdef size_t lbh = <size_t>B * H * self.item
        cdef fl_status st = FL_OK
        cdef fl_fwd_bufs_f32 f32
        cdef fl_fwd_bufs_f64 f64
        cdef const char *inp
        try:
            if <size_t>view.len != <size_t>B * self.in0 * self.item:
                raise ValueError(f"x_t: expected {B * self.in0} values, got "
                                 f"{view.len // self.item}")
            inp = <const char *>view.buf
            self.ex.fixed_team = 0 if _core_check else 1
            with nogil:
                for k in range(L):
                    if self.is_double:
                        f64.hidden = <double *>(self.h + (<size_t>dst * L + k) * lbh)
                        f64.ld_hidden = H
                        f64.cell = NULL
                        f64.gates = <double *>self.gates
                        f64.c_last = <double *>(self.c + <size_t>k * lbh)
                        f64.x = <const double *>inp
                        f64.ld_x = self.dims[k].I
                        f64.h0 = <const double *>(self.h + (<size_t>src * L + k) * lbh)
                        f64.c0 = <const double *>(self.c + <size_t>k * lbh)
                        f64.steps = NULL
                        f64.h_init = NULL
                        f64.c_init = NULL
                        st = fl_seq_forward_f64(&self.ex, &self.dims[k], &self.cells[k],
                                                &self.w64[k], &f64)
                        inp = <const char *>f64.hidden
                    else:
                        f32.hidden = <float *>(self.h + (<size_t>dst * L + k) * lbh)
                        f32.ld_hidden = H
                        f32.cell = NULL
                        f32.gates = <float *>self.gates
                        f32.c_last = <float *>(self.c + <size_t>k * lbh)
                        f32.x = <const float *>inp
                        f32.ld_x = self.dims[k].I
                        f32.h0 = <const float *>(self.h + (<size_t>src * L + k) * lbh)
                        f32.c0 = <const float *>(self.c + <size_t>k * lbh)
                        f32.steps = NULL
                        f32.h_init = NULL
                        f32.c_init = NULL
                        st = fl_seq_forward_f32(&self.ex, &self.dims[k], &self.cells[k],
                                                &self.w32[k], &f32)
                        inp = <const char *>f32.hidden
                    if st != FL_OK:
                        break
                if st == FL_OK:
                    memcpy(self.out, inp, lbh)
        finally:
            PyBuffer_Release(&view)
        _check(st, "LSTMStream.step")
        self.cur = dst


# ------------------------------------------------------------------------------------------------
# Lists of sequences
# ------------------------------------------------------------------------------------------------

cdef int _plain_array(object a, int type_num, int ndim0, const cnp.npy_intp *shape0) noexcept:
    """1 when a is an exact ndarray of type_num (native byte order), C-contiguous, aligned, of 1
    or 2 dimensions and, when ndim0 > 0, of shape shape0[:ndim0]; -1 when it is an exact
    ndarray that is not; 0 when it is no exact ndarray (ask its buffer)."""
    if not cnp.PyArray_CheckExact(a):
        return 0
    cdef cnp.ndarray arr = <cnp.ndarray>a
    cdef int nd = cnp.PyArray_NDIM(arr), j
    if (cnp.PyArray_TYPE(arr) != type_num or not cnp.PyArray_ISNOTSWAPPED(arr)
            or not cnp.PyArray_IS_C_CONTIGUOUS(arr) or not cnp.PyArray_ISALIGNED(arr)
            or nd < 1 or nd > 2):
        return -1
    if ndim0 > 0:
        if nd != ndim0:
            return -1
        for j in range(nd):
            if cnp.PyArray_DIMS(arr)[j] != shape0[j]:
                return -1
    return 1


def stack_equal(seq, out):
    """Copy the items of the list ``seq`` end to end into ``out`` (a C-contiguous array) when
    each one exposes a C-contiguous, aligned buffer of out's native element type with the
    shape of the first and they fill out exactly: what ``np.asarray(seq)`` would give for
    them, without NumPy's item-by-item conversion of a list. True when done; False (out's
    contents then undefined) for anything else, and the caller converts as before. Exact
    ndarrays are read through NumPy's C API (a few field reads an item; the buffer protocol
    cost about 40 ns an item, 6 us for the seed's 152 windows), other objects through their
    buffers."""
    if type(seq) is not list or len(seq) == 0:
        return False
    cdef Py_ssize_t n = len(seq), k, j, each = 0
    cdef cnp.npy_intp shape0[2]
    cdef int ndim0 = -1, ok = 1, kind, type_num
    cdef Py_buffer dst, src
    cdef char *to
    cdef cnp.ndarray arr
    if cnp.PyArray_CheckExact(out):
        arr = <cnp.ndarray>out
        type_num = cnp.PyArray_TYPE(arr)
        if ((type_num != cnp.NPY_DOUBLE and type_num != cnp.NPY_FLOAT)
                or not cnp.PyArray_ISNOTSWAPPED(arr) or not cnp.PyArray_IS_C_CONTIGUOUS(arr)
                or not cnp.PyArray_ISWRITEABLE(arr)):
            return False
        to = <char *>cnp.PyArray_DATA(arr)
        for k in range(n):
            item = seq[k]
            kind = _plain_array(item, type_num, ndim0, shape0)
            if kind < 0:
                return False
            if kind == 0:
                break  # not an ndarray: this one and the rest through their buffers
            arr = <cnp.ndarray>item
            if k == 0:
                ndim0 = cnp.PyArray_NDIM(arr)
                for j in range(ndim0):
                    shape0[j] = cnp.PyArray_DIMS(arr)[j]
                each = cnp.PyArray_NBYTES(arr)
                if each * n != cnp.PyArray_NBYTES(<cnp.ndarray>out):
                    return False
            memcpy(to + k * each, cnp.PyArray_DATA(arr), <size_t>each)
        else:
            return True
    else:
        k = 0
    # The buffer protocol, from item k on (k = 0 when out is no exact ndarray).
    PyObject_GetBuffer(out, &dst, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT)
    to = <char *>dst.buf
    try:
        if dst.format == NULL or dst.format[1] != 0 or (dst.format[0] != b'd' and
                                                         dst.format[0] != b'f'):
            return False
        while k < n:
            try:
                PyObject_GetBuffer(seq[k], &src, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT)
            except (TypeError, ValueError, BufferError):
                return False
            try:
                if (src.format == NULL or src.format[0] != dst.format[0] or src.format[1] != 0
                        or src.ndim < 1 or src.ndim > 2
                        or (<size_t>src.buf) % <size_t>dst.itemsize != 0):
                    ok = 0
                elif ndim0 < 0:
                    ndim0 = src.ndim
                    for j in range(src.ndim):
                        shape0[j] = src.shape[j]
                    each = src.len
                    if each * n != dst.len:
                        ok = 0
                else:
                    ok = src.ndim == ndim0 and src.len == each
                    for j in range(src.ndim):
                        ok = ok and src.shape[j] == shape0[j]
                if ok:
                    memcpy(to + k * each, src.buf, <size_t>each)
            finally:
                PyBuffer_Release(&src)
            if not ok:
                return False
            k += 1
    finally:
        PyBuffer_Release(&dst)
    return True
