"""Every command refuses out-of-range options (exit 2, message naming the option and the allowed
range) before writing anything, and bad input files get a message that says what they are."""
import os
import re

import numpy as np
import pytest

from nxplugin.cli import COMMANDS, main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "calculators", "dce-gfn2xtb", "model.npz")
TRAJ = os.path.join(ROOT, "trajectories", "dce-300K", "traj_000.extxyz")

# command line that is valid without the option under test, by command
BASE = {
    "sample": ["sample", "--out", "{tmp}/data.extxyz"],
    "train": ["train", TRAJ, "-o", "{tmp}/m.npz"],
    "info": ["info", MODEL],
    "learn": ["learn", "--start", TRAJ, "--out", "{tmp}/al"],
    "md": ["md", "--out", "{tmp}/md"],
    "harmonic": ["harmonic", "--out", "{tmp}/h.csv"],
    "spectrum": ["spectrum", TRAJ, "--out", "{tmp}/s.csv"],
    "newtonx setup": ["newtonx", "setup", TRAJ, "-o", "{tmp}/nx"],
    "ipi": ["ipi", "--unix", "nxplugin-test-options"],
    "diagnose": ["diagnose", MODEL, TRAJ, "--out", "{tmp}/diag"],
    "symmetry": ["symmetry", TRAJ, "--test", TRAJ, "--out", "{tmp}/sym"],
}
# (command, option, refused values, text of the allowed range)
CASES = [
    ("sample", "--temperatures", ["0", "-300"], "> 0 K"),
    ("sample", "--n-traj", ["0", "1.5"], ">= 1"),
    ("sample", "--n-frames", ["0"], ">= 1"),
    ("sample", "--stride", ["0"], ">= 1 steps"),
    ("sample", "--timestep", ["0", "nan"], "> 0 fs"),
    ("sample", "--equilibration", ["-1"], ">= 0 fs"),
    ("sample", "--friction", ["0", "inf"], "> 0 1/fs"),
    ("sample", "--seed", ["-1"], ">= 0"),
    ("train", "--n-train", ["1", "0"], ">= 2"),
    ("train", "--n-test", ["-1"], ">= 0"),
    ("train", "--seed", ["-3"], ">= 0"),
    ("train", "--n-search", ["0"], ">= 2"),
    ("learn", "--temperatures", ["0", "-300"], "> 0 K"),
    ("learn", "--budget", ["2", "1.5"], ">= 3"),
    ("learn", "--target-energy", ["0"], "> 0 kcal/mol"),
    ("learn", "--target-forces", ["-1"], "> 0 kcal/mol/Angstrom"),
    ("learn", "--target-dipole", ["0"], "> 0 D"),
    ("learn", "--batch", ["0"], ">= 1"),
    ("learn", "--md-steps", ["0"], ">= 1 steps"),
    ("learn", "--timestep", ["0"], "> 0 fs"),
    ("learn", "--seed", ["-1"], ">= 0"),
    ("md", "--temperature", ["-300"], ">= 0 K"),
    ("md", "--timestep", ["0", "-1"], "> 0 fs"),
    ("md", "--time", ["0"], "> 0 ps"),
    ("md", "--n-traj", ["0"], ">= 1"),
    ("md", "--equilibration", ["-1"], ">= 0 ps"),
    ("md", "--equilibration-replicas", ["0"], ">= 1"),
    ("md", "--friction", ["-0.1"], ">= 0 1/fs"),
    ("md", "--taut", ["0"], "> 0 fs"),
    ("md", "--interval", ["0"], ">= 1 steps"),
    ("md", "--seed", ["-1"], ">= 0"),
    ("md", "--checkpoint-every", ["0"], ">= 1 frames"),
    ("md", "--ood-threshold", ["0"], "> 0"),
    ("md", "--jobs", ["0"], ">= 1"),
    ("md", "--chunk-size", ["0"], ">= 1"),
    ("harmonic", "--fmax", ["0"], "> 0 eV/Angstrom"),
    ("harmonic", "--delta", ["-0.01"], "> 0 Angstrom"),
    ("spectrum", "--timestep", ["0"], "> 0 fs"),
    ("spectrum", "--temperature", ["-300", "0"], "> 0 K"),
    ("spectrum", "--depth", ["0"], "> 0 fs"),
    ("spectrum", "--padding", ["0.5"], ">= 1"),
    ("spectrum", "--blocks", ["0"], ">= 1"),
    ("newtonx setup", "--temperature", ["-5"], ">= 0 K"),
    ("newtonx setup", "--dt", ["0", "-0.5"], "> 0 fs"),
    ("newtonx setup", "--tmax", ["0"], "> 0 fs"),
    ("newtonx setup", "--seed", ["-1"], ">= 0"),
    ("newtonx setup", "--prog-number", ["0"], "> 0"),
    ("ipi", "--port", ["0", "70000"], ">= 1 and <= 65535"),
    ("ipi", "--wait", ["-1"], ">= 0 s"),
    ("ipi", "--ood-threshold", ["0"], "> 0"),
    ("ipi", "--blas-threads", ["-1"], ">= 0"),
    ("diagnose", "--every", ["0"], ">= 1"),
    ("diagnose", "--eckart-ratio", ["0"], "> 0"),
    ("diagnose", "--inertia-gap", ["-0.1"], "> 0"),
    ("diagnose", "--sensitivity", ["0"], "> 0 rad/Angstrom"),
    ("symmetry", "--n-train", ["1"], ">= 2"),
    ("symmetry", "--augment", ["0"], ">= 1"),
    ("symmetry", "--n-rotations", ["0"], ">= 1"),
    ("symmetry", "--n-covariance-frames", ["0"], ">= 1"),
    ("symmetry", "--seed", ["-1"], ">= 0"),
]


def test_every_command_is_covered():
    assert {case[0].split()[0] for case in CASES} == set(COMMANDS) - {"info", "models"}   # no numeric option
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    table = re.findall(r"^\| `nxplugin (\w+)", readme, re.M)
    assert list(COMMANDS) == table                                           # the README table's order


@pytest.mark.parametrize("command, option, values, rule", CASES, ids=[f"{c[0]} {c[1]}" for c in CASES])
def test_out_of_range_option_is_refused_before_writing(command, option, values, rule, tmp_path, capsys):
    base = [arg.format(tmp=tmp_path) for arg in BASE[command]]
    for value in values:
        assert main(base + [option, value]) == 2, (option, value)
        err = capsys.readouterr().err
        assert f"argument {option}" in err and rule in err, err
        assert os.listdir(tmp_path) == []             # nothing written


def test_range_messages_name_one_option_each(tmp_path, capsys):
    # the old lumped "--timestep, --time and --n-traj must be positive" message named none of them
    assert main(["md", "--time", "0", "--out", str(tmp_path / "md")]) == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message == "nxplugin md: error: argument --time: must be > 0 ps (got 0)"


def test_md_out_with_a_previous_run_needs_resume(tmp_path, capsys):
    out = tmp_path / "md"
    out.mkdir()
    (out / "traj_000.extxyz").write_text("previous run\n")
    assert main(["md", "--time", "0.01", "--n-traj", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"--out {out} already holds a run (traj_000.extxyz)" in err and "--resume" in err
    assert (out / "traj_000.extxyz").read_text() == "previous run\n"
    assert sorted(os.listdir(out)) == ["traj_000.extxyz"]


def test_newtonx_setup_negative_temperature_writes_no_nan(tmp_path, capsys):
    out = tmp_path / "traj1"
    assert main(["newtonx", "setup", TRAJ, "-o", str(out), "--temperature", "-5"]) == 2
    assert "argument --temperature: must be >= 0 K (got -5)" in capsys.readouterr().err
    assert not out.exists()


def test_newtonx_and_harmonic_use_the_shipped_model_by_default(tmp_path, capsys):
    out = tmp_path / "traj1"
    assert main(["newtonx", "setup", TRAJ, "-o", str(out), "--seed", "1"]) == 0
    assert "calculators/dce-gfn2xtb/model.npz" in (out / "JOB_AD" / "nxplugin-step.sh").read_text()
    veloc = np.loadtxt(out / "veloc")
    assert veloc.shape == (8, 3) and np.all(np.isfinite(veloc))


@pytest.mark.parametrize("content, expected", [
    (b"hello world\n", "it is a text file (first line: 'hello world')"),
    (bytes(range(256)) * 3, "it is a binary file"),
    (b"", "it is an empty file"),
    (b"\x80\x04\x95\x00", "pickled Python object"),
    (b"\x93NUMPY\x01\x00", "a single .npy array"),
])
def test_non_zip_model_files_say_what_they_are(content, expected, tmp_path, capsys):
    path = tmp_path / "model.npz"
    path.write_bytes(content)
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err
    assert expected in err and "not an nxplugin model" in err
    if "pickle" not in expected:
        assert "pickle" not in err


def test_xyz_and_folder_given_as_model(tmp_path, capsys):
    assert main(["info", TRAJ]) == 2
    err = capsys.readouterr().err
    assert "text file (first line: '8')" in err and "pickle" not in err
    folder = os.path.dirname(MODEL)
    assert main(["harmonic", folder, "--out", str(tmp_path / "h.csv")]) == 2
    err = capsys.readouterr().err
    assert "is a folder, not a model file; did you mean" in err and "model.npz" in err
    assert main(["harmonic", str(tmp_path), "--out", str(tmp_path / "h.csv")]) == 2
    assert "is a folder, not a model file; give the model's .npz file" in capsys.readouterr().err


def test_spectrum_option_messages(tmp_path, capsys):
    base = ["spectrum", TRAJ, "--out", str(tmp_path / "s.csv"), "--quiet"]
    assert main(base + ["--harmonic", str(tmp_path / "nonexist.csv")]) == 2
    err = capsys.readouterr().err
    assert "--harmonic" in err and "nonexist.csv: no such file" in err and "nxplugin harmonic" in err
    assert main(base + ["--range", "3000", "500"]) == 2
    assert "--range 3000 500: MIN must be below MAX" in capsys.readouterr().err
    assert not (tmp_path / "s.csv").exists()


def test_library_messages_print_plain_numbers():
    from nxplugin.analysis import spectra
    with pytest.raises(ValueError) as err:
        spectra.quantum_correction(np.array([100.0]), np.float64(-300.0))
    assert "np.float64" not in str(err.value) and "-300" in str(err.value)


def test_dipole_calculator_needs_a_base_calculator():
    import nxplugin
    with pytest.raises(TypeError, match=r"DipoleCalculator\(base=...\) needs an ASE calculator.*NoneType"):
        nxplugin.DipoleCalculator(MODEL, base=None)


def test_info_prints_errors_with_units(capsys):
    assert main(["info", MODEL]) == 0
    printed = capsys.readouterr().out
    line = next(row for row in printed.splitlines() if "test_errors" in row)
    assert "RMSE on" in line and "kcal/mol" in line and " D" in line and "{" not in line
    assert not any(len(word) > 12 and word.replace(".", "").isdigit() for word in printed.split())
