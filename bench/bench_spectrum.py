"""Benchmark of the spectrum engine: wall time of an IR spectrum of 10^6 frames (target <= 2 s).

Run: python bench/bench_spectrum.py [--frames N] [--depth FS] [--repeat R]
Prints the best wall time over the repeats for one long series, an ensemble of ten series and a
Raman spectrum; the series are synthetic (0.5 fs steps), so no file reading is timed.
"""
import argparse
import timeit

import numpy as np

from nxplugin.analysis import spectra


def best_time(function, repeat):
    return min(timeit.repeat(function, number=1, repeat=repeat))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=1_000_000)
    parser.add_argument("--depth", type=float, default=1000.0, metavar="FS")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    dipoles = np.cumsum(rng.normal(size=(args.frames, 3)), axis=0) * 1e-3  # e*Angstrom
    options = dict(depth_fs=args.depth)
    seconds = best_time(lambda: spectra.ir_spectrum(dipoles, 0.5, 300.0, **options), args.repeat)
    print(f"IR spectrum, {args.frames} frames, depth {args.depth:g} fs: {seconds:.3f} s (target <= 2 s)")
    parts = np.array_split(dipoles, 10)
    seconds = best_time(lambda: spectra.ensemble_spectrum(parts, timestep_fs=0.5, temperature_K=300.0,
                                                          **options), args.repeat)
    print(f"IR ensemble of 10 x {len(parts[0])} frames: {seconds:.3f} s")
    alpha = np.repeat(np.eye(3)[None], args.frames, axis=0) + dipoles[:, :, None] * dipoles[:, None, :]
    seconds = best_time(lambda: spectra.raman_spectrum(alpha, 0.5, 300.0, **options), args.repeat)
    print(f"Raman spectrum, {args.frames} frames: {seconds:.3f} s")


if __name__ == "__main__":
    main()
