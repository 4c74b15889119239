"""The Label Studio provider's pure parts: the record in label_config, validation."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hlops.errors import ManifestError
from hlops.manifest import load
from hlops.providers.labelstudio import label_config as lc
from hlops.providers.labelstudio.provider import config_xml, join_config, split_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "projects"

SHAPE = {
    "inputs": {"text": {"data_type": "text", "description": None, "display_only": False,
                        "from": ["tickets.text"]}},
    "outputs": {"s": {"task_type": "classification", "description": None, "from": [],
                      "labels": {"a": None, "b": "the b one -- really"}, "input": None}},
}


def test_the_record_round_trips_and_the_semantic_compare_ignores_it():
    xml = config_xml(SHAPE)
    record = {"project": SHAPE, "dataset": {"name": "tickets", "note": "a -- b -->"}}
    config = join_config(xml, record)
    comment = config[len(xml):]
    assert comment.count("--") == 2  # only the comment's own delimiters: XML forbids others
    back_xml, back = split_config(config)
    assert back == record and back_xml == xml
    assert not lc.compare(xml, config)  # a comment is no semantic change
    assert '<Text name="text" value="$text"' in xml and 'hint="the b one -- really"' in xml


def test_a_project_reading_two_datasets_is_refused_at_its_line(tmp_path):
    work = tmp_path / "two"
    shutil.copytree(EXAMPLES / "two-datasets", work)
    settings = work / "hlops.yaml"
    settings.write_text((settings.read_text() if settings.exists() else "") + "provider: labelstudio\n")
    with pytest.raises(ManifestError) as info:
        load(work)
    messages = [str(p) for p in info.value.problems]
    assert any("datasets" in m and "one dataset" in m and ":" in m.split(" ")[0] for m in messages), messages
