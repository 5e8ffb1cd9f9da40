#!/usr/bin/env bash
# The dedicated fuzz run: the Hypothesis property tests of tests/test_fuzz.py with many examples.
#
#   bash scripts/fuzz.sh          # 2000 examples per test (the default)
#   bash scripts/fuzz.sh 300      # N examples per test
#   bash scripts/fuzz.sh 300 -x -k layer   # further arguments go to pytest
#
# It tests the *installed* fastlstm (pip install ".[test]" first; the tests import fastlstm from
# site-packages, never from src/), with the python on PATH unless PYTHON is set, e.g.
# PYTHON=/tmp/venv/bin/python bash scripts/fuzz.sh. Each run draws fresh random examples
# (FASTLSTM_FUZZ_DERANDOMIZE=1 repeats the normal suite's fixed ones); a failure prints the
# smallest failing example and a @reproduce_failure(...) line that replays it.
set -euo pipefail
cd "$(dirname "$0")/.."

examples="${1:-2000}"
shift $(( $# > 0 ? 1 : 0 ))
case "$examples" in
    ''|*[!0-9]*|0) echo "fuzz.sh: the number of examples must be a positive integer, got '$examples'" >&2
                   exit 2 ;;
esac

python="${PYTHON:-python}"
export FASTLSTM_FUZZ_EXAMPLES="$examples"
export FASTLSTM_FUZZ_DERANDOMIZE="${FASTLSTM_FUZZ_DERANDOMIZE:-0}"
echo "fuzz.sh: $examples examples per test, derandomize=$FASTLSTM_FUZZ_DERANDOMIZE," \
     "fastlstm from $("$python" -c 'import fastlstm; print(fastlstm.__file__)')"
exec "$python" -m pytest tests/test_fuzz.py -q "$@"
