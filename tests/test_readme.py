"""Every Python snippet in the README runs as pasted, in a fresh interpreter (in a temporary
folder, for the files some of them write), with the extras it names installed; a snippet
whose extra is missing here is skipped, naming it. The snippets that start PyTorch, Keras or
ONNX Runtime (5 to 10 s each, mostly their imports) or train for 30 epochs are marked slow:
`.ci/run` runs them after the default suite."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")  # before any import of keras, as the snippets
README = Path(__file__).resolve().parents[1] / "README.md"
SNIPPETS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)

# what a snippet needs beyond fastlstm and numpy, by what it uses
NEEDS = {"torch": "torch", "keras": "keras", "onnxruntime": "onnxruntime", "onnx": "onnx",
         "LSTMRegressor": "sklearn", "verbose=1": "tqdm"}


def test_the_readme_has_snippets():
    assert len(SNIPPETS) >= 5


HEAVY = ("import torch", "import keras", "onnxruntime", "epochs=30")  # imports, or training
CASES = [pytest.param(code, id=f"snippet{k}",
                      marks=[pytest.mark.slow] if any(h in code for h in HEAVY) else [])
         for k, code in enumerate(SNIPPETS)]


@pytest.mark.parametrize("code", CASES)
def test_readme_snippet_runs_as_pasted(code, tmp_path):
    for word, module in NEEDS.items():
        if re.search(rf"\b{re.escape(word)}", code):
            pytest.importorskip(module)
    if "to_onnx" in code:
        pytest.importorskip("onnx")
    env = dict(os.environ, KERAS_BACKEND="torch", MPLBACKEND="Agg")
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"snippet failed:\n{code}\n--- stderr:\n{run.stderr[-3000:]}"
    # the snippets that print a comparison print True
    assert "False" not in run.stdout, run.stdout
