"""An i-PI force client that answers with an nxplugin model: energy, forces, and dipoles in the extras.

Units: i-PI's side is atomic units (positions bohr, energy Hartree, forces Hartree/bohr, virial
Hartree); the model's side is ASE's (Angstrom, eV, eV/Angstrom, e*Angstrom, Angstrom**3). The
conversion happens once, in :meth:`IPIClient.compute`, with ``ase.units.Bohr`` and ``ase.units.Hartree``.

The extras string of every structure is JSON with ``dipole`` (3 numbers, e*bohr: i-PI's
convention is atomic units, and it writes extras as received), ``polarizability`` (3x3, bohr**3,
when the model has it) and ``ood_score`` (dimensionless; above 1 the geometry is beyond the
training data). The virial is zero: the models are for isolated molecules.
"""
import json
import socket
import time
import warnings

import numpy as np
from ase.units import Bohr, Hartree

from nxplugin.ipi import protocol

#: i-PI's default place for unix sockets: ``<sockets_prefix><address>``
DEFAULT_SOCKETS_PREFIX = "/tmp/ipi_"


class IPIClient:
    """Serve an nxplugin model to a running i-PI over its socket.

    Parameters
    ----------
    model_or_path : RPRModel or str or path-like
        A fitted model or a model file (:func:`nxplugin.load_model`).
    unix : str, optional
        The ``<address>`` of i-PI's ``<ffsocket mode="unix">``; the socket file is
        ``sockets_prefix + unix``. Give either this or ``host`` and ``port``.
    host, port : str and int, optional
        i-PI's ``<ffsocket mode="inet">`` address and port.
    sockets_prefix : str, default="/tmp/ipi_"
        As ``<simulation sockets_prefix=...>`` in i-PI's input.
    numbers : array-like of int, optional
        Atomic numbers in i-PI's atom order (i-PI sends positions only). Default: the model's order.
    ood_threshold : float, default=1.0
        Out-of-domain score above which a warning is given (once) and the structure counted.
    blas_threads : int or None, default=1
        BLAS threads while serving (threadpoolctl). One thread is several times faster for these
        small products and does not fight i-PI for the cores; None leaves BLAS alone.

    Attributes
    ----------
    n_requests, n_structures, n_predicted : int
        Force requests answered, structures in them (padding included) and structures predicted
        (after dropping i-PI's repeated padding).
    batch_size : int
        What i-PI announced at INIT (1: one structure per request).
    max_ood_score : float
    n_out_of_domain : int

    Examples
    --------
    >>> with IPIClient("model.npz", unix="dce") as client:   # doctest: +SKIP
    ...     client.connect(timeout=60)
    ...     summary = client.serve()
    """

    def __init__(self, model_or_path, *, unix=None, host=None, port=None,
                 sockets_prefix=DEFAULT_SOCKETS_PREFIX, numbers=None, ood_threshold=1.0, blas_threads=1):
        from nxplugin.calculator import _as_model

        if (unix is None) == (host is None and port is None):
            raise ValueError(f"give either unix (got {unix!r}) or host and port (got {host!r}, {port!r})")
        if unix is None and (host is None or port is None):
            raise ValueError(f"an inet socket needs both host and port (got {host!r}, {port!r})")
        if port is not None and not 0 < int(port) < 65536:
            raise ValueError(f"port={port} is not in 1..65535")
        self.model = _as_model(model_or_path)
        self.unix, self.host, self.port = unix, host, None if port is None else int(port)
        self.sockets_prefix = sockets_prefix
        self.numbers = np.array(self.model.numbers if numbers is None else numbers)
        self.ood_threshold = ood_threshold
        self.blas_threads = blas_threads
        self.batch_size = 1
        self.n_requests = self.n_structures = self.n_predicted = 0
        self.n_out_of_domain = 0
        self.max_ood_score = 0.0
        self._sock = None
        self._set_up_atom_order()
        self.model.predict(self.model.reference_)   # warm-up: compiled kernels and BLAS loaded now

    # ------------------------------------------------------------------ model side
    def _set_up_atom_order(self):
        """Check i-PI's species against the model's at start-up; atoms may come in any order (each
        request is mapped onto the model's labelling by its bonds, :mod:`nxplugin.model.atommap`)."""
        from nxplugin.errors import ModelDomainError
        from nxplugin.model.elements import formula
        if sorted(self.numbers) != sorted(self.model.numbers):
            raise ModelDomainError(f"i-PI's atoms are {formula(self.numbers)}, the model's {formula(self.model.numbers)}")

    def compute(self, positions_bohr):
        """Energies, forces, virials and extras for structures in i-PI's units.

        Parameters
        ----------
        positions_bohr : array-like of shape (n, n_atoms, 3), bohr
            In i-PI's atom order. Repeated structures (i-PI's padding of a short batch) are
            predicted once.

        Returns
        -------
        energies : ndarray of shape (n,), Hartree
        forces : ndarray of shape (n, n_atoms, 3), Hartree/bohr
        virials : ndarray of shape (n, 3, 3), Hartree (zeros)
        extras : list of n str
            JSON: ``dipole`` e*bohr, ``polarizability`` bohr**3 (3x3), ``ood_score``.
        """
        positions = np.asarray(positions_bohr, dtype=float) * Bohr
        if positions.ndim != 3:
            raise ValueError(f"positions_bohr has shape {positions.shape}, expected (n, n_atoms, 3)")
        unique, inverse = _unique_structures(positions)
        pred = self.model.predict(positions[unique], numbers=self.numbers)      # forces in i-PI's order
        self.n_predicted += len(unique)
        self._record_ood(pred["ood_score"])
        energies = pred["energy"][inverse] / Hartree
        forces = pred["forces"][inverse] * (Bohr / Hartree)
        dipoles = pred["dipole"] / Bohr
        polarizabilities = pred.get("polarizability")
        extras = []
        for k in range(len(unique)):
            extra = {"dipole": dipoles[k].tolist()}
            if polarizabilities is not None:
                extra["polarizability"] = (polarizabilities[k] / Bohr**3).tolist()
            extra["ood_score"] = float(pred["ood_score"][k])
            extras.append(json.dumps(extra))
        return energies, forces, np.zeros((len(positions), 3, 3)), [extras[k] for k in inverse]

    def _record_ood(self, scores):
        scores = np.asarray(scores, dtype=float)
        self.max_ood_score = max(self.max_ood_score, float(scores.max()))
        beyond = int(np.count_nonzero(scores > self.ood_threshold))
        if beyond and self.n_out_of_domain == 0:
            warnings.warn(f"i-PI sent a geometry beyond the training data (ood_score={scores.max():.3f} > "
                          f"{self.ood_threshold}); predictions may be unreliable. With beads, a shorter "
                          "time step or fewer beads may help; the score of every structure is in the "
                          "extras (ood_score)", stacklevel=3)
        self.n_out_of_domain += beyond

    # ------------------------------------------------------------------ socket side
    @property
    def address(self):
        """The unix socket path, or ``(host, port)``."""
        return self.sockets_prefix + self.unix if self.unix is not None else (self.host, self.port)

    def connect(self, *, timeout=60.0, poll_interval=0.2):
        """Connect to i-PI, waiting up to ``timeout`` seconds for its socket to appear.

        Parameters
        ----------
        timeout : float, default=60.0, s
        poll_interval : float, default=0.2, s
            Sleep between attempts (i-PI opens its socket a few seconds after it starts).

        Raises
        ------
        TimeoutError
            No i-PI listening at :attr:`address` within ``timeout``.
        """
        deadline = time.monotonic() + timeout
        while True:
            family = socket.AF_UNIX if self.unix is not None else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.connect(self.address)
            except (FileNotFoundError, ConnectionRefusedError) as err:
                sock.close()
                if time.monotonic() + poll_interval > deadline:
                    where = f"unix socket {self.address}" if self.unix is not None else f"{self.host}:{self.port}"
                    raise TimeoutError(f"no i-PI listening on {where} after {timeout:g} s ({err.strerror}); "
                                       "start i-pi first and check <ffsocket> address/port and "
                                       "<simulation sockets_prefix>") from None
                time.sleep(poll_interval)
                continue
            except BaseException:
                sock.close()
                raise
            protocol.set_low_latency(sock)
            self._sock = sock
            return self

    def serve(self):
        """Answer i-PI's requests until it sends EXIT or closes the socket.

        Blocks in ``recv`` between messages (no polling). BLAS is limited to ``blas_threads``
        threads once for the whole loop, for every BLAS call in the process: entering
        threadpoolctl's ``threadpool_limits`` costs about as much as a prediction, so it is not done
        per request. (The model also pins its own kernel sums, ``RPRModel(blas_threads=1)``; with
        the process already on one thread that per-call check changes nothing.)

        Returns
        -------
        dict
            ``ended`` ("exit" or "closed"), ``requests``, ``structures``, ``predicted``,
            ``batch_size``, ``max_ood_score``, ``out_of_domain``.
        """
        if self._sock is None:
            raise RuntimeError("not connected: call connect() first")
        if self.blas_threads is None:
            ended = self._loop()
        else:
            try:
                from threadpoolctl import threadpool_limits
            except ImportError as err:
                raise ImportError("blas_threads needs threadpoolctl (pip install threadpoolctl, or "
                                  "nxplugin[ipi]); blas_threads=None leaves BLAS alone") from err
            with threadpool_limits(limits=self.blas_threads, user_api="blas"):
                ended = self._loop()
        self.close()
        return {"ended": ended, "requests": self.n_requests, "structures": self.n_structures,
                "predicted": self.n_predicted, "batch_size": self.batch_size,
                "max_ood_score": self.max_ood_score, "out_of_domain": self.n_out_of_domain}

    def _loop(self):
        sock = self._sock
        initialised = False
        reply = None                      # the FORCEREADY bytes, ready once POSDATA was answered
        n_atoms = None
        while True:
            try:
                message = protocol.recv_exact(sock, protocol.HEADER_LENGTH)
            except protocol.Closed:
                return "closed"
            try:
                if message == protocol.STATUS:
                    sock.sendall(protocol.HAVEDATA if reply is not None else
                                 protocol.READY if initialised else protocol.NEEDINIT)
                elif message == protocol.INIT:
                    _, _, self.batch_size = protocol.recv_init(sock)
                    initialised = True
                elif message == protocol.POSDATA:
                    if not initialised:
                        raise protocol.IPIProtocolError("i-PI sent POSDATA before INIT")
                    _, positions = protocol.recv_posdata(sock, self.batch_size)
                    if n_atoms is not None and positions.shape[1] != n_atoms:
                        raise protocol.IPIProtocolError(f"the number of atoms changed from {n_atoms} to "
                                                        f"{positions.shape[1]} during the run")
                    n_atoms = positions.shape[1]
                    reply = protocol.encode_forces(*self.compute(positions), batched=self.batch_size > 1)
                    self.n_requests += 1
                    self.n_structures += len(positions)
                elif message == protocol.GETFORCE:
                    if reply is None:
                        raise protocol.IPIProtocolError("i-PI sent GETFORCE before POSDATA")
                    sock.sendall(reply)
                    reply = None
                elif message == protocol.EXIT:
                    return "exit"
                else:
                    raise protocol.IPIProtocolError(f"unknown message {message!r} from i-PI")
            except protocol.Closed:
                return "closed"
            except (BrokenPipeError, ConnectionResetError):
                return "closed"

    def close(self):
        """Close the connection (idempotent)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def _unique_structures(positions):
    """Indices of the distinct structures (bytewise) and the map back: ``positions[unique][inverse]``."""
    slot, unique, inverse = {}, [], []
    for index, row in enumerate(positions):
        key = row.tobytes()
        if key not in slot:
            slot[key] = len(unique)
            unique.append(index)
        inverse.append(slot[key])
    return np.array(unique), np.array(inverse)

