"""schemathesis over the server's own /openapi.json: generated requests, valid and invalid,
for every operation; no 5xx, and no answer that breaks the documented schema, status
codes, content type or headers; invalid requests are rejected with a 4xx.

schemathesis's lazy pytest integration (``from_fixture``) does not run under this pytest,
so the operations are listed from the app itself at collection time and each one is driven
through ``APIOperation.as_strategy`` with a bounded number of examples.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, assume, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from srv_helpers import create_dataset, create_project, make_rows

from hlops.server.app import create_app
from hlops.server.config import Settings
from hlops.server.sqlite_store import SqliteStore

MAX_EXAMPLES = 20
# HTTP framing headers: uvicorn answers a garbage value with a plain-text 400 before the
# request reaches the application, so no documented answer can exist for them.
FRAMING_HEADERS = frozenset({"transfer-encoding", "content-length", "connection", "host", "te", "upgrade"})
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def _operations() -> list[str]:
    store = SqliteStore(":memory:")
    try:
        spec = create_app(store, Settings()).openapi()
    finally:
        store.close()
    return [f"{method.upper()} {path}" for path, item in spec["paths"].items() for method in item]


OPERATIONS = _operations()


@pytest.fixture(scope="module")
def api_schema(server):
    # Something to find: generated ids are mostly small integers, so low ids exist.
    for _ in range(3):
        ds = create_dataset(server, key="external_id", rows=make_rows(20))
        create_project(server, ds, review=False)
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    # A schema-violating request may also be refused as too large (413: over 10,000 items).
    rejection = schema.config.checks.negative_data_rejection
    rejection.expected_statuses = [*rejection.expected_statuses, "413"]
    return schema


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
@pytest.mark.parametrize("operation", OPERATIONS)
def test_operation(api_schema, server, operation, mode):
    method, path = operation.split(" ", 1)
    op = api_schema[path][method]
    checks = CHECKS + ([negative_data_rejection] if mode is GenerationMode.NEGATIVE else [])
    auth = server.headers()

    @given(case=op.as_strategy(generation_mode=mode))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
              derandomize=True, database=None)
    def run(case):
        assume(not FRAMING_HEADERS & {name.lower() for name in case.headers or {}})
        response = case.call(headers=auth, timeout=30)
        assert b"Traceback" not in response.content  # raw: an index answered is bytes
        case.validate_response(response, checks=checks, headers=auth)

    try:
        run()
    except Unsatisfiable:  # nothing to make invalid (e.g. GET /health has no parameters)
        assert mode is GenerationMode.NEGATIVE


def test_every_operation_is_covered():
    assert len(OPERATIONS) >= 15 and "PUT /datasets/{dataset_id}" in OPERATIONS
