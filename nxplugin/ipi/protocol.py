"""The client side of i-PI's socket protocol (i-PI 2.x and 3.x), on a connected stream socket.

Units are whatever the caller passes: i-PI uses atomic units throughout (bohr, Hartree,
Hartree/bohr). Numbers travel as native-endian float64 and int32, messages as 12-byte upper-case
headers, all as i-PI's own ``Driver`` class sends and reads them.

One exchange, from the client's side:

- ``STATUS`` -> reply ``NEEDINIT`` (before INIT), ``READY``, or ``HAVEDATA`` (after POSDATA).
- ``INIT`` + int32 replica id + int32 length + parameter string. i-PI 3.x announces batching by
  appending the token ``batch_size:N`` (comma-separated from any user parameters); a client that
  reads it must use the batched layout below, one that ignores it stays on the single layout.
- ``POSDATA``, single: cell h (3x3), inverse cell (3x3), int32 n_atoms, positions (n_atoms x 3).
  Batched: int32 n_atoms, then ``batch_size`` pairs (h, h^-1), then ``batch_size`` position blocks.
  i-PI pads a short batch by repeating the last structure.
- ``GETFORCE`` -> reply ``FORCEREADY``, then single: float64 energy, int32 n_atoms, forces, virial
  (3x3), int32 length + extras string. Batched: ``batch_size`` energies, int32 n_atoms,
  ``batch_size`` force blocks, ``batch_size`` virials, then per structure int32 length + extras.
- ``EXIT``: the run is over; the client closes.

With ``consolidate_messages`` (the i-PI 3.x default) i-PI sends POSDATA and GETFORCE back to back
without a STATUS between them; answering each message in order handles both styles.
"""
import socket

import numpy as np

from nxplugin.errors import NxPluginError

HEADER_LENGTH = 12
BATCH_TOKEN = "batch_size"


class IPIProtocolError(NxPluginError, ConnectionError):
    """i-PI sent something the protocol does not allow (unknown header, changed atom count, ...)."""


def header(name):
    """The 12-byte header for a message name (``"status"`` -> ``b"STATUS      "``)."""
    return name.upper().ljust(HEADER_LENGTH).encode()


STATUS, INIT, POSDATA, GETFORCE, EXIT = (header(n) for n in ("status", "init", "posdata", "getforce", "exit"))
READY, NEEDINIT, HAVEDATA, FORCEREADY = (header(n) for n in ("ready", "needinit", "havedata", "forceready"))


class Closed(Exception):
    """The peer closed the connection (raised by :func:`recv_exact` on end of stream)."""


def recv_exact(sock, n_bytes):
    """Read exactly ``n_bytes`` from a blocking socket; :class:`Closed` if the peer hangs up first.

    An empty read at a message boundary is the normal way an i-PI run ends without EXIT.
    """
    buffer = bytearray(n_bytes)
    view = memoryview(buffer)
    received = 0
    while received < n_bytes:
        try:
            count = sock.recv_into(view[received:], n_bytes - received)
        except ConnectionResetError as err:
            raise Closed(f"connection reset after {received} of {n_bytes} bytes") from err
        if count == 0:
            raise Closed(f"connection closed after {received} of {n_bytes} bytes")
        received += count
    return bytes(buffer)


def recv_array(sock, shape, dtype=np.float64):
    """Read a native-endian array of ``shape`` (a copy, writable)."""
    dtype = np.dtype(dtype)
    count = int(np.prod(shape))
    return np.frombuffer(recv_exact(sock, count * dtype.itemsize), dtype=dtype).reshape(shape).copy()


def recv_int(sock):
    return int(recv_array(sock, (1,), np.int32)[0])


def parse_init(text):
    """Split i-PI's INIT string into the user's parameters and the announced batch size.

    Parameters
    ----------
    text : str
        The parameter string, e.g. ``"", "batch_size:8"`` or ``"{...}, batch_size:4"``.

    Returns
    -------
    parameters : str
        Everything but the batch token (what the ``<parameters>`` of the ``<ffsocket>`` held).
    batch_size : int
        1 when not announced.
    """
    head, sep, tail = text.rpartition(",")
    candidate = tail if sep else text
    key, colon, value = candidate.partition(":")
    if colon and key.strip() == BATCH_TOKEN:
        try:
            size = int(value.strip())
        except ValueError:
            raise IPIProtocolError(f"INIT string {text!r}: batch size {value.strip()!r} is not an integer") from None
        if size < 1:
            raise IPIProtocolError(f"INIT string {text!r}: batch size {size} must be at least 1")
        return (head.strip() if sep else ""), size
    return text, 1


def recv_init(sock):
    """Read an INIT body (after the header): ``(replica_id, parameters, batch_size)``."""
    replica = recv_int(sock)
    length = recv_int(sock)
    text = recv_exact(sock, length).decode("utf-8", errors="replace") if length > 0 else ""
    parameters, batch_size = parse_init(text)
    return replica, parameters, batch_size


def recv_posdata(sock, batch_size):
    """Read a POSDATA body (after the header).

    Returns
    -------
    cells : ndarray of shape (batch_size, 3, 3), i-PI's cell matrices h (as sent; unused for molecules)
    positions : ndarray of shape (batch_size, n_atoms, 3), in i-PI's units (bohr)
    """
    if batch_size == 1:
        cell = recv_array(sock, (2, 3, 3))[0]
        n_atoms = recv_int(sock)
        _check_atoms(n_atoms)
        return cell[None], recv_array(sock, (1, n_atoms, 3))
    n_atoms = recv_int(sock)
    _check_atoms(n_atoms)
    cells = recv_array(sock, (batch_size, 2, 3, 3))[:, 0]
    return cells, recv_array(sock, (batch_size, n_atoms, 3))


def _check_atoms(n_atoms):
    if n_atoms <= 0:
        raise IPIProtocolError(f"POSDATA announces {n_atoms} atoms")


def encode_forces(energies, forces, virials, extras, *, batched):
    """The bytes of a FORCEREADY reply (header included).

    Parameters
    ----------
    energies : array-like of shape (n,), Hartree
    forces : array-like of shape (n, n_atoms, 3), Hartree/bohr
    virials : array-like of shape (n, 3, 3), Hartree
    extras : list of n str
        One JSON string per structure.
    batched : bool
        The batched layout (i-PI announced a batch size > 1) or the single one (n must be 1).
    """
    energies = np.ascontiguousarray(energies, dtype=np.float64).reshape(-1)
    forces = np.ascontiguousarray(forces, dtype=np.float64)
    virials = np.ascontiguousarray(virials, dtype=np.float64)
    n_atoms = np.int32(forces.shape[1]).tobytes()
    encoded = [text.encode("utf-8") for text in extras]
    if not batched:
        if len(energies) != 1:
            raise ValueError(f"the single layout carries one structure, got {len(energies)}")
        return b"".join([FORCEREADY, energies.tobytes(), n_atoms, forces.tobytes(), virials.tobytes(),
                         np.int32(len(encoded[0])).tobytes(), encoded[0]])
    parts = [FORCEREADY, energies.tobytes(), n_atoms, forces.tobytes(), virials.tobytes()]
    for text in encoded:
        parts += [np.int32(len(text)).tobytes(), text]
    return b"".join(parts)


def set_low_latency(sock):
    """TCP_NODELAY on internet sockets: i-PI's many small messages must not wait for Nagle's algorithm."""
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
