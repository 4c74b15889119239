from __future__ import annotations

import os
import uuid
from types import SimpleNamespace

import pytest

from hlops.client import Client

from dp_helpers import FIELDS


@pytest.fixture
def srv(request):
    url = os.environ.get("DP_STUB_URL")  # development only: a throwaway stub server
    if url:
        return SimpleNamespace(url=url, api_key="k")
    try:
        return request.getfixturevalue("server")
    except pytest.FixtureLookupError:  # the server's test support is not there yet
        pytest.skip("the reference server's `server` fixture is not available")


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
