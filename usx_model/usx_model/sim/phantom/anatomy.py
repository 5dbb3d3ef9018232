"""Anatomical primitives of one lumbar vertebra built from its morphometry.

Vertebra frame: origin at the body centre, x patient left, y posterior, z superior, mm.
Each primitive carries the ``Part`` it labels and the blend radius used to join it
to what was built before it (smooth union, so the surface has fillets, not creases).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from usx_model.base.parts import Part
from usx_model.sim.phantom.sdf import Body, RoundedBox, TaperedCapsule, axes_from


@dataclass(frozen=True)
class Primitive:
    """One labelled building block: its shape, part code and blend radius (mm)."""

    shape: Body | TaperedCapsule | RoundedBox
    part: Part
    blend_mm: float


def build_primitives(p: dict[str, float]) -> list[Primitive]:
    """Primitives of one vertebra from a morphometry dict (see ``morphometry``).

    Args:
        p: parameter name -> value (mm / degrees), e.g. one level of
            ``sample_spine_morphometry``.

    Returns:
        Primitives in build order: body first, then both sides of each arch part.
    """
    missing = [k for k in _REQUIRED if k not in p]
    if missing:
        raise ValueError(f"morphometry is missing parameters {missing}")
    h = p["body_height_mm"]
    b = p["body_depth_mm"] / 2.0
    prims = [
        Primitive(
            Body(
                width_mm=p["body_width_mm"],
                depth_mm=p["body_depth_mm"],
                height_mm=h,
                wedge_mm=p["body_wedge_mm"],
                concavity_mm=p["endplate_concavity_mm"],
                waist=p["body_waist"],
            ),
            Part.BODY,
            0.0,
        )
    ]
    pw, ph, pl = p["pedicle_width_mm"], p["pedicle_height_mm"], p["pedicle_length_mm"]
    cw, cd = p["canal_width_mm"], p["canal_depth_mm"]
    lt, lh = p["lamina_thickness_mm"], p["lamina_height_mm"]
    theta = np.radians(p["pedicle_angle_deg"])
    # Pedicles sit on the upper half of the body, their tops ~1.5 mm below the end plate.
    z_ped = h / 2 - ph / 2 - 1.5
    x_ped = cw / 2 + pw / 2
    y_ped = b + pl
    lam_top = z_ped + ph / 4
    lam_mid = lam_top - lh / 2
    y_mid = b + cd + lt / 2
    for side in (1.0, -1.0):
        post = np.array([side * x_ped, y_ped, z_ped])
        # The pedicle axis converges medially towards the body (transverse angle).
        into = np.array([-side * np.sin(theta), -np.cos(theta), 0.0])
        ant = post + (pl + 7.0) * into
        prims.append(
            Primitive(
                TaperedCapsule(_t(ant), _t(post), (pw / 2, ph / 2), (pw / 2, ph / 2)),
                Part.PEDICLE,
                3.0,
            )
        )
        prims.append(_lamina(side, post, pw, y_mid, lam_mid, lt, lh))
    prims += _spinous(p, b, cd, h)
    for side in (1.0, -1.0):
        prims.append(_transverse(p, side, x_ped, pw, y_ped, z_ped))
        prims += _articular(p, side, x_ped, pw, y_ped, z_ped, cw, b, cd, lam_top, lh)
    return prims


_REQUIRED = (
    "body_width_mm",
    "body_depth_mm",
    "body_height_mm",
    "body_wedge_mm",
    "endplate_concavity_mm",
    "body_waist",
    "pedicle_width_mm",
    "pedicle_height_mm",
    "pedicle_angle_deg",
    "pedicle_length_mm",
    "canal_width_mm",
    "canal_depth_mm",
    "lamina_thickness_mm",
    "lamina_height_mm",
    "spinous_length_mm",
    "spinous_height_mm",
    "spinous_thickness_mm",
    "spinous_tilt_deg",
    "transverse_span_mm",
    "transverse_tilt_deg",
    "transverse_sweep_deg",
    "transverse_thickness_mm",
    "facet_angle_deg",
    "sap_height_mm",
    "iap_height_mm",
    "facet_width_mm",
)


def _t(v: np.ndarray) -> tuple[float, float, float]:
    return (float(v[0]), float(v[1]), float(v[2]))


def _lamina(side, ped_post, pw, y_mid, z_mid, lt, lh) -> Primitive:
    """Plate from the pedicle's posterior end to the midline, roofing the canal."""
    start = np.array([side * (abs(ped_post[0]) + 0.15 * pw), ped_post[1] - 1.0, z_mid])
    end = np.array([0.0, y_mid, z_mid])
    u = end - start
    half_len = np.linalg.norm(u) / 2 + lt / 2
    centre = (start + end) / 2
    return Primitive(
        RoundedBox(_t(centre), axes_from(u, [0, 0, 1]), (half_len, lt / 2, lh / 2), lt / 2.2),
        Part.LAMINA,
        3.0,
    )


def _spinous(p, b, cd, h) -> list[Primitive]:
    """Sagittal plate running posteriorly and caudally from the laminae, club-shaped tip."""
    tilt = np.radians(p["spinous_tilt_deg"])
    length, height, thick = (
        p["spinous_length_mm"],
        p["spinous_height_mm"],
        p["spinous_thickness_mm"],
    )
    u = np.array([0.0, np.cos(tilt), -np.sin(tilt)])
    base = np.array([0.0, b + cd, -0.3 * h])
    centre = base + u * length / 2
    plate = RoundedBox(
        _t(centre), axes_from(u, [0, 0, 1]), (length / 2, thick / 2.6, height / 2), 2.0
    )
    tip_c = base + u * (length - thick * 0.6)
    tip = RoundedBox(
        _t(tip_c), axes_from(u, [0, 0, 1]), (thick * 0.6, thick / 2, height / 2), thick / 2.2
    )
    return [Primitive(plate, Part.SPINOUS, 4.0), Primitive(tip, Part.SPINOUS, 2.0)]


def _transverse(p, side, x_ped, pw, y_ped, z_ped) -> Primitive:
    """Tapered process from the pedicle-lamina junction out to half the span."""
    sweep, tilt = np.radians(p["transverse_sweep_deg"]), np.radians(p["transverse_tilt_deg"])
    tt = p["transverse_thickness_mm"]
    root = np.array([side * (x_ped + pw / 4), y_ped + 1.0, z_ped - 2.0])
    reach = p["transverse_span_mm"] / 2 - abs(root[0]) - tt * 0.35
    tip = root + np.array([side * reach, reach * np.tan(sweep), reach * np.tan(tilt)])
    return Primitive(
        TaperedCapsule(_t(root), _t(tip), (tt / 2, tt * 0.85), (tt * 0.35, tt * 0.55)),
        Part.TRANSVERSE,
        2.5,
    )


def _articular(p, side, x_ped, pw, y_ped, z_ped, cw, b, cd, lam_top, lh) -> list[Primitive]:
    """Superior and inferior articular processes with the level's facet orientation.

    The facet plane makes ``facet_angle_deg`` with the sagittal plane; superior facets
    face posteromedially, inferior facets (more medial, lower) anterolaterally.
    """
    beta = np.radians(p["facet_angle_deg"])
    # In-plane facet direction (anteromedial -> posterolateral for the left side).
    t_dir = np.array([side * np.sin(beta), np.cos(beta), 0.0])
    fw, th = p["facet_width_mm"], 5.0
    sap_h, iap_h = p["sap_height_mm"], p["iap_height_mm"]
    sap_bottom = z_ped
    sap_c = np.array([side * (x_ped + pw * 0.25), y_ped + 4.0, sap_bottom + sap_h / 2])
    sap = RoundedBox(_t(sap_c), axes_from(t_dir, [0, 0, 1]), (fw / 2, th / 2, sap_h / 2), 2.2)
    # Hang the inferior process from the lamina's lower edge so it is always attached.
    iap_top = lam_top - lh + 4.0
    iap_c = np.array([side * (cw / 2 - 0.5), b + cd - 1.0, iap_top - iap_h / 2])
    iap = RoundedBox(_t(iap_c), axes_from(t_dir, [0, 0, 1]), (fw / 2, th / 2, iap_h / 2), 2.2)
    return [
        Primitive(sap, Part.SUPERIOR_ARTICULAR, 2.5),
        Primitive(iap, Part.INFERIOR_ARTICULAR, 3.0),
    ]
