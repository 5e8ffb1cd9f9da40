#!/usr/bin/env bash
# Release check, one command: `bash scripts/release_check.sh [OUTDIR]`.
# Builds the sdist and the wheel with `python -m build`, checks that the sdist holds what a build
# needs and nothing else, builds and installs the wheel *from the sdist* into a fresh virtual
# environment and runs the test suite against that installed wheel (from a copy of tests/ outside
# the source tree, so nothing can be imported from the checkout). About 3 minutes here.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-$(mktemp -d)}"
mkdir -p "$out"
python3 -m venv "$out/build-env"
"$out/build-env/bin/python" -m pip install --quiet --upgrade pip build
"$out/build-env/bin/python" -m build --outdir "$out/dist" .

sdist=$(ls "$out"/dist/fastlstm-*.tar.gz)
listing=$(tar tzf "$sdist" | sed 's|^[^/]*/||')
for need in csrc/fastlstm.h csrc/fastlstm_api.h csrc/lstm_impl.h csrc/kernels_f32.c \
            src/fastlstm/_core.pyx src/fastlstm/_kernels.pxd CMakeLists.txt pyproject.toml \
            README.md LICENSE CHANGELOG.md src/fastlstm/datasets/airline_passengers.csv; do
    grep -qx "$need" <<<"$listing" || { echo "release check: $need missing from the sdist" >&2; exit 1; }
done
if grep -E '^(tests|bench|docs|examples|scripts|\.ci|\.pytest_cache)/|\.so$' <<<"$listing"; then
    echo "release check: the sdist holds files a build does not need (above)" >&2
    exit 1
fi
echo "release check: sdist contents OK ($(wc -l <<<"$listing") files)"

# The wheel that users get, built from the sdist (as pip and cibuildwheel do).
"$out/build-env/bin/python" -m pip wheel --quiet --no-deps --wheel-dir "$out/from-sdist" "$sdist"
wheel=$(ls "$out"/from-sdist/fastlstm-*.whl)
python3 -m venv "$out/test-env"
"$out/test-env/bin/python" -m pip install --quiet --upgrade pip
"$out/test-env/bin/python" -m pip install --quiet "${wheel}[test]"
cp -r tests "$out/tests"
cp -r examples "$out/examples"  # the README example test runs it
cd "$out"
"$out/test-env/bin/python" -c "import fastlstm, sys; assert 'site-packages' in fastlstm.__file__, fastlstm.__file__; print('testing', fastlstm.__file__, fastlstm.__version__)"
"$out/test-env/bin/python" -m pytest -q -x -p no:cacheprovider tests
echo "release check: passed ($wheel)"
