#!/usr/bin/env bash
# scripts/sanitize.sh: run fastlstm's whole test suite against a build of the C kernels and the
# Cython module instrumented with AddressSanitizer and UndefinedBehaviorSanitizer.
#
#   bash scripts/sanitize.sh [WORKDIR]
#
# 1. makes a fresh venv in WORKDIR/venv (WORKDIR defaults to a new temporary directory; the CMake
#    build tree goes to WORKDIR/build, so giving the same WORKDIR again reuses it);
# 2. installs torch==2.13.0 (the CPU wheel on this machine's disk; never plain `torch`, which
#    would be a CUDA build of several GB) and, if they install, keras, onnx and onnxruntime, then
#    the package with `pip install ".[test]" -C cmake.define.FASTLSTM_SANITIZE=ON` (see the
#    FASTLSTM_SANITIZE option in CMakeLists.txt), and checks that the installed _core is
#    instrumented, every ISA path of the kernels included;
# 3. runs `python -m pytest -q -x -p no:cacheprovider --capture=sys` from the repo root with the
#    compiler's libasan and libubsan preloaded (the python executable itself is not
#    instrumented, so the ASan runtime has to be the first library loaded).
#
# Exits non-zero on any test failure and on any sanitizer report, including an ASan report from a
# subprocess that a test starts (ASan reports go to WORKDIR/reports/ and are printed at the end).
# Takes about 3 minutes on the 2-core machine (measured 188 s from scratch: 76 s for the venv and
# the build, 112 s for the tests).
# Extra pytest arguments: PYTEST_ADDOPTS (e.g. PYTEST_ADDOPTS="-k layer").
#
# Environment: PYTHON (default python3, must be 3.11 for the local torch wheel), CC (default gcc,
# the compiler whose sanitizer runtimes are preloaded; it must be the one CMake builds with).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=${1:-$(mktemp -d "${TMPDIR:-/tmp}/fastlstm-sanitize.XXXXXX")}
mkdir -p "$work"
work=$(cd "$work" && pwd)
python=${PYTHON:-python3}
cc=${CC:-gcc}
venv=$work/venv
reports=$work/reports
start=$SECONDS

say() { printf '\n== %s\n' "$*" >&2; }

say "venv in $venv"
"$python" -m venv --clear "$venv"
vpy=$venv/bin/python
# pip install, without the warnings this machine's pip configuration prints for every package.
pip_install() {
    "$vpy" -m pip install -q "$@" 2> >(grep -v 'is ignored: it is neither a file nor' >&2)
}

# Optional peers of the tests (each test file skips what is missing). torch pinned to the wheel on
# local disk. A failed install is reported, not fatal: the tests that need the peer skip.
say "optional test peers: torch==2.13.0, keras, onnx, onnxruntime"
pip_install --only-binary=:all: torch==2.13.0 \
    || echo "WARNING: torch==2.13.0 not installed; the torch tests will skip" >&2
pip_install --only-binary=:all: keras onnx onnxruntime \
    || echo "WARNING: keras/onnx/onnxruntime not installed; their tests will skip" >&2

say "fastlstm with FASTLSTM_SANITIZE=ON (build tree $work/build)"
cd "$repo"
# install.strip=false: keep the -g symbols, so that reports name our functions and lines.
pip_install ".[test]" -C cmake.define.FASTLSTM_SANITIZE=ON -C install.strip=false \
    -C build-dir="$work/build"

# Check that what pytest will import is really the sanitized build, with the kernel tables of
# its ISA paths (each compiled with the sanitizers; the tests run on every path the CPU has).
# (Located without importing fastlstm, which cannot load without the preload below.)
core=$("$vpy" -c "import glob, importlib.util as u, os
print(*glob.glob(os.path.join(os.path.dirname(u.find_spec('fastlstm').origin), '_core*.so')))")
if [[ -z "$core" ]] || ! ldd "$core" | grep -q libasan || ! ldd "$core" | grep -q libubsan; then
    echo "FAIL: $core is not linked with libasan and libubsan" >&2
    exit 1
fi
if ! nm "$core" | grep 'fl_kernels_generic_f64' >/dev/null; then
    echo "FAIL: $core has no kernel tables (nm finds no fl_kernels_generic_f64)" >&2
    exit 1
fi

libasan=$("$cc" -print-file-name=libasan.so)
libubsan=$("$cc" -print-file-name=libubsan.so)
for lib in "$libasan" "$libubsan"; do
    [[ "$lib" == /* && -e "$lib" ]] || { echo "FAIL: $cc has no $lib" >&2; exit 1; }
done

rm -rf "$reports"
mkdir -p "$reports"
# detect_leaks=0: CPython (and numpy, torch...) keep much of what they allocate until exit by
# design, so LeakSanitizer on the interpreter reports thousands of "leaks" that are not ours.
# Leaks per call in fastlstm are what tests/test_memory.py checks instead.
# abort_on_error: a report ends the process with SIGABRT, on which pytest's faulthandler prints
# the Python stack (which test, which call). ASan's log_path: one file per reporting process, so a
# report from a subprocess started by a test (the CLI tests) cannot go unnoticed.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:log_path=$reports/asan"
# UBSan ignores log_path next to ASan (GCC 12) and writes to stderr: hence --capture=sys below, as
# pytest's default capture of file descriptor 2 would swallow the report of the process it kills.
# In a subprocess, a UBSan report shows as that process dying of SIGABRT.
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:abort_on_error=1"
# Test files left out: none so far. (Add `--ignore=tests/FILE` here, with the reason, only for a
# file that cannot run under ASan because of a third-party library, never for fastlstm's own code.)
ignores=()

say "pytest under ASan+UBSan (LD_PRELOAD=$libasan:$libubsan)"
set +e
LD_PRELOAD="$libasan:$libubsan" "$vpy" -m pytest -q -x -p no:cacheprovider --capture=sys \
    "${ignores[@]}"
status=$?
set -e

found=0
for report in "$reports"/*; do
    [[ -e "$report" ]] || continue
    found=1
    printf '\n== sanitizer report %s\n' "$report" >&2
    cat "$report" >&2
done
elapsed=$((SECONDS - start))
if ((status != 0 || found)); then
    echo "FAIL: pytest exit status $status (134: aborted, by the sanitizer report printed" \
        "above if there is one), ASan report files: $found (after ${elapsed}s)" >&2
    exit $((status != 0 ? status : 1))
fi
echo "OK: the test suite passed under ASan+UBSan with no sanitizer report (${elapsed}s)" >&2
