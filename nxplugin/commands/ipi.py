"""Serve a model to i-PI: answer its force requests with energy, forces and dipoles (extras).

Start i-pi with an input whose <ffsocket> has the same address (unix) or port (inet), then this
command (in any order: it waits --wait seconds for the socket). It ends when i-PI ends the run.

On the wire everything is in i-PI's atomic units: energy Hartree, forces Hartree/bohr, a zero
virial, and an extras JSON per structure with "dipole" (e*bohr), "polarizability" (bohr^3, 3x3)
and "ood_score" (above 1: beyond the training data). Record them with
  <trajectory filename='dip' stride='2' extra_type='dipole'> extras </trajectory>
(one file per bead, read by `nxplugin spectrum`). Path-integral runs: give the <ffsocket> a
<batch_size> equal to the number of beads, and all beads of a step are predicted together.
i-PI's atoms must be in the model's order (see `nxplugin info`); give --structure, the xyz
i-PI starts from, to have that checked. Unix and inet sockets (not mode='shm').

example:
  i-pi input.xml &
  nxplugin ipi --unix dce
"""
from nxplugin.commands._options import int_between, nonnegative_float, nonnegative_int, positive_float


def add_arguments(parser):
    parser.add_argument("--model", metavar="MODEL",
                        help="model file or shipped model name (default: dce-gfn2xtb, 'nxplugin info' lists them)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--unix", metavar="NAME", help="i-PI's unix socket <address> (the file is PREFIX+NAME)")
    where.add_argument("--port", type=int_between(1, 65535), metavar="N", help="i-PI's inet socket <port>")
    parser.add_argument("--host", default="127.0.0.1", help="i-PI's inet <address> (default 127.0.0.1)")
    parser.add_argument("--sockets-prefix", default="/tmp/ipi_", metavar="PREFIX",
                        help="as <simulation sockets_prefix> in i-PI's input (default /tmp/ipi_)")
    parser.add_argument("--structure", metavar="FILE",
                        help="a structure file (xyz, ...) with i-PI's atoms in i-PI's order, to check them "
                             "against the model's")
    parser.add_argument("--wait", type=nonnegative_float("s"), default=60.0, metavar="S",
                        help="seconds to wait for i-PI's socket to appear (default 60)")
    parser.add_argument("--ood-threshold", type=positive_float(), default=1.0,
                        help="out-of-domain score that triggers a warning (default 1.0)")
    parser.add_argument("--blas-threads", type=nonnegative_int(), default=1, metavar="N",
                        help="BLAS threads for the predictions (default 1: faster for these sizes, and "
                             "i-PI needs a core too; 0 leaves BLAS as it is)")


def run(args):
    import time

    from nxplugin.ipi import IPIClient
    from nxplugin.shipped import model_path

    if args.wait < 0 or args.blas_threads < 0:
        raise ValueError(f"--wait ({args.wait}) and --blas-threads ({args.blas_threads}) must not be negative")
    numbers = None
    if args.structure:
        import ase.io
        numbers = ase.io.read(args.structure).numbers
    model_file = model_path(args.model)
    unix = args.unix
    client = IPIClient(model_file, unix=unix, host=None if unix else args.host, port=None if unix else args.port,
                       sockets_prefix=args.sockets_prefix, numbers=numbers, ood_threshold=args.ood_threshold,
                       blas_threads=args.blas_threads or None)
    where = f"unix socket {client.address}" if unix else f"{args.host}:{args.port}"
    print(f"model {model_file}; waiting up to {args.wait:g} s for i-PI on {where}", flush=True)
    with client:
        client.connect(timeout=args.wait)
        print("connected", flush=True)
        start = time.perf_counter()
        summary = client.serve()
    seconds = time.perf_counter() - start
    print(f"i-PI {'ended the run' if summary['ended'] == 'exit' else 'closed the connection'}: "
          f"{summary['requests']} requests, {summary['structures']} structures (batch size "
          f"{summary['batch_size']}, {summary['predicted']} predicted) in {seconds:.1f} s; "
          f"largest ood_score {summary['max_ood_score']:.2f}, {summary['out_of_domain']} structures "
          f"beyond {args.ood_threshold:g}")
    return 0
