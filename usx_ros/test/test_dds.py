"""configure_dds: points Fast DDS at the shipped profile unless the user chose otherwise."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from usx_ros.dds import PROFILE_VARS, configure_dds


@pytest.fixture
def clean_env(monkeypatch):
    for var in (*PROFILE_VARS, "RMW_IMPLEMENTATION"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_sets_profile_with_a_large_shm_segment(clean_env) -> None:
    import os

    profile = configure_dds()
    assert profile is not None and profile.is_file()
    assert all(os.environ[v] == str(profile) for v in PROFILE_VARS)
    ns = {"f": "http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles"}
    seg = ET.parse(profile).getroot().find(".//f:transport_descriptor/f:segment_size", ns)
    # Several 512x512 mono8 frames (262 KB each) must fit in the writer's segment.
    assert int(seg.text) >= 16 * 512 * 512


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("FASTRTPS_DEFAULT_PROFILES_FILE", "/mine.xml"),
        ("FASTDDS_DEFAULT_PROFILES_FILE", "/mine.xml"),
        ("RMW_IMPLEMENTATION", "rmw_cyclonedds_cpp"),
    ],
)
def test_leaves_user_choice_alone(clean_env, var: str, value: str) -> None:
    import os

    clean_env.setenv(var, value)
    assert configure_dds() is None
    assert os.environ[var] == value
    assert not any(os.environ.get(v) for v in PROFILE_VARS if v != var)
