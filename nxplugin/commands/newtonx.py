"""Newton-X CS interface: the step program Newton-X runs each MD step, and trajectory setup.

  nxplugin newtonx step [--model MODEL.npz]
      Run by Newton-X in the trajectory's TEMP/ folder. Reads geom (bohr, amu) and control.d, writes
      epot (Hartree), grad and grad.all (dE/dR in Hartree/bohr), and appends the dipole (e*bohr) and
      polarizability (bohr**3) at time t (fs) to ../RESULTS/nxplugin-dipoles.dat. Ground state only
      (nstat = 1, nstatdyn = 1). Imports numpy only, for a fast start.

  nxplugin newtonx serve [--model MODEL.npz] --socket PATH
      Persistent mode: keeps the model loaded and does the steps of 'step --socket PATH' clients,
      which then skip loading numpy, scipy and the model (see the benchmark for the gain).

  nxplugin newtonx setup GEOMETRY [--model MODEL.npz] -o DIR [--temperature K] [--dt FS] [--tmax FS]
      Writes a Newton-X CS trajectory folder: geom (bohr, amu), veloc (bohr per atomic time unit,
      Maxwell-Boltzmann at --temperature in K, no net momentum), control.dyn (nstat = 1, nstatdyn = 1,
      thres = 0, dt and tmax in fs), JOB_AD/ with analyt.par for prog = 0, and run-nxplugin.pl with the
      colib_perl.pm entry for the run-<name>.pl route.
"""
from nxplugin.commands._options import (MODEL_HELP, model_path, nonnegative_float, nonnegative_int,
                                        positive_float)


def add_arguments(parser):
    sub = parser.add_subparsers(dest="newtonx_command", metavar="{step,serve,setup}", required=True)
    step = sub.add_parser("step", help="one Newton-X step in TEMP/ (geom, control.d -> epot, grad, grad.all)",
                          description="Run in Newton-X's TEMP/: reads geom (bohr) and control.d, writes epot "
                          "(Hartree), grad and grad.all (Hartree/bohr); appends the dipole (e*bohr) to "
                          "RESULTS/nxplugin-dipoles.dat.")
    step.add_argument("--model", metavar="MODEL", help=MODEL_HELP)
    step.add_argument("--directory", default=".", help="Newton-X TEMP/ folder (default: current folder)")
    step.add_argument("--results", default=None,
                      help="folder of the dipole side file (default: DIRECTORY/../RESULTS)")
    step.add_argument("--socket", default=None,
                      help="Unix socket of a running 'nxplugin newtonx serve'; without a server there, "
                      "the step is done in this process")

    serve = sub.add_parser("serve", help="persistent mode: keep the model loaded for 'step --socket' calls",
                           description="Keep the model loaded and serve 'nxplugin newtonx step --socket PATH' "
                           "calls over a Unix socket, one at a time. Stop with Ctrl-C or SIGTERM.")
    serve.add_argument("--model", metavar="MODEL", help=MODEL_HELP)
    serve.add_argument("--socket", required=True, help="Unix socket path to create")

    setup = sub.add_parser("setup", help="write a Newton-X CS trajectory folder for an nxplugin model",
                           description="Write geom, veloc, control.dyn, JOB_AD/analyt.par, run-nxplugin.pl and "
                           "colib_perl-entry.txt for a ground-state Newton-X CS run with an nxplugin model.")
    setup.add_argument("geometry", help="initial geometry: any ase-readable file (Angstrom), e.g. an MD trajectory")
    setup.add_argument("--frame", default="-1", help="frame of GEOMETRY to start from (ase index; default -1, the last)")
    setup.add_argument("--model", metavar="MODEL", help=MODEL_HELP)
    setup.add_argument("-o", "--output", required=True, help="trajectory folder to create")
    setup.add_argument("--temperature", type=nonnegative_float("K"), default=300.0, metavar="K",
                       help="temperature of the initial Maxwell-Boltzmann velocities, K >= 0 (default 300)")
    setup.add_argument("--dt", type=positive_float("fs"), default=0.5, metavar="FS",
                       help="time step, fs > 0 (default 0.5)")
    setup.add_argument("--tmax", type=positive_float("fs"), default=100.0, metavar="FS",
                       help="length of the run, fs > 0 (default 100)")
    setup.add_argument("--seed", type=nonnegative_int(), default=None, help="seed of the velocity draw (>= 0)")
    setup.add_argument("--route", choices=["analytical", "perl"], default="analytical",
                       help="prog in control.dyn: 'analytical' (prog = 0, analyt.par) or 'perl' "
                       "(run-nxplugin.pl registered in colib_perl.pm, prog = --prog-number)")
    setup.add_argument("--prog-number", type=positive_float(), default=30.0, metavar="N",
                       help="program number for the run-nxplugin.pl route (default 30.0)")


def step_through_server(socket_path, directory, results=None):
    """Ask a running ``nxplugin newtonx serve`` to do one step; None when no server answers there.

    Returns ``(status, error message)``. Imports only the standard library (no numpy), so a step costs
    little more than the Python start.
    """
    import json
    import os
    import socket

    request = {"directory": os.path.abspath(directory),
               "results": None if results is None else os.path.abspath(results)}
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.connect(socket_path)
    except OSError:
        client.close()
        return None
    with client, client.makefile("rw") as stream:
        stream.write(json.dumps(request) + "\n")
        stream.flush()
        answer = json.loads(stream.readline() or '{"status": 2, "error": "the server closed the connection"}')
    return answer["status"], answer["error"]


def run(args):
    if args.newtonx_command == "step" and args.socket:
        answer = step_through_server(args.socket, args.directory, args.results)
        if answer is not None:
            if answer[0]:
                import sys
                print(f"nxplugin newtonx step: error (from server {args.socket}): {answer[1]}", file=sys.stderr)
            return answer[0]
    if args.newtonx_command in ("step", "serve"):
        from nxplugin.model.modelfile import load_model
        from nxplugin.newtonx.interface import run_step, serve

        if args.newtonx_command == "serve":
            import signal
            import sys
            # SIGTERM (a job scheduler's stop) -> SystemExit: serve's cleanup runs, the socket file goes
            signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
            serve(load_model(model_path(args.model)), args.socket)
            return 0
        model = load_model(model_path(args.model))
        model.kernel = "numpy"        # one prediction per process: the numpy sums beat loading numba (~0.8 s)
        run_step(model, args.directory, results_dir=args.results)
        return 0

    import ase.io

    from nxplugin.newtonx.interface import setup_trajectory

    frame = int(args.frame) if args.frame.lstrip("-").isdigit() else args.frame
    atoms = ase.io.read(args.geometry, index=frame)
    paths = setup_trajectory(args.output, atoms, model_path=model_path(args.model), temperature_K=args.temperature,
                             dt_fs=args.dt, tmax_fs=args.tmax, seed=args.seed, route=args.route,
                             prog_number=args.prog_number)
    print(f"wrote {len(paths)} files in {args.output}:")
    for path in paths:
        print(f"  {path}")
    return 0
