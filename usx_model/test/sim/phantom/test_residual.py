"""Residual shape fields: the vertebra frame, transfer between vertebrae, the library."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from usx_model.base.parts import Part
from usx_model.sim.phantom.residual import (
    ResidualLibrary,
    apply_field,
    field_displacement,
    library_sha256,
    residual_spine,
    vertebra_frame,
)
from usx_model.sim.phantom.spine import generate_spine


@pytest.fixture(scope="module")
def spine():
    return generate_spine(7)


def _rot_x(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    return np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])


def _moved(vm, rot: np.ndarray, scale: float, shift: np.ndarray):
    """``vm`` rotated about the lateral axis, scaled and shifted (a similar vertebra)."""

    def f(x):
        return scale * np.asarray(x) @ rot.T + shift

    return dataclasses.replace(
        vm,
        vertices_mm=f(vm.vertices_mm),
        centroid_mm=f(vm.centroid_mm),
        body_centroid_mm=f(vm.body_centroid_mm),
    )


def _library(points: np.ndarray, disp: np.ndarray) -> ResidualLibrary:
    return ResidualLibrary(np.array(["a"]), np.array([3]), np.array([0, len(points)]), points, disp)


def _random_library(names: str, levels: list[int], offsets: list[int], seed: int):
    """Fields of random samples and displacements (normalised frame)."""
    rng = np.random.default_rng(seed)
    n = offsets[-1]
    return ResidualLibrary(
        np.array(list(names)),
        np.array(levels),
        np.array(offsets),
        rng.uniform(-2.0, 2.0, (n, 3)),
        rng.normal(0.0, 0.05, (n, 3)),
    )


def test_frame_is_orthonormal_lateral_first_and_posterior_towards_the_arch(spine) -> None:
    vm = spine.vertebrae[3]
    c, axes, r = vertebra_frame(vm)
    np.testing.assert_allclose(axes @ axes.T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(axes[0], [1.0, 0.0, 0.0])
    assert np.linalg.det(axes) == pytest.approx(1.0)
    arch = vm.vertices_mm[vm.part != Part.BODY].mean(axis=0)
    body = vm.vertices_mm[vm.part == Part.BODY].mean(axis=0)
    assert (arch - body) @ axes[1] > 10.0  # LPS: the arch is posterior to the body
    assert axes[1, 1] > 0.8 and axes[2, 2] > 0.8
    assert r == pytest.approx(np.sqrt(np.mean(np.sum((vm.vertices_mm - c) ** 2, axis=1))))


def test_a_field_follows_its_target_s_tilt_and_size(spine) -> None:
    """A field sampled at every vertex of a vertebra, applied to a tilted, scaled copy,
    moves each copied vertex by the tilted, scaled displacement of its original."""
    vm = spine.vertebrae[2]
    c, axes, r = vertebra_frame(vm)
    z = (vm.vertices_mm - c) @ axes.T / r
    d = 0.05 * np.stack([np.sin(3 * z[:, 1]), z[:, 0] * z[:, 2], np.cos(2 * z[:, 0])], axis=1)
    u_src = field_displacement(vm, z, d)
    # at its own samples the field is blended only with neighbours within ~1.5 mm
    err = np.linalg.norm(u_src - (d @ axes) * r, axis=1)
    assert err.mean() < 0.03 * np.linalg.norm(d @ axes * r, axis=1).mean()
    rot, scale = _rot_x(12.0), 1.2
    copy = _moved(vm, rot, scale, np.array([5.0, -3.0, 40.0]))
    u_copy = field_displacement(copy, z, d)
    # the same up to rounding (which of two equidistant samples is the 8th may differ)
    diff = np.abs(u_copy - scale * u_src @ rot.T)
    assert np.mean(diff < 1e-9) > 0.999 and diff.max() < 0.05


def test_mirror_flips_the_lateral_component(spine) -> None:
    vm = spine.vertebrae[4]
    pts = np.random.default_rng(0).uniform(-2.0, 2.0, (500, 3))
    const = np.tile([0.1, 0.02, -0.03], (500, 1))
    _, axes, r = vertebra_frame(vm)
    u = field_displacement(vm, pts, const)
    u_m = field_displacement(vm, pts, const, mirror=True)
    np.testing.assert_allclose(u, np.tile(np.array([0.1, 0.02, -0.03]) @ axes * r, (len(u), 1)))
    np.testing.assert_allclose(u_m @ axes.T / r, np.tile([-0.1, 0.02, -0.03], (len(u), 1)))


def test_residual_spine_is_deterministic_and_zero_scale_is_identity(spine) -> None:
    lib = _random_library("ab", [1, 2], [0, 300, 600], seed=1)
    a = residual_spine(spine, 5, lib, (0.5, 1.0))
    b = residual_spine(spine, 5, lib, (0.5, 1.0))
    c = residual_spine(spine, 6, lib, (0.5, 1.0))
    for level in spine.levels:
        np.testing.assert_array_equal(
            a.vertebrae[level].vertices_mm, b.vertebrae[level].vertices_mm
        )
        assert not np.allclose(a.vertebrae[level].vertices_mm, c.vertebrae[level].vertices_mm)
        moved = np.linalg.norm(
            a.vertebrae[level].vertices_mm - spine.vertebrae[level].vertices_mm, axis=1
        )
        assert 0.3 < moved.mean() < 5.0
    same = residual_spine(spine, 5, lib, (0.0, 0.0))
    for level in spine.levels:
        np.testing.assert_array_equal(
            same.vertebrae[level].vertices_mm, spine.vertebrae[level].vertices_mm
        )


def test_apply_field_moves_the_centroids_with_their_vertices(spine) -> None:
    vm = spine.vertebrae[1]
    u = np.zeros_like(vm.vertices_mm)
    body = vm.part == Part.BODY
    u[body] = [0.0, 0.0, 3.0]
    out = apply_field(vm, u)
    np.testing.assert_allclose(out.body_centroid_mm - vm.body_centroid_mm, [0.0, 0.0, 3.0])
    np.testing.assert_allclose(out.centroid_mm - vm.centroid_mm, [0.0, 0.0, 3.0 * body.mean()])


def test_library_round_trip(tmp_path) -> None:
    lib = _random_library("xy", [1, 5], [0, 10, 25], seed=2)
    lib.save(tmp_path / "lib.npz")
    back = ResidualLibrary.load(tmp_path / "lib.npz")
    assert list(back.names) == ["x", "y"] and list(back.levels) == [1, 5]
    np.testing.assert_allclose(back.field(1)[0], lib.field(1)[0], rtol=1e-6)
    assert len(back) == 2


def test_the_digest_follows_the_fields_not_the_file(tmp_path) -> None:
    lib = _random_library("xy", [1, 5], [0, 10, 25], seed=2)
    lib.save(tmp_path / "a.npz")
    # the same fields written again: NumPy's archive stores a write time, the digest ignores it
    ResidualLibrary.load(tmp_path / "a.npz").save(tmp_path / "b.npz")
    assert library_sha256(tmp_path / "a.npz") == library_sha256(tmp_path / "b.npz")
    assert library_sha256(tmp_path / "a.npz") == lib.content_sha256()
    moved = lib.displacements.copy()
    moved[3, 1] += 1e-3
    assert dataclasses.replace(lib, displacements=moved).content_sha256() != lib.content_sha256()
    renamed = dataclasses.replace(lib, names=np.array(["x", "z"]))
    assert renamed.content_sha256() != lib.content_sha256()


def _bad(**change):
    base = dict(
        names=np.array(["a"]),
        levels=np.array([1]),
        offsets=np.array([0, 4]),
        points=np.zeros((4, 3)),
        displacements=np.zeros((4, 3)),
    )
    return lambda: ResidualLibrary(**{**base, **change})


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (_bad(names=np.array([], dtype=str)), "expected K >= 1 names"),
        (_bad(offsets=np.array([0, 2, 4])), "K \\+ 1 offsets"),
        (_bad(points=np.zeros((4, 2))), "expected \\(N, 3\\) points"),
        (_bad(offsets=np.array([1, 4])), "offsets: expected 0 <"),
        (_bad(displacements=np.full((4, 3), np.nan)), "expected finite"),
        (
            lambda: residual_spine(
                generate_spine(1, levels=(1,)),
                0,
                _library(np.zeros((4, 3)), np.zeros((4, 3))),
                (1.0, 0.5),
            ),
            "scale: expected 0 <= low <= high <= 2",
        ),
    ],
)
def test_bad_input_is_refused(call, message) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_a_file_that_is_not_a_library_is_refused(tmp_path) -> None:
    np.savez(tmp_path / "x.npz", points=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="expected a residual library, missing"):
        ResidualLibrary.load(tmp_path / "x.npz")


def test_a_vertebra_without_a_body_has_no_frame(spine) -> None:
    vm = dataclasses.replace(spine.vertebrae[1], part=np.zeros_like(spine.vertebrae[1].part))
    with pytest.raises(ValueError, match="expected part labels with a body"):
        vertebra_frame(vm)


def test_subset_keeps_the_named_fields_in_order() -> None:
    lib = _random_library("abc", [1, 2, 3], [0, 5, 12, 20], seed=3)
    sub = lib.subset(["c", "a"])
    assert list(sub.names) == ["a", "c"] and list(sub.levels) == [1, 3]
    np.testing.assert_array_equal(sub.field(1)[1], lib.field(2)[1])
    with pytest.raises(ValueError, match="expected names of this library's fields, got \\['z'\\]"):
        lib.subset(["a", "z"])


def test_arch_only_fields_leave_the_body_in_place(spine) -> None:
    from usx_model.sim.phantom.residual import arch_weight

    lib = _random_library("a", [3], [0, 600], seed=4)
    out = residual_spine(spine, 3, lib, (1.0, 1.0), parts="arch")
    whole = residual_spine(spine, 3, lib, (1.0, 1.0))
    for level in spine.levels:
        vm, body = spine.vertebrae[level], spine.vertebrae[level].part == Part.BODY
        moved = np.linalg.norm(out.vertebrae[level].vertices_mm - vm.vertices_mm, axis=1)
        assert moved[body].max() == 0.0
        w = arch_weight(vm)
        far = w == 1.0
        assert far.sum() > 0.3 * len(w)
        np.testing.assert_allclose(
            out.vertebrae[level].vertices_mm[far], whole.vertebrae[level].vertices_mm[far]
        )
        # between: a ramp, so no vertex moves more than the whole field moves it
        full = np.linalg.norm(whole.vertebrae[level].vertices_mm - vm.vertices_mm, axis=1)
        assert np.all(moved <= full + 1e-12)
    with pytest.raises(ValueError, match="parts: expected one of"):
        residual_spine(spine, 3, lib, (1.0, 1.0), parts="body")
