"""A small requests client of the Label Studio REST API (open-source 1.23): the only module
of this provider that speaks HTTP. No ``label-studio-sdk``: its pinned dependencies would
enter hlops's own.

Retries follow :mod:`hlops.client`: urllib3's ``Retry`` on the session (429 after
``Retry-After`` for every method; 5xx and lost responses only for reads, since Label Studio
has no idempotency keys: a write whose answer was lost is not sent again blind).

Auth (docs/providers-labelstudio.md): a token that is a JWT (three dot-separated parts) is a
personal access token — a *refresh* token, exchanged at ``POST /api/token/refresh/`` for a
short-lived access token (5 minutes) sent as ``Authorization: Bearer``, and exchanged again
on a 401. Any other token is a legacy token, sent as ``Authorization: Token``; it works only
in an organisation with legacy tokens enabled. The token never appears in an error, a log
line or a ``repr``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import orjson
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from hlops import __version__
from hlops.errors import ApiError, AuthError, NotFoundError, TransportError

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# The data manager's task list accepts any page_size; 1,000 keeps a page's JSON a few MB.
TASK_PAGE_SIZE = 1000
# One import call: Label Studio parses the whole body in one request; 5,000 tasks a call
# measured fastest per task (docs/providers-labelstudio.md).
IMPORT_BATCH = 5000


def is_personal_access_token(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("eyJ")


class LabelStudioClient:
    def __init__(self, base_url: str, token: str, *, timeout: tuple[float, float] = (5.0, 300.0),
                 retries: int = 6, backoff_factor: float = 0.2, pool_size: int = 8):
        if not token:
            raise AuthError(401, "no Label Studio token: set LABEL_STUDIO_API_KEY")
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._pat = is_personal_access_token(token)
        self._access: str | None = None
        self._lock = threading.Lock()
        self.timeout = timeout
        self.calls = 0
        self.writes = 0
        self.bytes_sent = 0
        self._stopped = False
        self.session = requests.Session()
        retry = Retry(
            total=retries, connect=retries, read=retries, status=retries,
            backoff_factor=backoff_factor, status_forcelist=RETRYABLE_STATUSES,
            allowed_methods=frozenset({"GET", "HEAD"}), respect_retry_after_header=True,
            raise_on_status=False,
        )
        adapter = HTTPAdapter(max_retries=retry, pool_connections=pool_size, pool_maxsize=pool_size)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = f"hlops/{__version__}"
        self.session.headers["Content-Type"] = "application/json"

    def __repr__(self) -> str:  # never shows the token
        return f"LabelStudioClient({self.base_url!r})"

    # ------------------------------------------------------------------ transport

    def _auth_header(self, renew: bool = False) -> str:
        if not self._pat:
            return f"Token {self._token}"
        with self._lock:
            if self._access is None or renew:
                r = self._send("POST", "/api/token/refresh/", {"refresh": self._token}, auth=None)
                if r.status_code != 200:
                    raise AuthError(r.status_code, "Label Studio refused the personal access "
                                    "token (POST /api/token/refresh/)")
                self._access = r.json()["access"]
            return f"Bearer {self._access}"

    def _send(self, method: str, path: str, body: Any = None, *, params: Mapping | None = None,
              auth: str | None = None) -> requests.Response:
        headers = {"Authorization": auth} if auth else {}
        if self._stopped:
            from hlops.errors import Interrupted

            raise Interrupted("apply interrupted: no new call is sent")
        data = orjson.dumps(body) if body is not None else None
        self.calls += 1
        if method != "GET":
            self.writes += 1
            self.bytes_sent += len(data or b"")
        try:
            return self.session.request(method, self.base_url + path, data=data, params=params,
                                        headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            raise TransportError(0, f"{method} {path}: Label Studio did not answer "
                                 f"({type(exc).__name__})") from None

    def stop(self) -> None:
        """Send no new call from now on (apply's first Ctrl-C)."""
        self._stopped = True

    def call(self, method: str, path: str, body: Any = None, *,
             params: Mapping | None = None) -> Any:
        r = self._send(method, path, body, params=params, auth=self._auth_header())
        if r.status_code == 401 and self._pat:
            r = self._send(method, path, body, params=params, auth=self._auth_header(renew=True))
        if r.status_code >= 400:
            raise _error(method, path, r)
        if r.status_code == 204 or not r.content:
            return None
        return orjson.loads(r.content)

    # ------------------------------------------------------------------ projects

    def list_projects(self) -> list[dict]:
        out: list[dict] = []
        page = 1
        while True:
            body = self.call("GET", "/api/projects", params={"page": page, "page_size": 100})
            out.extend(body["results"])
            if not body.get("next"):
                return out
            page += 1

    def get_project(self, project_id: int) -> dict:
        return self.call("GET", f"/api/projects/{project_id}")

    def create_project(self, payload: Mapping[str, Any]) -> dict:
        return self.call("POST", "/api/projects", dict(payload))

    def patch_project(self, project_id: int, payload: Mapping[str, Any]) -> dict:
        return self.call("PATCH", f"/api/projects/{project_id}", dict(payload))

    def delete_project(self, project_id: int) -> None:
        self.call("DELETE", f"/api/projects/{project_id}")

    def validate_label_config(self, project_id: int, label_config: str) -> None:
        """Label Studio's own check of a new config against the project's annotations."""
        self.call("POST", f"/api/projects/{project_id}/validate", {"label_config": label_config})

    # ------------------------------------------------------------------ tasks

    def import_tasks(self, project_id: int, tasks: Iterable[Mapping[str, Any]],
                     batch: int = IMPORT_BATCH) -> int:
        """Bulk import (``POST /api/projects/{id}/import``, synchronous on SQLite), ``batch``
        tasks a call; a task may carry ``annotations`` and ``predictions`` inline. Returns
        the number of tasks Label Studio reports created."""
        created = 0
        chunk: list[Mapping[str, Any]] = []
        for task in tasks:
            chunk.append(task)
            if len(chunk) >= batch:
                created += self._import(project_id, chunk)
                chunk = []
        if chunk:
            created += self._import(project_id, chunk)
        return created

    def _import(self, project_id: int, chunk: list) -> int:
        body = self.call("POST", f"/api/projects/{project_id}/import", chunk,
                         params={"commit_to_project": "true", "return_task_ids": "true"})
        return int(body.get("task_count", len(chunk)))

    def iter_tasks(self, project_id: int, page_size: int = TASK_PAGE_SIZE,
                   fields: str = "all") -> Iterator[dict]:
        """Every task of the project with its ``data`` (the data manager's list,
        ``GET /api/tasks?project=&page_size=&fields=``), ``page_size`` tasks a call.
        ``fields=task_only`` leaves annotations and predictions out (cheaper)."""
        page = 1
        while True:
            try:
                body = self.call("GET", "/api/tasks", params={
                    "project": project_id, "page": page, "page_size": page_size, "fields": fields,
                })
            except NotFoundError:  # Label Studio answers 404 for a page past the last
                return
            tasks = body.get("tasks", [])
            yield from tasks
            if len(tasks) < page_size:
                return
            page += 1

    def export_tasks(self, project_id: int) -> list[dict]:
        """All tasks with annotations in one call (``GET /api/projects/{id}/export``); a task
        without annotations is left out unless ``download_all_tasks=true``."""
        return self.call("GET", f"/api/projects/{project_id}/export",
                         params={"exportType": "JSON", "download_all_tasks": "true"})

    def update_task(self, task_id: int, data: Mapping[str, Any], meta: Mapping[str, Any] | None = None) -> dict:
        body: dict[str, Any] = {"data": dict(data)}
        if meta is not None:
            body["meta"] = dict(meta)
        return self.call("PATCH", f"/api/tasks/{task_id}", body)

    def delete_task(self, task_id: int) -> None:
        self.call("DELETE", f"/api/tasks/{task_id}")

    def delete_tasks(self, project_id: int, task_ids: Iterable[int]) -> int:
        """Bulk delete through the data manager's ``delete_tasks`` action, one call."""
        ids = [int(i) for i in task_ids]
        if not ids:
            return 0
        self.call("POST", "/api/dm/actions", {"selectedItems": {"all": False, "included": ids}},
                  params={"id": "delete_tasks", "project": project_id})
        return len(ids)

    # ------------------------------------------------------------------ labels

    def create_annotation(self, task_id: int, result: list[dict], **extra: Any) -> dict:
        return self.call("POST", f"/api/tasks/{task_id}/annotations", {"result": result, **extra})

    def list_annotations(self, task_id: int) -> list[dict]:
        return self.call("GET", f"/api/tasks/{task_id}/annotations")

    def create_prediction(self, task_id: int, result: list[dict], model_version: str = "hlops",
                          score: float | None = None) -> dict:
        body: dict[str, Any] = {"task": task_id, "result": result, "model_version": model_version}
        if score is not None:
            body["score"] = score
        return self.call("POST", "/api/predictions", body)

    def list_predictions(self, task_id: int) -> list[dict]:
        return self.call("GET", "/api/predictions", params={"task": task_id})

    # ------------------------------------------------------------------ people

    def whoami(self) -> dict:
        return self.call("GET", "/api/current-user/whoami")

    def list_memberships(self, organization_id: int) -> list[dict]:
        """The organisation's members (open source: one organisation, no per-project
        membership and no roles — docs/providers-labelstudio.md)."""
        body = self.call("GET", f"/api/organizations/{organization_id}/memberships",
                         params={"page_size": 1000})
        return body["results"] if isinstance(body, dict) else body


def _error(method: str, path: str, r: requests.Response) -> ApiError:
    try:
        body = r.json()
    except ValueError:
        body = {}
    detail = ""
    if isinstance(body, dict):
        detail = " ".join(str(body[k]) for k in ("detail", "validation_errors") if body.get(k))[:500]
    message = f"{method} {path}: Label Studio answered {r.status_code}" + (f": {detail}" if detail else "")
    if r.status_code in (401, 403):
        return AuthError(r.status_code, message)
    if r.status_code == 404:
        return NotFoundError(r.status_code, message)
    return ApiError(r.status_code, message)
