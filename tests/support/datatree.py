"""A manifest tree of one dataset whose data is a JSONL file, for the CLI tests."""

from __future__ import annotations

import json
from pathlib import Path

FIELDS = "fields: {id: text, text: text, label: categorical}\n"


def write_dataset(tree: Path, name: str, rows: list[dict], extra: str = "") -> None:
    """``tree/dataset.yaml`` (dataset ``name``, keyed by ``id``; ``extra``: more of its
    manifest) and its data file ``tree/data/rows.jsonl`` holding ``rows``."""
    (tree / "data").mkdir(parents=True, exist_ok=True)
    with open(tree / "data" / "rows.jsonl", "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    (tree / "dataset.yaml").write_text(f"kind: Dataset\nname: {name}\nkey: id\n{FIELDS}data: data/rows.jsonl\n{extra}")
