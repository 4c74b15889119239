"""The lock (requirements/hlops.lock) is not stale: every dependency pyproject.toml declares
(the test extra included, as the README's commands install it) is pinned there to a version
its range admits, and the lock's header says how to regenerate it. In CI, where the
environment is installed with ``-c requirements/hlops.lock``, every pinned package that is
installed is at its pinned version."""

from __future__ import annotations

import os
import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements" / "hlops.lock"


def pins() -> dict[str, list[tuple[str, Marker | None]]]:
    """name -> [(version, marker)] of the lock (a package may be pinned per Python version)."""
    out: dict[str, list[tuple[str, Marker | None]]] = {}
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        if not line or line[0] in "# ":
            continue
        spec, _, marker = line.partition(";")
        name, sep, version = spec.strip().partition("==")
        assert sep, f"requirements/hlops.lock: {line!r} is not pinned with =="
        out.setdefault(canonicalize_name(name), []).append((version, Marker(marker) if marker.strip() else None))
    return out


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]]


def pinned_here(name: str) -> str | None:
    for version, marker in pins().get(canonicalize_name(name), []):
        if marker is None or marker.evaluate():
            return version
    return None


def test_every_declared_dependency_is_pinned_within_its_range():
    problems = []
    for req in declared():
        if req.marker is not None and not req.marker.evaluate():
            continue
        version = pinned_here(req.name)
        if version is None:
            problems.append(f"{req.name} is declared in pyproject.toml but not pinned in the lock")
        elif not req.specifier.contains(version, prereleases=True):
            problems.append(f"{req.name}=={version} (lock) is outside pyproject.toml's {req.specifier}")
    assert not problems, "regenerate the lock (README: Dependencies and the lock):\n" + "\n".join(problems)


def test_the_lock_says_how_to_regenerate_it():
    head = LOCK.read_text(encoding="utf-8").splitlines()[:3]
    assert any(re.search(r"uv pip compile pyproject\.toml --extra test .*-o requirements/hlops\.lock", line) for line in head), head


@pytest.mark.skipif(os.environ.get("CI") != "true", reason="a developer's venv may be installed without the lock")
def test_ci_installed_exactly_the_locked_versions():
    wrong = []
    for name in pins():
        version = pinned_here(name)
        if version is None:
            continue
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        if installed != version:
            wrong.append(f"{name} {installed} installed, {version} locked")
    assert not wrong, "\n".join(wrong)
