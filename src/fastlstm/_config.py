"""fastlstm.config() / show_config(): what this process runs on (ISA path, threads, build)."""

from __future__ import annotations

from . import _core

__all__ = ["config", "show_config", "set_core_check"]


def config():
    """The kernels' configuration in this process, as a dict.

    Keys: ``isa`` (the path in use: ``'avx512'``, ``'avx2'``, ``'neon'`` or ``'generic'``),
    ``isa_forced`` (FASTLSTM_ISA, or None), ``isas_supported`` (paths this CPU runs, best
    first), ``isas_compiled`` (paths in this build), ``vector_bytes`` (of the path in use),
    ``threads`` (what each kernel call may use, :func:`fastlstm.get_num_threads`),
    ``core_check`` (``'on'``, ``'off'`` or ``'unavailable'``: whether each call's team is cut to
    the cores other runnable threads leave free, :func:`set_core_check`), ``openmp`` (built
    with OpenMP), ``blas`` (None: every product is fastlstm's own, no BLAS is called),
    ``version``.
    """
    import os

    from ._version import __version__

    return {
        "isa": _core.isa_name(),
        "isa_forced": os.environ.get("FASTLSTM_ISA") or None,
        "isas_supported": _core.supported_isas(),
        "isas_compiled": _core.compiled_isas(),
        "vector_bytes": _core.vector_bytes(_core.isa()),
        "threads": _core.get_num_threads(),
        "core_check": _core.core_check(),
        "openmp": _core.openmp(),
        "blas": None,
        "version": __version__,
    }


def set_core_check(on):
    """Whether each kernel call's team is cut to the cores that other runnable threads leave
    free (``True``, the default) or always runs :func:`fastlstm.get_num_threads` threads.

    A team meets at a barrier every step (or splits a call's rows in fixed shares), so it runs
    at the pace of its slowest thread. When another library's pool keeps spinning after its
    call (numpy's OpenBLAS does for about 0.1 s, onnxruntime's for tens of milliseconds) or
    another process computes, the runnable threads outnumber the cores and the scheduler parks
    one of the team's threads for whole time slices. So before a team opens, the kernels count
    the machine's runnable threads (Linux's ``/proc/loadavg``, about once a millisecond),
    leave out the caller and fastlstm's own workers, and use at most the cores that remain
    (never fewer than one thread; a long call split by batch rows keeps its team when no core
    is free, since its fair share of busy cores beats one thread's). Only the speed changes: the team splits outputs, never
    sums, so every team size gives the same bits.

    The count is available on Linux when the process may run on every online CPU; elsewhere
    (``config()["core_check"] == "unavailable"``), and after ``set_core_check(False)``, the
    layers fall back to timing the full team against one thread (the team governor).
    """
    _core.set_core_check(on)


def show_config():
    """Print :func:`config`, one ``key: value`` line each."""
    for key, value in config().items():
        if isinstance(value, list):
            value = ", ".join(value)
        print(f"{key}: {value}")
