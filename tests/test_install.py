"""README's two kinds of install, regular (``pip install ".[fast]"``) and editable (``pip install -e``), in
either order in one fresh venv, leave ``import nxplugin`` working from outside the checkout (issue 17:
numba's cache in site-packages/nxplugin shadowed the editable install).

The editable install takes the ``fast`` extra, not README's ``test`` one: the extras do not change
where nxplugin or numba's cache goes, and the test extra's packages (PySCF, Dask, i-PI) would double
the time. Slow (three pip installs into a new venv, from the configured registry or pip's cache).
"""
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMPORT = "import nxplugin; from nxplugin import RPRCalculator; print(nxplugin.__file__)"


def _run(cmd, cwd, env):
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, f"{' '.join(map(str, cmd))}\n{done.stdout[-1500:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _jit_files(folder):
    return [os.path.join(d, f) for d, _, files in os.walk(folder) for f in files if f.endswith((".nbi", ".nbc"))]


@pytest.mark.slow
def test_readme_install_commands_in_either_order_keep_nxplugin_importable(tmp_path):
    checkout, venv, elsewhere = tmp_path / "checkout", tmp_path / "venv", tmp_path / "elsewhere"
    shutil.copytree(ROOT, checkout, ignore=shutil.ignore_patterns(
        ".git", "build", "*.egg-info", "__pycache__", "results", ".pytest_cache"))
    elsewhere.mkdir()
    pip_cache = subprocess.run([sys.executable, "-m", "pip", "cache", "dir"], capture_output=True,
                               text=True).stdout.strip()
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "NUMBA_CACHE_DIR", "PYTHONHOME")}
    env.update(XDG_CACHE_HOME=str(tmp_path / "cache"), MPLBACKEND="Agg", PIP_DISABLE_PIP_VERSION_CHECK="1")
    if pip_cache and os.path.isdir(pip_cache):
        env["PIP_CACHE_DIR"] = pip_cache
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], elsewhere, env).strip()
    md = ["nxplugin", "md", "--temperature", "300", "--time", "0.02", "--n-traj", "2", "--equilibration", "0"]

    # README's first command (a short md run: enough to compile and cache the kernel), then the second
    _run([python, "-m", "pip", "install", "-q", ".[fast]"], checkout, env)
    _run(md + ["--out", "results/md1"], checkout, env)
    assert _jit_files(os.path.join(site, "nxplugin")) == []
    assert _jit_files(tmp_path / "cache" / "nxplugin" / "numba")         # the user cache folder
    _run([python, "-m", "pip", "install", "-q", "-e", ".[fast]"], checkout, env)
    assert not os.path.exists(os.path.join(site, "nxplugin"))
    assert _run([python, "-c", IMPORT], elsewhere, env).strip() == str(checkout / "nxplugin" / "__init__.py")

    # the other order: md with the editable install, then a regular install over it
    _run(md + ["--out", "results/md2"], checkout, env)
    _run([python, "-m", "pip", "install", "-q", ".[fast]"], checkout, env)
    _run(md + ["--out", "results/md3"], checkout, env)
    assert _run([python, "-c", IMPORT], elsewhere, env).strip() == os.path.join(site, "nxplugin", "__init__.py")
    assert _jit_files(os.path.join(site, "nxplugin")) == []
    summary = (checkout / "results" / "md3" / "summary.json").read_text()
    assert '"kernel": "compiled"' in summary
