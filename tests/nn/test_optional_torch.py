"""torch stays optional: ``import lmf_omics`` never imports it, ``lmf_omics.nn`` says how to get it."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys
import lmf_omics
assert lmf_omics.__file__.startswith(sys.argv[1]), lmf_omics.__file__
assert "torch" not in sys.modules, "import lmf_omics imported torch"
sys.modules["torch"] = None  # as if torch were not installed
try:
    import lmf_omics.nn
except ImportError as error:
    print(error)
else:
    raise AssertionError("lmf_omics.nn imported without torch")
"""


def test_package_imports_without_torch_and_nn_names_the_install():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(ROOT)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "torch==2.13.0" in done.stdout
