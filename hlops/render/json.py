"""The machine-readable plan: the same document a saved plan is (docs/plan-format.md)."""

from __future__ import annotations

import orjson

from hlops.plan import Plan


def render(plan: Plan) -> str:
    return orjson.dumps(plan.to_json(), option=orjson.OPT_INDENT_2).decode() + "\n"
