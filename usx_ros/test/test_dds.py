"""configure_dds: points Fast DDS at the shipped profile unless the user chose otherwise."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from usx_ros.dds import PROFILE_VARS, configure_dds, wants_network

NS = {"f": "http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles"}


@pytest.fixture
def clean_env(monkeypatch):
    for var in (
        *PROFILE_VARS,
        "RMW_IMPLEMENTATION",
        "ROS_STATIC_PEERS",
        "ROS_AUTOMATIC_DISCOVERY_RANGE",
    ):
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


def _udp_allowlist(profile) -> list[str]:
    root = ET.parse(profile).getroot()
    for desc in root.iterfind(".//f:transport_descriptor", NS):
        if desc.findtext("f:type", namespaces=NS) == "UDPv4":
            return [a.text for a in desc.iterfind("f:interfaceWhiteList/f:address", NS)]
    raise AssertionError(f"{profile}: no UDPv4 transport")


@pytest.mark.parametrize(
    ("env", "network"),
    [
        ({}, False),
        ({"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}, False),
        ({"ROS_AUTOMATIC_DISCOVERY_RANGE": "OFF"}, False),
        ({"ROS_AUTOMATIC_DISCOVERY_RANGE": "subnet"}, True),
        ({"ROS_STATIC_PEERS": "192.168.1.20"}, True),
        ({"ROS_STATIC_PEERS": "  "}, False),
    ],
)
def test_profile_follows_the_discovery_range(clean_env, env: dict, network: bool) -> None:
    for var, value in env.items():
        clean_env.setenv(var, value)
    assert wants_network() is network
    profile = configure_dds()
    # the default binds UDP to loopback only; the network profile to every interface
    assert _udp_allowlist(profile) == ([] if network else ["127.0.0.1"])
    assert profile.name == ("fastdds_network.xml" if network else "fastdds.xml")
