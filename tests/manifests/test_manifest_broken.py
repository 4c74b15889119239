"""The broken-manifest corpus: one directory per kind of mistake under ``broken/``.

Each case directory holds the files of a manifest tree and ``expected.txt``: the exact
output of ``hlops validate .`` run inside it (every ``path:line:col: message`` line, then the
count). The test asserts exit 1 and that output, line for line.

To review message changes: ``HLOPS_UPDATE_EXPECTED=1 pytest tests/manifests`` rewrites the
files; read the diff before committing it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from hlops.cli import main

BROKEN = Path(__file__).parent / "broken"
CASES = sorted(p.name for p in BROKEN.iterdir() if p.is_dir())


def test_corpus_is_large_enough():
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES)
def test_broken_case(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = BROKEN / case
    monkeypatch.chdir(directory)
    monkeypatch.delenv("HLOPS_TEST_SURELY_UNSET", raising=False)
    result = CliRunner().invoke(main, ["validate", "."])
    expected_file = directory / "expected.txt"
    if os.environ.get("HLOPS_UPDATE_EXPECTED"):
        expected_file.write_text(result.output, encoding="utf-8")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    expected = expected_file.read_text(encoding="utf-8")
    assert result.output == expected
    # every problem line is located `path:line:col: ` (or `path: ` for a whole file)
    for line in result.output.splitlines()[:-1]:
        assert line.count(": ") >= 1, line


def test_expected_files_have_no_stale_cases() -> None:
    for directory in BROKEN.iterdir():
        assert (directory / "expected.txt").is_file(), f"{directory.name} has no expected.txt"
