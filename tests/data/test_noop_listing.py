"""A no-op plan over many datasets costs the list pages only: `GET /datasets?include=digest`
carries each dataset's root (digest at one bucket), the last-applied record holds the root
of what was applied, and the data check compares the two without a call of its own
(counted by the server's /_test/stats, on both stores). Anything else still finds its change."""

from __future__ import annotations

import pytest

import hlops.api as hl
from hlops.data import cache
from hlops.providers.humanloop import remote
from hlops.providers.humanloop.client import Client
from hlops.providers.humanloop.data import applied

from dp_helpers import FIELDS, write_jsonl
from support.postgres import BOTH

STORES = BOTH
KEY = "external_id"
N = 120  # datasets, and as many projects reading them: one list page each (1,000 a page)
ROWS = 8


@pytest.fixture(autouse=True)
def not_racy(monkeypatch):
    monkeypatch.setattr(cache, "RACY_SECONDS", 0.0)  # files written by a test are brand new


def rows_of(i: int) -> list[dict]:
    return [{"external_id": f"{i}-{j}", "text": f"message {j} of set {i}",
             "sentiment": ("positive", "negative", "neutral")[j % 3]} for j in range(ROWS)]


def many(root, count: int, prefix: str) -> None:
    """``count`` datasets with a data file each and a project reading each."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    docs = []
    fields = "".join(f"  {k}: {v}\n" for k, v in FIELDS.items())
    for i in range(count):
        ds = f"{prefix}-ds-{i:03d}"
        write_jsonl(root / "data" / f"{ds}.jsonl", rows_of(i))
        docs.append(f"kind: Dataset\nname: {ds}\ndescription: set {i}\nkey: {KEY}\nfields:\n{fields}"
                    f"data: data/{ds}.jsonl\n")
        docs.append(f"kind: Project\nname: {prefix}-project-{i:03d}\ninputs:\n  text: {ds}.text\n"
                    f"outputs:\n  sentiment:\n    task_type: classification\n    from: {ds}.sentiment\n")
    (root / "resources.yaml").write_text("---\n".join(docs))


def calls(srv) -> dict:
    stats = srv.stats()
    return {"total": stats["total"], "by_path": {p: n for p, n in stats["by_path"].items() if n}}


def plan(repo, conn):
    return hl.plan(hl.load(repo, check_data=False), conn)


@pytest.fixture(scope="module")
def applied_repo(server, tmp_path_factory):
    """N datasets + N projects applied by hlops (each dataset noted its record)."""
    repo = tmp_path_factory.mktemp("many")
    many(repo, N, "nl")
    conn = hl.connect(base_url=server.url, api_key=server.api_key)
    result = hl.apply(plan(repo, conn), conn)
    assert result.ok
    return repo, conn


def test_a_noop_plan_makes_only_the_list_calls(server, applied_repo, tmp_path, monkeypatch):
    repo, conn = applied_repo
    monkeypatch.setenv("HLOPS_HOME", str(tmp_path / "home"))  # no summary cache: a fresh clone
    server.reset_stats()
    result = plan(repo, conn)
    assert not result.plan.has_changes
    data = [c.data for c in result.plan.changes if c.data is not None]
    assert len(data) == N and {d.decided_by for d in data} == {"last_applied"}
    assert all(d.remote_rows_read == 0 and d.unchanged == ROWS for d in data)
    assert calls(server) == {"total": 2, "by_path": {"GET /datasets": 1, "GET /projects": 1}}
    # and the apply of that plan writes nothing (its staleness check reads each digest at 1)
    server.reset_stats()
    assert hl.apply(result, conn).writes == 0
    assert server.stats()["writes"] == 0


def _one_dataset(server, tmp_path, name):
    repo = tmp_path / "repo"
    many(repo, 1, name)
    conn = hl.connect(base_url=server.url, api_key=server.api_key)
    assert hl.apply(plan(repo, conn), conn).ok
    client = Client(server.url, server.api_key)
    (raw,) = client.request("GET", "/datasets", params={"name": f"{name}-ds-000"})["items"]
    return repo, conn, client, raw


def test_a_datapoint_edited_through_the_api_is_found(server, tmp_path):
    repo, conn, client, raw = _one_dataset(server, tmp_path, "edit")
    item = next(iter(client.paginate(f"/datasets/{raw['id']}/datapoints", limit=1)))
    data = {**item["data"], "text": "changed in the web app"}
    client.request("PATCH", f"/datasets/{raw['id']}/datapoints", body={"data": [{"id": item["id"], "data": data}]})
    result = plan(repo, conn)
    (change,) = [c for c in result.plan.changes if c.data is not None]
    assert change.data.decided_by == "digest" and change.data.change == 1


def test_a_metadata_change_keeps_the_data_check_free(server, tmp_path):
    """A description changed through the API bumps the version, not the root: the plan shows
    the attribute, and the data is still decided by the record without a call."""
    repo, conn, client, raw = _one_dataset(server, tmp_path, "meta")
    client.request("PATCH", f"/datasets/{raw['id']}", body={"description": "changed elsewhere"})
    server.reset_stats()
    result = plan(repo, conn)
    (change,) = [c for c in result.plan.changes if c.data is not None]
    assert change.has_changes and change.data.decided_by == "last_applied" and not change.data.has_changes
    assert change.data.remote_version == raw["version"] + 1
    assert server.stats()["total"] == 2
    assert hl.apply(result, conn).ok  # the description put back; the data untouched
    assert not plan(repo, conn).plan.has_changes


def test_an_old_record_without_root_reads_the_digest(server, tmp_path):
    repo, conn, client, raw = _one_dataset(server, tmp_path, "old")
    rec = dict(raw["last_applied"])
    assert applied.Record.from_json(rec).root
    del rec["root"]  # as an apply before the root existed noted it
    client.request("PATCH", f"/datasets/{raw['id']}", body={"last_applied": rec})
    server.reset_stats()
    result = plan(repo, conn)
    (change,) = [c for c in result.plan.changes if c.data is not None]
    assert change.data.decided_by == "last_applied" and not result.plan.has_changes
    assert calls(server)["by_path"] == {"GET /datasets": 1, "GET /projects": 1,
                                        "GET /datasets/{dataset_id}/digest": 1}


def test_a_server_without_include_still_works(server, tmp_path, monkeypatch):
    """A server that ignores `include` (no `digest` in the items): one digest read per
    dataset, as before; one that refuses it (422 at query.include) is asked without it."""
    repo, conn, client, raw = _one_dataset(server, tmp_path, "noinc")
    real = Client.paginate

    def ignoring(self, path, limit=1000, **params):
        params.pop("include", None)
        return real(self, path, limit, **params)

    monkeypatch.setattr(Client, "paginate", ignoring)
    server.reset_stats()
    result = plan(repo, conn)
    assert not result.plan.has_changes
    assert calls(server)["by_path"]["GET /datasets/{dataset_id}/digest"] == 1
    monkeypatch.setattr(Client, "paginate", real)

    def refusing(self, path, limit=1000, **params):
        if params.get("include"):
            params["include"] = "not-known"  # what an older hlops server answers: 422
        return real(self, path, limit, **params)

    monkeypatch.setattr(Client, "paginate", refusing)
    state = remote.read(client)
    assert all("digest" not in raw for raw in state.index.datasets.values())
