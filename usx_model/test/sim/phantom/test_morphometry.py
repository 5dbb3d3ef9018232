from __future__ import annotations

import numpy as np
import pytest

from usx_model.sim.phantom import morphometry as mm


def test_same_seed_same_parameters_and_different_seed_differs():
    _, a = mm.sample_spine_morphometry(np.random.default_rng(5))
    _, b = mm.sample_spine_morphometry(np.random.default_rng(5))
    _, c = mm.sample_spine_morphometry(np.random.default_rng(6))
    assert a == b
    assert a[3]["body_width_mm"] != c[3]["body_width_mm"]


def test_every_parameter_is_sampled_for_every_requested_level():
    _, p = mm.sample_spine_morphometry(np.random.default_rng(0), levels=(2, 4))
    assert sorted(p) == [2, 4]
    for level in p:
        assert set(p[level]) == set(mm.PARAMETER_NAMES)
        assert all(isinstance(v, float) for v in p[level].values())


def test_population_trends_follow_the_level_means():
    # Mean over many patients: bodies widen and transverse span grows L1 -> L3.
    widths = np.zeros(5)
    spans = np.zeros(5)
    n = 300
    for seed in range(n):
        _, p = mm.sample_spine_morphometry(np.random.default_rng(seed))
        widths += [p[lv]["body_width_mm"] for lv in range(1, 6)]
        spans += [p[lv]["transverse_span_mm"] for lv in range(1, 6)]
    widths /= n
    spans /= n
    assert np.all(np.diff(widths) > 0.5)
    assert spans[0] < spans[1] < spans[2]
    expected = [mm.level_means(lv)["body_width_mm"] for lv in range(1, 6)]
    np.testing.assert_allclose(widths, expected, rtol=0.03)


def test_body_size_is_only_partly_predicted_by_the_arch():
    f = [mm.sample_patient_factors(np.random.default_rng(s)) for s in range(3000)]
    arch = np.array([x["arch"] for x in f])
    body = np.array([x["body"] for x in f])
    r = np.corrcoef(arch, body)[0, 1]
    assert abs(r - mm.BODY_ARCH_CORRELATION) < 0.06
    assert abs(arch.std() / arch.mean() - mm.SIZE_CV) < 0.01


def test_truncation_bounds_every_draw():
    draws = mm._normal(np.random.default_rng(0), 100000)
    assert draws.max() <= mm.TRUNCATE_SD and draws.min() >= -mm.TRUNCATE_SD


@pytest.mark.parametrize("level", [0, 6, -1])
def test_bad_level_is_rejected(level):
    with pytest.raises(ValueError, match=r"expected a lumbar level 1\.\.5"):
        mm.level_means(level)
    with pytest.raises(ValueError, match=r"expected a lumbar level 1\.\.5"):
        mm.sample_spine_morphometry(np.random.default_rng(0), levels=(level,))


@pytest.mark.parametrize(
    "at_mean", [("body_width_mm",), ("body_width_mm", "endplate_concavity_mm", "facet_angle_deg")]
)
def test_at_mean_parameters_lose_only_their_own_noise(at_mean):
    factors, true = mm.sample_spine_morphometry(np.random.default_rng(9))
    same, oracle = mm.sample_spine_morphometry(np.random.default_rng(9), at_mean=at_mean)
    assert same == factors
    for level in range(1, 6):
        means = mm.level_means(level)
        for name in mm.PARAMETER_NAMES:
            if name not in at_mean:
                assert oracle[level][name] == true[level][name], name
        # length: the level mean scaled by the patient's body factor; angle/ratio: the mean
        assert oracle[level]["body_width_mm"] == pytest.approx(
            means["body_width_mm"] * factors["body"], rel=1e-12
        )
        assert oracle[level]["body_width_mm"] != true[level]["body_width_mm"]
        if "facet_angle_deg" in at_mean:
            assert oracle[level]["facet_angle_deg"] == pytest.approx(means["facet_angle_deg"])


def test_unknown_at_mean_parameter_is_rejected():
    with pytest.raises(ValueError, match=r"at_mean: unknown parameters \['body_girth_mm'\]"):
        mm.sample_spine_morphometry(np.random.default_rng(0), at_mean=("body_girth_mm",))
