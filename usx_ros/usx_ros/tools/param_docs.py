"""``usx params``: docs/parameters.md, generated from the nodes' parameter schemas.

One section per node: its parameters (name, type, default, range or choices, read-only,
description) from the node module's ``PARAMS`` schema, and its topics and services
(default names, QoS) from its ``ENDPOINTS``. ``usx_ros/test/test_param_docs.py`` fails
when the checked-in file differs from what this prints; regenerate it with
``.venv/bin/usx params --write``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

# usx_ros.graph and usx_ros.params (rclpy) are imported when used: `usx --help` must work
# without a ROS environment.

#: The checked-in file.
DOCS = Path(__file__).resolve().parents[3] / "docs" / "parameters.md"
#: Nodes documented besides the phantom graph's: (node name, module).
TOOLS = (("bag_record", "usx_ros.tools.bag_record"), ("bag_replay", "usx_ros.tools.bag_replay"))
REGENERATE = ".venv/bin/usx params --write"


def nodes() -> list[tuple[str, str]]:
    """(node name, module) of every documented node."""
    from usx_ros.graph import graph

    return [(d.name, d.module) for d in graph("phantom")] + list(TOOLS)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _value(value) -> str:
    return f"`{json.dumps(value)}`"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _range(spec) -> str:
    if spec.choices:
        return ", ".join(f"`{c}`" for c in spec.choices)
    lo, hi = spec.min_value, spec.max_value
    if lo is not None and hi is not None:
        return f"[{_num(lo)}, {_num(hi)}]"
    if lo is not None:
        return f">= {_num(lo)}"
    if hi is not None:
        return f"<= {_num(hi)}"
    return ""


def _qos_legend() -> list[str]:
    from usx_ros import qos

    lines = ["| QoS | reliability | durability | depth |", "|---|---|---|---|"]
    for name in ("SENSOR_QOS", "STATE_QOS", "RESULT_QOS"):
        q = getattr(qos, name)
        lines.append(
            f"| `{name}` | {q.reliability.name.lower()} | {q.durability.name.lower()} | {q.depth} |"
        )
    return lines


def render() -> str:
    """The whole of docs/parameters.md."""
    from usx_ros.graph import graph
    from usx_ros.params import specs

    out = [
        "# Node parameters, topics and services",
        "",
        f"Generated from the nodes' schemas by `{REGENERATE}`; do not edit by hand.",
        "Parameters are set in `config/phantom.yaml` (or `-p name:=value`); topics and "
        "services are not parameters: rename them with ROS remapping, e.g. "
        "`--ros-args -r /us/image:=/my/image` or `remappings=[...]` in a launch file. "
        "Read-only parameters are fixed at start-up; the others can be changed with "
        "`ros2 param set`.",
        "",
        "Nodes marked *lifecycle node* are managed nodes (`usx_ros.nodes.managed`): "
        "configure validates the parameters, loads weights and calibration and creates "
        "the topics and services below; activate starts processing. Besides the "
        "parameters listed, each has `autostart` (bool, default `true`, read-only): "
        "configure and activate at start-up; `usx launch` and `launch/phantom.launch.py` "
        "set it `false` and bring the nodes up in graph order. Their lifecycle services "
        "(`~/change_state`, `~/get_state`, ...) and `~/transition_event` are the standard "
        "ones.",
        "",
        *_qos_legend(),
    ]
    managed = {d.name for d in graph("phantom") if d.managed}
    for name, module_name in nodes():
        module = importlib.import_module(module_name)
        summary = (module.__doc__ or "").strip().splitlines()[0].split(": ", 1)[-1]
        kind = " *Lifecycle node.*" if name in managed else ""
        out += ["", f"## {name}", "", f"`{module_name}`: {summary}{kind}", ""]
        out += [
            "| parameter | type | default | range | read-only | description |",
            "|---|---|---|---|---|---|",
        ]
        for s in specs(module.PARAMS):
            ro = "yes" if s.read_only else ""
            out.append(
                f"| `{s.name}` | {s.type_name} | {_value(s.default)} | {_range(s)} | {ro} "
                f"| {_cell(s.description)} |"
            )
        out += ["", "| | topic / service | type | QoS | when |", "|---|---|---|---|---|"]
        for e in module.ENDPOINTS:
            qos = f"`{e.qos}`" if e.qos else ""
            out.append(f"| {e.kind} | `{e.name}` | `{e.type}` | {qos} | {_cell(e.note)} |")
    return "\n".join(out) + "\n"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "params",
        help="print (or --write) docs/parameters.md from the nodes' parameter schemas",
        description=__doc__,
    )
    p.add_argument("--write", action="store_true", help=f"write {DOCS.name} instead of printing")
    p.add_argument("--output", default=str(DOCS), help="file for --write (default: docs/)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    text = render()
    if args.write:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m usx_ros.tools.param_docs [--write]``."""
    parser = argparse.ArgumentParser(prog="param_docs", description=__doc__)
    sub = parser.add_subparsers(required=True)
    register(sub)
    return _run(parser.parse_args(["params", *(sys.argv[1:] if argv is None else argv)]))


if __name__ == "__main__":
    sys.exit(main())
