"""README's Python example runs as printed, from a folder laid out like the repository root."""
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme_python_block():
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    section = text[text.index("## Python\n"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.slow
def test_readme_python_example_runs(tmp_path):
    for name in ("calculators", "trajectories"):
        os.symlink(os.path.join(ROOT, name), tmp_path / name)
    script = tmp_path / "example.py"
    script.write_text(readme_python_block() + "\nprint('trained', len(model.coef_))\n")
    env = dict(os.environ, PYTHONPATH=ROOT, MPLBACKEND="Agg")
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "trained 500" in done.stdout
    assert (tmp_path / "my.npz").stat().st_size > 0
