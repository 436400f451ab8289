"""The settings of an MD run: one dataclass for ASE runs, batched replicas, ensembles and checkpoints.

Units are in the field names: K, fs, 1/fs. The same dict (:meth:`MDSettings.as_dict`) is stored in
every checkpoint, so a resumed run can tell whether it continues with the settings it started with.
"""
import dataclasses

THERMOSTATS = ("nve", "langevin", "bussi")


@dataclasses.dataclass(frozen=True)
class MDSettings:
    """How one trajectory (or every trajectory of an ensemble) is propagated and written.

    Parameters
    ----------
    temperature_K : float, default=300.0
        Target of the thermostat and of the initial velocities, K (>= 0).
    timestep_fs : float, default=0.5
        Integration time step, fs (> 0).
    n_steps : int, default=2000
        Steps per trajectory (>= 1).
    interval : int, default=1
        Steps between saved frames (>= 1).
    thermostat : {"nve", "langevin", "bussi"}, default="langevin"
    friction_per_fs : float, default=0.01
        Langevin friction, 1/fs (> 0).
    taut_fs : float, default=100.0
        Bussi time constant, fs (> 0).
    seed : int, default=0
        Trajectory ``k`` draws from ``numpy.random.default_rng([seed, k, 1])``.
    checkpoint_every : int, default=200
        Saved frames between checkpoints (>= 1).
    ood_threshold : float, default=1.0
        Out-of-domain score above which a frame is reported (> 0).
    stop_on_ood : bool, default=False
        End a trajectory cleanly at its first out-of-domain frame.
    """

    temperature_K: float = 300.0
    timestep_fs: float = 0.5
    n_steps: int = 2000
    interval: int = 1
    thermostat: str = "langevin"
    friction_per_fs: float = 0.01
    taut_fs: float = 100.0
    seed: int = 0
    checkpoint_every: int = 200
    ood_threshold: float = 1.0
    stop_on_ood: bool = False

    def __post_init__(self):
        checks = {"temperature_K": self.temperature_K >= 0, "timestep_fs": self.timestep_fs > 0,
                  "friction_per_fs": self.friction_per_fs > 0, "taut_fs": self.taut_fs > 0,
                  "ood_threshold": self.ood_threshold > 0}
        for name, ok in checks.items():
            value = float(getattr(self, name))
            if not ok or value != value:
                bound = ">= 0" if name == "temperature_K" else "> 0"
                raise ValueError(f"{name}={value:g} must be {bound}")
        for name in ("n_steps", "interval", "checkpoint_every"):
            value = getattr(self, name)
            if int(value) != value or value < 1:
                raise ValueError(f"{name}={value!r} must be an integer >= 1")
        if self.thermostat not in THERMOSTATS:
            raise ValueError(f"thermostat={self.thermostat!r} is not one of {THERMOSTATS}")

    def as_dict(self):
        """The settings as plain JSON-ready values (what checkpoints store)."""
        return dataclasses.asdict(self)
