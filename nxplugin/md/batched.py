"""Batched replicas: many copies of one molecule propagated together, one model prediction per step.

Units: ASE units (positions Angstrom, momenta ASE units, energies eV, forces eV/Angstrom); settings in
K, fs and 1/fs (:class:`nxplugin.md.settings.MDSettings`).

:class:`BatchedDynamics` repeats the update order and random draws of ASE 3.29's ``VelocityVerlet``,
``Langevin(fixcm=False)`` with ``FixCom`` and ``Bussi`` with ``FixCom`` for every replica, with one
``model.predict`` call per step for all replicas. Replica ``k`` draws from its own generator, so with
``default_rng([seed, k, 1])`` it follows the trajectory of :func:`nxplugin.md.dynamics.run_trajectory`
(to round-off of the model's matrix products, ~1e-12 Angstrom over hundreds of steps).
"""
import math

import numpy as np
from ase import units


class BatchedDynamics:
    """Velocity Verlet, or Langevin / Bussi with a fixed centre of mass, for ``n`` replicas.

    Parameters
    ----------
    model : RPRModel
    positions, momenta : ndarray of shape (n, n_atoms, 3), Angstrom and ASE momentum units
    masses : ndarray of shape (n_atoms,), amu
    rngs : list of numpy.random.Generator
        One stream per replica (Langevin and Bussi).
    settings : MDSettings
        Thermostat, time step (fs), temperature (K), friction (1/fs), Bussi time constant (fs).

    Notes
    -----
    ``step(idx)`` moves only the replicas ``idx``; ``results`` holds the latest prediction of every
    replica (``energy`` (n,) eV, ``forces`` (n, n_atoms, 3) eV/Angstrom, ``dipole`` (n, 3)
    e*Angstrom, ``ood_score`` (n,), ``polarizability`` (n, 3, 3) Angstrom**3 if the model has it).
    """

    def __init__(self, model, positions, momenta, masses, rngs, settings):
        thermostat, temperature_K = settings.thermostat, settings.temperature_K
        self.model = model
        self.positions = np.array(positions, dtype=float)
        self.momenta = np.array(momenta, dtype=float)
        self.masses = np.asarray(masses, dtype=float)
        self.rngs = rngs
        self.thermostat = thermostat
        self.dt = settings.timestep_fs * units.fs
        m = self.masses[:, None]
        if thermostat == "langevin":   # ase.md.langevin.Langevin.updatevars
            dt, fr, temp = self.dt, settings.friction_per_fs / units.fs, units.kB * temperature_K
            sigma = np.sqrt(2 * temp * fr / m)
            self.c1 = dt / 2.0 - dt * dt * fr / 8.0
            self.c2 = dt * fr / 2 - dt * dt * fr * fr / 8.0
            self.c3 = np.sqrt(dt) * sigma / 2.0 - dt**1.5 * fr * sigma / 8.0
            self.c5 = dt**1.5 * sigma / (2 * np.sqrt(3))
            self.c4 = fr / 2.0 * self.c5
        if thermostat == "bussi":      # ase.md.bussi.Bussi.__init__, 3 degrees of freedom to FixCom
            self.ndof = 3 * len(self.masses) - 3
            self.target_kinetic_energy = 0.5 * (temperature_K * units.kB) * self.ndof
            self.exp_term = math.exp(-self.dt / (settings.taut_fs * units.fs))
        self.predict()

    def predict(self):
        """Predict every replica slot (one ``model.predict`` call)."""
        self.results = self.model.predict(self.positions)

    def kinetic_energy(self, k):
        """Kinetic energy of replica ``k``, eV (as ``Atoms.get_kinetic_energy``)."""
        p = self.momenta[k]
        return 0.5 * np.vdot(p, p / self.masses[:, None])

    def _fix_positions(self, old, new):
        """FixCom.adjust_positions on a stack of replicas (in place)."""
        total = self.masses.sum()
        new += (self.masses @ old / total - self.masses @ new / total)[:, None, :]

    def _fix_momenta(self, p):
        """FixCom.adjust_momenta on a stack of replicas (in place)."""
        p -= self.masses[:, None] * (p.sum(axis=1) / self.masses.sum())[:, None, :]

    def step(self, idx):
        """Advance the replicas ``idx`` (array of slot indices) by one time step."""
        idx = np.asarray(idx, dtype=int)
        if self.thermostat == "langevin":
            self._langevin(idx)
        else:
            if self.thermostat == "bussi":
                self._bussi_scale(idx)
            self._verlet(idx)

    def _verlet(self, idx):
        # ase.md.verlet.VelocityVerlet.step (with FixCom's RATTLE part for Bussi)
        dt, m, constrained = self.dt, self.masses[:, None], self.thermostat != "nve"
        p = self.momenta[idx] + 0.5 * dt * self.results["forces"][idx]
        r = self.positions[idx]
        new = r + dt * p / m
        if constrained:
            self._fix_positions(r, new)
            p = (new - r) * m / dt
        self.positions[idx] = new
        self.predict()
        p = p + 0.5 * dt * self.results["forces"][idx]
        if constrained:
            self._fix_momenta(p)
        self.momenta[idx] = p

    def _bussi_scale(self, idx):
        # ase.md.bussi.Bussi.scale_velocities, then set_momenta through FixCom
        alpha = np.empty(len(idx))
        for j, k in enumerate(idx):
            rng = self.rngs[k]
            term = (1 - self.exp_term) * self.target_kinetic_energy / self.kinetic_energy(k) / self.ndof
            normal = rng.standard_normal()
            sum_of_noises = 2.0 * rng.standard_gamma(0.5 * (self.ndof - 1))
            alpha[j] = math.sqrt(self.exp_term + term * (sum_of_noises + normal**2)
                                 + 2 * normal * math.sqrt(self.exp_term * term))
        p = alpha[:, None, None] * self.momenta[idx]
        self._fix_momenta(p)
        self.momenta[idx] = p

    def _langevin(self, idx):
        # ase.md.langevin.Langevin.step with fixcm=False and the FixCom constraint
        dt, m, n_atoms = self.dt, self.masses[:, None], len(self.masses)
        xi, eta = np.empty((2, len(idx), n_atoms, 3))
        for j, k in enumerate(idx):
            xi[j] = self.rngs[k].standard_normal(size=(n_atoms, 3))
            eta[j] = self.rngs[k].standard_normal(size=(n_atoms, 3))
        rnd_pos = self.c5 * eta
        rnd_vel = self.c3 * xi - self.c4 * eta
        v = self.momenta[idx] / m
        v += self.c1 * self.results["forces"][idx] / m - self.c2 * v + rnd_vel
        x = self.positions[idx]
        new = x + dt * v + rnd_pos
        self._fix_positions(x, new)
        self.positions[idx] = new
        v = (new - x - rnd_pos) / dt
        self.predict()
        v += self.c1 * self.results["forces"][idx] / m - self.c2 * v + rnd_vel
        p = v * m
        self._fix_momenta(p)
        self.momenta[idx] = p
