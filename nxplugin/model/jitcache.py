"""Where numba keeps the compiled kernel: a per-user cache folder, never inside the installed package.

By default numba writes its cache (``*.nbi``, ``*.nbc``) into the ``__pycache__`` folder beside the
source. For a package installed with ``pip install .`` that folder is in ``site-packages/nxplugin``;
``pip uninstall`` does not remove files it did not install, and the left-over ``nxplugin`` folder
(without ``__init__.py``) then shadows a later editable install as an empty namespace package.
:func:`use_user_cache_dir` points numba at ``$XDG_CACHE_HOME/nxplugin/numba`` (default
``~/.cache/nxplugin/numba``) unless the user chose a folder with ``NUMBA_CACHE_DIR``.
"""
import os
import sys

ENV = "NUMBA_CACHE_DIR"


def user_cache_dir():
    """``$XDG_CACHE_HOME/nxplugin/numba``, or ``~/.cache/nxplugin/numba`` without XDG_CACHE_HOME."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "nxplugin", "numba")


def use_user_cache_dir():
    """Send numba's JIT cache to :func:`user_cache_dir` unless ``NUMBA_CACHE_DIR`` is set.

    Call before numba is first imported (numba reads the variable then); if numba is already
    imported and its cache folder was not chosen, its configuration is updated too.

    Returns
    -------
    str
        The cache folder numba uses.
    """
    if os.environ.get(ENV):
        return os.environ[ENV]
    path = user_cache_dir()
    os.environ[ENV] = path
    config = sys.modules.get("numba.core.config")
    if config is not None and not getattr(config, "CACHE_DIR", ""):
        config.CACHE_DIR = path
    return path
