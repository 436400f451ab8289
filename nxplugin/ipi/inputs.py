"""i-PI input files for a gas-phase molecule served by ``nxplugin ipi``: the XML and the start xyz.

Units: the XML states its own (femtosecond, kelvin, angstrom); start positions are written in
Angstrom and start velocities in i-PI's atomic units (bohr per atomic time unit), each tagged in
the xyz comment line as i-PI reads it. The cell in the comment is a placeholder that i-PI needs
and the client ignores (``pbc='false'`` on the socket: i-PI does not wrap the molecule).
"""
from ase.units import Bohr, _aut, fs

#: Angstrom/fs in i-PI's atomic velocity unit (bohr per atomic time unit)
ATOMIC_VELOCITY_A_PER_FS = Bohr / (_aut * 1e15)

_THERMOSTATS = ("nve", "pile_l")


def write_xyz(path, atoms, *, velocities=False, box_A=20.0):
    """Write ``atoms``' positions (Angstrom) or velocities (atomic units) as an i-PI xyz file.

    Parameters
    ----------
    path : str or path-like
    atoms : ase.Atoms
        With momenta when ``velocities``.
    velocities : bool, default=False
    box_A : float, default=20.0, Angstrom
        The cubic placeholder cell of the comment line.
    """
    if velocities:
        values, tag = atoms.get_velocities() * fs / ATOMIC_VELOCITY_A_PER_FS, "velocities{atomic_unit}"
    else:
        values, tag = atoms.positions, "positions{angstrom}"
    lines = [str(len(atoms)), f"# CELL(abcABC): {box_A:g} {box_A:g} {box_A:g} 90 90 90 Step: 0 Bead: 0 "
                              f"{tag} cell{{angstrom}}"]
    lines += [f"{symbol} {x:.16e} {y:.16e} {z:.16e}" for symbol, (x, y, z)
              in zip(atoms.get_chemical_symbols(), values)]
    with open(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")


def simulation_xml(*, address, steps, timestep_fs=0.5, temperature_K=300.0, beads=1, batch_size=1,
                   thermostat="pile_l", tau_fs=100.0, pile_lambda=0.5, positions="init.xyz",
                   velocities=None, prefix="simulation", stride=2, properties_stride=10, flush=100,
                   sockets_prefix=None, seed=31415, verbosity="low"):
    """The text of an i-PI input for (path-integral) MD of one molecule over a unix socket.

    Parameters
    ----------
    address : str
        The ``<ffsocket mode='unix'>`` address, as given to ``nxplugin ipi --unix``.
    steps : int
    timestep_fs : float, default=0.5, fs
    temperature_K : float, default=300.0, K
        Ensemble temperature (thermostat, and thermal start velocities unless ``velocities``).
    beads : int, default=1
        Ring-polymer beads (1: classical nuclei).
    batch_size : int, default=1
        Structures per request; set it to ``beads`` so that a step is one batched prediction.
    thermostat : {"pile_l", "nve"}, default="pile_l"
        PILE-L: a local Langevin thermostat on the centroid (time constant ``tau_fs``) and, with
        beads, on the internal ring-polymer modes scaled by ``pile_lambda`` (0.5: TRPMD-like
        damping). "nve": velocity Verlet, no thermostat.
    tau_fs : float, default=100.0, fs
    pile_lambda : float, default=0.5
    positions, velocities : str, default="init.xyz", None
        Start files (:func:`write_xyz`); ``velocities=None`` draws them at ``temperature_K``.
    prefix : str, default="simulation"
        Output names: ``<prefix>.out`` (properties), ``<prefix>.pos_<bead>.xyz`` (Angstrom),
        ``<prefix>.dip_<bead>`` (dipole, e*bohr), ``<prefix>.pol_<bead>`` (bohr^3),
        ``<prefix>.ood_<bead>``.
    stride : int, default=2
        Steps between saved frames of the trajectories.
    properties_stride : int, default=10
    flush : int, default=100
        Frames buffered before i-PI flushes and fsyncs a file (per-step fsync of every bead's
        files would otherwise dominate the step time).
    sockets_prefix : str, optional
        ``<simulation sockets_prefix>``; i-PI's default is /tmp/ipi_.
    seed : int, default=31415
    verbosity : str, default="low"
    """
    if thermostat not in _THERMOSTATS:
        raise ValueError(f"thermostat={thermostat!r} is not one of {_THERMOSTATS}")
    if beads < 1 or batch_size < 1 or steps < 1 or timestep_fs <= 0:
        raise ValueError(f"beads ({beads}), batch_size ({batch_size}), steps ({steps}) and "
                         f"timestep_fs ({timestep_fs}) must be positive")
    mode = "nve" if thermostat == "nve" else "nvt"
    thermo = "" if thermostat == "nve" else (
        f"\n        <thermostat mode='pile_l'><tau units='femtosecond'> {tau_fs:g} </tau>"
        f"<pile_lambda> {pile_lambda:g} </pile_lambda></thermostat>")
    start_velocities = (f"<velocities mode='xyz' units='atomic_unit'> {velocities} </velocities>" if velocities
                        else f"<velocities mode='thermal' units='kelvin'> {temperature_K:g} </velocities>")
    sockets = f" sockets_prefix='{sockets_prefix}'" if sockets_prefix else ""
    batch = f"<batch_size> {batch_size} </batch_size>" if batch_size > 1 else ""
    trajectory = f"stride='{stride}' flush='{flush}'"
    return f"""<simulation verbosity='{verbosity}' safe_stride='{stride}'{sockets}>
  <output prefix='{prefix}'>
    <properties stride='{properties_stride}' filename='out' flush='{flush}'> [ step, time{{femtosecond}},
      conserved{{electronvolt}}, temperature{{kelvin}}, kinetic_cv{{electronvolt}}, potential{{electronvolt}} ] </properties>
    <trajectory filename='pos' format='xyz' cell_units='angstrom' {trajectory}> positions{{angstrom}} </trajectory>
    <trajectory filename='dip' extra_type='dipole' {trajectory}> extras </trajectory>
    <trajectory filename='pol' extra_type='polarizability' {trajectory}> extras </trajectory>
    <trajectory filename='ood' extra_type='ood_score' {trajectory}> extras </trajectory>
    <checkpoint stride='{max(1000, stride)}'/>
  </output>
  <total_steps> {steps} </total_steps>
  <prng><seed> {seed} </seed></prng>
  <ffsocket name='nxplugin' mode='unix' pbc='false'>
    <address> {address} </address>{batch}
  </ffsocket>
  <system>
    <initialize nbeads='{beads}'>
      <file mode='xyz' units='angstrom'> {positions} </file>
      {start_velocities}
    </initialize>
    <forces><force forcefield='nxplugin'/></forces>
    <motion mode='dynamics'>
      <dynamics mode='{mode}'>
        <timestep units='femtosecond'> {timestep_fs:g} </timestep>{thermo}
      </dynamics>
    </motion>
    <ensemble><temperature units='kelvin'> {temperature_K:g} </temperature></ensemble>
  </system>
</simulation>
"""
