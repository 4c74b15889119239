from __future__ import annotations

import uuid

import pytest

from hlops.providers.humanloop.client import Client

from dp_helpers import FIELDS


@pytest.fixture
def srv(server):
    """The reference server subprocess of this test module (tests/conftest.py)."""
    return server


@pytest.fixture
def client(srv) -> Client:
    return Client(srv.url, srv.api_key)


@pytest.fixture
def make_dataset(client):
    def make(key: str | None = "external_id", fields: dict[str, str] = FIELDS) -> int:
        body = {
            "name": f"dp-{uuid.uuid4().hex[:12]}",
            "key": key,
            "fields": [{"name": k, "data_type": v} for k, v in fields.items()],
        }
        return client.request("POST", "/datasets", body=body, create=True)["id"]

    return make
