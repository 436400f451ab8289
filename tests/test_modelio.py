import json
import pickle

import numpy as np
import pytest

from nxplugin.errors import ModelFileError
from nxplugin.model.modelfile import load_model, read_metadata, save_model


def test_save_load_bit_identical(tmp_path, dce_data, dce_model):
    path = tmp_path / "m.npz"
    save_model(dce_model, path, training={"data": "toy"})
    loaded = load_model(path)
    xs = dce_data["positions"][250:]
    a, b = dce_model.predict(xs), loaded.predict(xs)
    for key in a:
        assert np.array_equal(a[key], b[key]), key
    meta, _ = read_metadata(path)
    assert meta["species"] == ["C", "C", "Cl", "Cl", "H", "H", "H", "H"]
    assert meta["units"]["dipole"] == "e*Angstrom" and meta["training"] == {"data": "toy"}
    assert not list(tmp_path.glob("*.tmp*"))


def _rewrite(src, dst, change):
    with np.load(src, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    change(arrays)
    np.savez(dst, **arrays)


def test_bad_model_files_get_specific_errors(tmp_path, dce_model):
    good = tmp_path / "good.npz"
    save_model(dce_model, good)
    # pickled object array: np.load(allow_pickle=False) refuses, nothing is executed
    class Boom:
        def __reduce__(self):
            return (exec, ("open('PWNED', 'w').write('x')",))
    evil = tmp_path / "evil.npz"
    _rewrite(good, evil, lambda a: a.update(coef_=np.array([Boom()], dtype=object)))
    with pytest.raises(ModelFileError, match="pickled"):
        load_model(evil)
    assert not (tmp_path / "PWNED").exists()
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ModelFileError, match="pickled"):
        load_model(raw)
    trunc = tmp_path / "trunc.npz"
    trunc.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ModelFileError, match="truncated or corrupt"):
        load_model(trunc)
    tampered = tmp_path / "tampered.npz"
    _rewrite(good, tampered, lambda a: a["coef_"].__setitem__((0, 0), a["coef_"][0, 0] + 1e-9))
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        load_model(tampered)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, weights=np.ones(3))
    with pytest.raises(ModelFileError, match="not an nxplugin model"):
        load_model(foreign)
    future = tmp_path / "future.npz"
    def bump(a):
        meta = json.loads(str(a["metadata"][()])); meta["schema_version"] = 99
        a["metadata"] = np.array(json.dumps(meta))
    _rewrite(good, future, bump)
    with pytest.raises(ModelFileError, match="schema version 99"):
        load_model(future)
    with pytest.raises(ModelFileError, match="no such model file"):
        load_model(tmp_path / "missing.npz")
