"""Crash-safe writes: a whole file goes through a temporary file and :func:`os.replace`."""
import os


def atomic_write(path, data, *, durable=True):
    """Replace ``path`` with ``data`` so that readers see the old file or the new one, never half.

    Parameters
    ----------
    path : str or path-like
    data : str, bytes, or callable
        Content, or a function that writes it to a binary file handle (``np.savez`` for example).
    durable : bool, default=True
        fsync before the rename, so the new content survives a power cut (costs a few ms).
    """
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as handle:
            if callable(data):
                data(handle)
            else:
                handle.write(data.encode() if isinstance(data, str) else data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
