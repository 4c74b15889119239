"""A plan with every kind of change, rendered as text and markdown, against golden files
(HLOPS_UPDATE_GOLDEN=1 rewrites them)."""

from __future__ import annotations

import copy
import os
from pathlib import Path

from test_diff import raw_dataset, raw_project, state

from hlops.diff import Desired, diff
from hlops.plan import DataChange, Plan
from hlops.render import markdown, text

GOLDEN = Path(__file__).parent / "golden"


def check(name: str, body: str) -> None:
    path = GOLDEN / name
    if os.environ.get("HLOPS_UPDATE_GOLDEN"):
        path.write_text(body, encoding="utf-8")
    assert body == path.read_text(encoding="utf-8"), f"{name} differs from its golden file"


def mixed_plan() -> Plan:
    index, actual = state(
        [raw_dataset(), raw_dataset(id=11, name="old-logs", fields=[{"id": 9, "name": "line", "data_type": "text"}], datapoint_count=3)],
        [raw_project()],
    )
    tickets = copy.deepcopy(actual[0].comparable)
    tickets["fields"]["lang"] = {"data_type": "categorical", "description": None}
    project = copy.deepcopy(actual[2].comparable)
    project["guidelines"] = "Be kind.\nQuote the customer.\n"
    project["users"]["a@example.com"] = "owner"
    project["outputs"]["sentiment"]["task_type"] = "multilabel_classification"
    desired = [
        Desired("dataset", "tickets", tickets),
        Desired("dataset", "old-logs", None),
        Desired("dataset", "new", {"name": "new", "description": "Fresh.", "key": None,
                                   "fields": {"t": {"data_type": "text", "description": None}}}),
        Desired("project", "sentiment", project),
    ]
    changes, unmanaged = diff(desired, actual, index)
    data = DataChange(source="data/tickets.jsonl", key="external_id", local_rows=8, remote_rows=5,
                      add=3, change=1, bytes_to_send=900, calls=2, fingerprint="f" * 64)
    changes = [c.model_copy(update={"data": data}) if c.name == "tickets" else c for c in changes]
    return Plan(hlops_version="X.Y.Z", changes=tuple(changes), unmanaged=("dataset/someone-else",))


def test_text_and_markdown_of_every_kind_of_change():
    plan = mixed_plan()
    check("mixed.txt", text.render(plan, color=False))
    check("mixed.md", markdown.render(plan))
