"""`provider:` in hlops.yaml chooses the backend; an unknown one is a located error that
stops every command before anything is read or sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from hlops.errors import ManifestError
from hlops.manifest import load
from support.cli import run_hlops

DATASET = "kind: Dataset\nname: d\nfields:\n  text: text\n"


def _tree(tmp_path: Path, settings: str) -> Path:
    (tmp_path / "hlops.yaml").write_text(settings, encoding="utf-8")
    (tmp_path / "ds.yaml").write_text(DATASET, encoding="utf-8")
    return tmp_path


def test_the_default_provider_is_humanloop(tmp_path: Path) -> None:
    assert load(_tree(tmp_path, "owns:\n  prefixes: [d]\n")).settings.provider == "humanloop"
    assert load(_tree(tmp_path, "provider: humanloop\n")).settings.provider == "humanloop"


def test_an_unknown_provider_is_a_located_validation_error(tmp_path: Path) -> None:
    tree = _tree(tmp_path, "# settings\nowns:\n  prefixes: [d]\nprovider: humanlop\n")
    with pytest.raises(ManifestError) as caught:
        load(tree)
    [problem] = caught.value.problems
    assert (Path(problem.path).name, problem.line, problem.col) == ("hlops.yaml", 4, 11)
    assert "unknown provider 'humanlop' — did you mean 'humanloop'? (known: humanloop" in problem.message


@pytest.mark.parametrize("command", [["validate"], ["plan"]])
def test_the_cli_refuses_an_unknown_provider_before_any_call(tmp_path: Path, command: list[str]) -> None:
    tree = _tree(tmp_path, "provider: label-studio-typo\n")
    # a closed port: a command that tried to connect would report the connection instead
    result = run_hlops(*command, str(tree), env={"HLOPS_BASE_URL": "http://127.0.0.1:9", "HLOPS_API_KEY": "k"})
    assert result.code == 1, result
    assert "hlops.yaml:1:11: unknown provider 'label-studio-typo'" in result.err + result.out, result
    assert "cannot reach" not in result.err + result.out
    assert "Traceback" not in result.err
