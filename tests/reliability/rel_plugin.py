"""A pytest plugin for ``scripts/reliability_report.py`` (``-p rel_plugin``): appends, to the
file named by ``HLOPS_RELIABILITY_RECORD``, one JSON line per test outcome, and for the
reference-server test modules this suite builds on (``tests/server``), the server's own
request counts at the end of each module (how many generated requests, how many 5xx).

The suite's own tests record their figures through the ``record`` fixture (conftest.py);
this adds the outcomes (a test that failed before recording still counts) and the figures
of the reused ``tests/server`` modules.
"""

from __future__ import annotations

import json
import os
import time

import pytest

# the reused modules of tests/server, and the item of issue 7 each one serves
SERVER_MODULES = {  # by how the module's name ends (test_schemathesis.py, test_server_schemathesis.py...)
    "schemathesis.py": "R4",
    "protocol.py": "R4",
    "isolation.py": "R5",
    "durability.py": "R8",
}


def server_item(name: str) -> str | None:
    return next((item for end, item in SERVER_MODULES.items() if name.endswith(end)), None)


def _item_of(nodeid: str) -> str | None:
    path = nodeid.split("::", 1)[0]
    name = path.rsplit("/", 1)[-1]
    if "tests/reliability/" in path and name.startswith("test_r") and name[7:8] == "_":
        return "R" + name[6]  # test_r1_crash.py -> R1
    if "tests/server/" in path:
        return server_item(name)
    return None


def _write(entry: dict) -> None:
    out = os.environ.get("HLOPS_RELIABILITY_RECORD")
    if out:
        with open(out, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry, sort_keys=True, default=str) + "\n")


def pytest_runtest_logreport(report):
    item = _item_of(report.nodeid)
    if item is None:
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        _write({"kind": "outcome", "item": item, "test": report.nodeid, "outcome": report.outcome,
                "seconds": round(report.duration, 3), "time": round(time.time(), 3)})


_SERVERS: dict[str, object] = {}  # module -> its module-scoped `server` fixture (alive until the module ends)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    last_of_module = nextitem is None or nextitem.module is not item.module
    module = item.nodeid.split("::", 1)[0]
    if hasattr(item, "funcargs") and item.funcargs.get("server") is not None:
        _SERVERS[module] = item.funcargs["server"]
    server = _SERVERS.get(module)
    name = module.rsplit("/", 1)[-1]
    if last_of_module and server is not None and "tests/server/" in item.nodeid and server_item(name):
        try:
            stats = server.stats()
        except Exception as exc:  # noqa: BLE001 - a report helper must not break the run
            stats = {"error": repr(exc)}
        errors = sum(n for s, n in stats.get("by_status", {}).items() if s.startswith("5"))
        _write({"kind": "server-stats", "item": server_item(name), "test": item.nodeid.split("::", 1)[0],
                "requests": stats.get("total"), "server_errors": errors, "by_status": stats.get("by_status"),
                "time": round(time.time(), 3)})
    yield
