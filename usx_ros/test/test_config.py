"""config/phantom.yaml names only declared parameters and restates their code defaults."""

from __future__ import annotations

import importlib

import pytest
import yaml

from usx_ros.graph import config_path, graph
from usx_ros.params import specs

pytestmark = pytest.mark.ros

#: (node, parameter) whose shipped value is meant to differ from the code default.
DEPLOYMENT_SPECIFIC = {
    # the demo's spine; a phantom alone generates spine 0
    ("phantom", "spine_seed"),
    # a link between two other nodes of this graph; a phantom alone has none to wait for
    ("phantom", "wait_for_links"),
    # the graph shows the no-CBCT path; the phantom alone simulates a registered view
    ("phantom", "xray_depth_registered"),
}


def _defaults(module_name: str) -> dict:
    return {s.name: s.default for s in specs(importlib.import_module(module_name).PARAMS)}


def _same(a, b) -> bool:
    return list(a) == list(b) if isinstance(a, list | tuple) else a == b and type(a) is type(b)


def test_shipped_yaml_matches_the_schemas():
    shipped = yaml.safe_load(config_path("phantom").read_text())
    nodes = {d.name: _defaults(d.module) for d in graph("phantom")}
    problems = []
    for section, body in shipped.items():
        targets = list(nodes) if section == "/**" else [section]
        for key, value in body["ros__parameters"].items():
            for node in targets:
                declared = nodes.get(node)
                if declared is None:
                    problems.append(f"{section}: no node {node!r} in the graph")
                elif key not in declared:
                    problems.append(f"{node}.{key}: not a declared parameter")
                elif (node, key) not in DEPLOYMENT_SPECIFIC and not _same(value, declared[key]):
                    problems.append(f"{node}.{key}: {value!r} in YAML, {declared[key]!r} in code")
    assert not problems, "config/phantom.yaml drifted from the schemas:\n" + "\n".join(problems)


def test_allow_list_entries_are_still_in_the_yaml():
    shipped = yaml.safe_load(config_path("phantom").read_text())
    for node, key in DEPLOYMENT_SPECIFIC:
        assert key in shipped[node]["ros__parameters"], f"{node}.{key}: drop it from the list"
