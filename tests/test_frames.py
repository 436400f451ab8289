import numpy as np
import pytest

from nxplugin.model import molframe as frames
from conftest import TRANS_DCE

MASSES = np.array([12.011, 12.011, 35.45, 35.45, 1.008, 1.008, 1.008, 1.008])


def random_orthogonal(rng, n, reflect=True):
    q, r = np.linalg.qr(rng.normal(size=(n, 3, 3)))
    q = q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]
    if reflect:
        q[: n // 2, :, 0] *= -1          # half of them improper
    return q


def gauche(rng):
    from ase import Atoms
    a = Atoms("C2Cl2H4", positions=TRANS_DCE)
    a.set_dihedral(2, 0, 1, 3, 68, mask=[0, 1, 0, 1, 0, 0, 1, 1])
    return a.positions + rng.normal(scale=0.03, size=(8, 3))


@pytest.mark.parametrize("kind", frames.FRAME_KINDS)
def test_frames_are_covariant_under_o3_and_translation(kind):
    rng = np.random.default_rng(0)
    ref = frames.reference_coordinates(TRANS_DCE, MASSES)
    x = gauche(rng)
    q = random_orthogonal(rng, 1000)
    moved = np.einsum("nij,aj->nai", q, x) + rng.normal(scale=5, size=(1000, 1, 3))
    r0, _ = frames.compute_frames(x, MASSES, ref, kind)
    r, cond = frames.compute_frames(moved, MASSES, ref, kind)
    np.testing.assert_allclose(r, q @ r0, atol=1e-10)
    assert np.all(np.abs(np.abs(np.linalg.det(r)) - 1) < 1e-12)


def test_mirror_images_give_identical_labels():
    rng = np.random.default_rng(1)
    ref = frames.reference_coordinates(TRANS_DCE, MASSES)
    x = gauche(rng)
    mirror = x * np.array([1, 1, -1])                # gauche+ -> gauche-
    mu = rng.normal(size=3)
    alpha = rng.normal(size=(3, 3)); alpha = alpha + alpha.T
    for kind in frames.FRAME_KINDS:
        r, _ = frames.compute_frames(x, MASSES, ref, kind)
        rm, _ = frames.compute_frames(mirror, MASSES, ref, kind)
        p = np.diag([1, 1, -1])
        np.testing.assert_allclose(frames.vector_to_frame(p @ mu, rm), frames.vector_to_frame(mu, r), atol=1e-12)
        np.testing.assert_allclose(frames.tensor_to_frame(p @ alpha @ p, rm),
                                   frames.tensor_to_frame(alpha, r), atol=1e-12)


def test_centrosymmetric_trans_is_well_defined_and_conditioning_reported():
    ref = frames.reference_coordinates(TRANS_DCE, MASSES)
    r, cond = frames.compute_frames(TRANS_DCE, MASSES, ref, "eckart")
    np.testing.assert_allclose(frames.vector_to_frame(TRANS_DCE - TRANS_DCE.mean(0), r) @ r.T,
                               TRANS_DCE - TRANS_DCE.mean(0), atol=1e-12)
    assert 0.01 < cond["singular_ratio"] <= 1
    _, cond = frames.compute_frames(TRANS_DCE, MASSES, ref, "inertia")
    assert cond["sign_margin"] > 0.99                 # the reference itself: perfect overlap
    assert 0 < cond["moment_gap"] < 0.05               # trans-DCE is nearly a prolate top


def test_eckart_frame_is_smooth_where_inertia_axes_swing():
    """Near trans the two large moments differ by ~3 %: 0.01 Angstrom moves swing the inertia axes
    by degrees, the Eckart frame by far less."""
    rng = np.random.default_rng(2)
    ref = frames.reference_coordinates(TRANS_DCE, MASSES)
    swing = {}
    for kind in frames.FRAME_KINDS:
        r0, _ = frames.compute_frames(TRANS_DCE, MASSES, ref, kind)
        steps = [frames.compute_frames(TRANS_DCE + rng.normal(scale=0.01, size=(8, 3)), MASSES, ref, kind)[0]
                 for _ in range(50)]
        swing[kind] = max(np.degrees(np.arccos(np.clip(np.abs(np.einsum("ij,ij->j", r0, r)), 0, 1))).max()
                          for r in steps)
    assert swing["eckart"] < 1.0 < swing["inertia"]


def test_rank1_rank2_round_trip_and_six_components():
    rng = np.random.default_rng(3)
    r = random_orthogonal(rng, 10)
    v = rng.normal(size=(10, 3))
    a = rng.normal(size=(10, 3, 3)); a = a + np.swapaxes(a, 1, 2)
    np.testing.assert_allclose(frames.vector_from_frame(frames.vector_to_frame(v, r), r), v, atol=1e-13)
    np.testing.assert_allclose(frames.tensor_from_frame(frames.tensor_to_frame(a, r), r), a, atol=1e-13)
    np.testing.assert_allclose(frames.six_to_symmetric(frames.symmetric_to_six(a)), a)
    with pytest.raises(ValueError, match="kind="):
        frames.compute_frames(TRANS_DCE, MASSES, TRANS_DCE, "bogus")
