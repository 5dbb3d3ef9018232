"""``usx measure STAGE``: accuracy of one runtime stage on phantom spines, as JSON.

- ``registration``: CBCT <-> US ICP error under random initial errors
  (``evaluation.registration``);
- ``levels``: X-ray lateral placement and level split (``evaluation.levels``); ``--fit``
  refits the boundary prior table and tip offsets that ``levels`` ships;
- ``gate``: the completion quality gate on clean and degraded inputs, phantom and real
  vertebrae (``evaluation.gate_stress``);
- ``chain``: the end-to-end completion under lab conditions (breathing, lost probe
  contact, a patient shifted after the X-ray) over unseen phantom seeds
  (``evaluation.chain``);
- ``uncertainty``: rank correlation of the per-point uncertainty with the error, and
  interval coverage (``evaluation.uncertainty``).

The bone segmentation's 3D accuracy is part of ``usx bench segmentation``; the whole chain
is ``usx pipeline``; the completion network is ``usx evaluate``.
"""

from __future__ import annotations

import argparse
import json
import sys

from usx_model.evaluation import chain, gate_stress, levels, registration, uncertainty

#: stage name -> module with ``add_arguments(parser)`` and ``run(args) -> dict``.
STAGES = {
    "registration": registration,
    "levels": levels,
    "gate": gate_stress,
    "uncertainty": uncertainty,
    "chain": chain,
}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "measure", help="accuracy of one runtime stage on phantom spines (JSON)"
    )
    sub = p.add_subparsers(dest="stage", required=True, metavar="STAGE")
    for name, module in STAGES.items():
        sp = sub.add_parser(name, help=module.__doc__.splitlines()[0])
        module.add_arguments(sp)
        sp.add_argument("--json", metavar="FILE", help="also write the JSON here")
        sp.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    result = STAGES[args.stage].run(args)
    text = json.dumps(result, indent=1)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    sys.stdout.write(text + "\n")
    return 0
