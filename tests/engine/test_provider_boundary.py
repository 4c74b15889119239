"""The provider boundary (docs/providers.md), held by the import graph and by the registry.

- no engine module (anything under hlops/ but hlops/providers/) imports a provider package:
  the engine reaches a provider only through hlops.provider's registry, by name;
- a provider imports, from the engine side, only the interface (hlops.provider) and the
  toolkit it builds on (errors, the plan's value types, canonical rows, the local data
  pass, data files, manifest models) — never the orchestration (planner, diff, apply, api,
  cli, pull, render, manifest loading) — and never another provider;
- every registered provider implements the whole interface and declares known capabilities;
- a command the configured provider does not support fails at once, saying so.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from click.testing import CliRunner

from hlops import provider as iface
from hlops.errors import Unsupported

HLOPS = Path(iface.__file__).resolve().parent
PROVIDERS_DIR = HLOPS / "providers"

# What a provider may import from the engine side (prefixes of dotted module names).
PROVIDER_MAY_IMPORT = (
    "hlops.provider", "hlops.errors", "hlops.plan", "hlops.canonical", "hlops.data",
    "hlops.datafile", "hlops.datareaders", "hlops.labelfiles", "hlops.models",
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(HLOPS.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, dotted module) of every import in ``path``, wherever it is (functions too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            out.append((node.lineno, module))
            # `from hlops import providers` / `from hlops.providers import humanloop`
            out += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return out


def _is(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _engine_files() -> list[Path]:
    return [p for p in HLOPS.rglob("*.py") if not p.is_relative_to(PROVIDERS_DIR)]


def test_no_engine_module_imports_a_provider() -> None:
    files = _engine_files()
    assert len(files) > 40  # the walk found the engine
    bad = [
        f"{p.relative_to(HLOPS.parent)}:{line}: imports {module}"
        for p in files
        for line, module in _imports(p)
        if _is(module, "hlops.providers")
    ]
    assert not bad, "the engine reaches providers only through hlops.provider's registry:\n" + "\n".join(bad)


@pytest.mark.parametrize("name", sorted(iface.PROVIDERS))
def test_a_provider_imports_only_the_interface_and_the_toolkit(name: str) -> None:
    package = PROVIDERS_DIR / name
    files = list(package.rglob("*.py"))
    assert files, f"hlops/providers/{name}/ is empty"
    own = f"hlops.providers.{name}"
    bad = []
    for p in files:
        for line, module in _imports(p):
            if not _is(module, "hlops") or _is(module, own):
                continue
            if module == "hlops" or module == "hlops.__version__":
                continue
            if not any(_is(module, allowed) for allowed in PROVIDER_MAY_IMPORT):
                bad.append(f"{p.relative_to(HLOPS.parent)}:{line}: imports {module}")
    assert not bad, f"provider {name} reaches past the interface:\n" + "\n".join(bad)


def test_the_boundary_check_sees_a_violation(tmp_path: Path) -> None:
    """The import walk is not blind: every form of importing a provider is seen."""
    probe = HLOPS / "_probe_for_boundary_test.py"
    probe.write_text(
        "def f():\n    from hlops.providers.humanloop.client import Client\n"
        "from hlops import providers\nimport hlops.providers.humanloop\n", encoding="utf-8",
    )
    try:
        seen = [m for _, m in _imports(probe) if _is(m, "hlops.providers")]
    finally:
        probe.unlink()
    assert "hlops.providers.humanloop.client" in seen
    assert "hlops.providers" in seen
    assert "hlops.providers.humanloop" in seen


@pytest.mark.parametrize("name", sorted(iface.PROVIDERS))
def test_every_registered_provider_implements_the_interface(name: str) -> None:
    cls = iface.provider_class(name)
    assert issubclass(cls, iface.Provider) and cls.name == name
    assert not getattr(cls, "__abstractmethods__", None), f"{name} leaves abstract: {cls.__abstractmethods__}"
    assert set(cls.capabilities) <= set(iface.CAPABILITIES)
    assert set(cls.kinds) == {"dataset", "project"}
    for kind in cls.kinds.values():
        for attr in ("name", "manifest_kind", "level", "desired", "replace_reason", "loss", "depends_on"):
            assert hasattr(kind, attr), f"{name}: kind {kind!r} has no {attr}"
    for variable in cls.variables:
        assert variable.name.isupper()


def test_an_unknown_provider_name_is_refused_by_the_registry() -> None:
    with pytest.raises(Exception, match="unknown provider 'nope' \\(known: humanloop"):
        iface.provider_class("nope")


# ------------------------------------------------------------ unsupported commands


class _PlanOnly(iface.Provider):
    """A provider that supports plan/apply and nothing else: how the CLI words the rest.
    It is never connected to anything (every command below stops before reading)."""

    name = "plan-only"
    kinds = iface.provider_class("humanloop").kinds
    capabilities = frozenset({"plan"})
    unsupported = {"pull": "this backend keeps no history of edits; use `hlops plan` to see them"}

    @classmethod
    def connect(cls, **kwargs):  # noqa: ANN003, ANN206
        return cls()

    target = "plan-only://"
    calls = None

    def stop(self) -> None: ...
    def read(self, renames=None): raise AssertionError("never read")  # noqa: ANN001, ANN201
    def create(self, *a): raise AssertionError  # noqa: ANN002, ANN201
    def update(self, *a): raise AssertionError  # noqa: ANN002, ANN201
    def delete(self, *a): raise AssertionError  # noqa: ANN002, ANN201
    def plan_data(self, *a, **k): raise AssertionError  # noqa: ANN002, ANN003, ANN201
    def apply_data(self, *a, **k): raise AssertionError  # noqa: ANN002, ANN003, ANN201


@pytest.fixture
def plan_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setitem(iface.PROVIDERS, "plan-only", f"{__name__}:_PlanOnly")
    monkeypatch.setenv("HLOPS_PROVIDER", "plan-only")
    (tmp_path / "hlops.yaml").write_text("provider: plan-only\n", encoding="utf-8")
    (tmp_path / "ds.yaml").write_text(
        "kind: Dataset\nname: d\nfields:\n  text: text\n", encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["pull", "."], "hlops pull is not supported by the plan-only provider: this backend keeps no history"),
        (["import", "dataset/d", "--to", "."], "hlops import is not supported by the plan-only provider"),
        (["drift", "."], "hlops drift is not supported by the plan-only provider"),
        (["export", "p", "-o", "out.jsonl"], "hlops export is not supported by the plan-only provider"),
        (["predict", "p", "--text", "hi"], "hlops predict is not supported by the plan-only provider"),
        (["annotations", "summary", "p"], "hlops annotations import / summary is not supported"),
        (["plan", ".", "--local"], "--local (the embedded reference server) is not supported by the plan-only provider"),
    ],
)
def test_an_unsupported_command_says_so_before_any_work(plan_only: Path, args: list[str], says: str) -> None:
    from hlops.cli import main

    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 1, result.output
    assert says in result.output
    assert "Traceback" not in result.output


def test_require_raises_unsupported_with_the_reason() -> None:
    with pytest.raises(Unsupported, match="hlops pull is not supported by the plan-only provider: this backend"):
        _PlanOnly.require("pull")
    _PlanOnly.require("plan")
