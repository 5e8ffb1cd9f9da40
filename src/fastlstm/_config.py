"""fastlstm.config() / show_config(): what this process runs on (ISA path, threads, build)."""

from __future__ import annotations

from . import _core

__all__ = ["config", "show_config"]


def config():
    """The kernels' configuration in this process, as a dict.

    Keys: ``isa`` (the path in use: ``'avx512'``, ``'avx2'``, ``'neon'`` or ``'generic'``),
    ``isa_forced`` (FASTLSTM_ISA, or None), ``isas_supported`` (paths this CPU runs, best
    first), ``isas_compiled`` (paths in this build), ``vector_bytes`` (of the path in use),
    ``threads`` (what each kernel call may use, :func:`fastlstm.get_num_threads`), ``openmp``
    (built with OpenMP), ``blas`` (None: every product is fastlstm's own, no BLAS is called),
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
        "openmp": _core.openmp(),
        "blas": None,
        "version": __version__,
    }


def show_config():
    """Print :func:`config`, one ``key: value`` line each."""
    for key, value in config().items():
        if isinstance(value, list):
            value = ", ".join(value)
        print(f"{key}: {value}")
