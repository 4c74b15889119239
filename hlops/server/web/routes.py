"""The annotation web app's routes (under ``/app``) and the token call of the API.

Pages are server-rendered (``templates/``) with a little script (``static/app.js``) for
keys and span selection; every form also works as a plain HTML form. An annotation goes
through :meth:`hlops.server.store.Store.annotate` -- the call behind ``POST
/projects/{id}/annotations`` -- and then kicks the trainer the same way an API write does.
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import Annotated, Any
from urllib.parse import quote

import orjson
from fastapi import Depends, FastAPI, Path, Query, Request
from pydantic import Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from hlops.server import schemas as S
from hlops.server.app import ProjectId, org_id
from hlops.server.store import Invalid, NotFound, Page, StoreError
from hlops.server.web import auth, progress
from hlops.server.web.auth import Denied
from hlops.server.web.queue import Queue, suggestion
from hlops.server.web.render import HERE, SECURITY_HEADERS, page
from hlops.server.web.sqlite_web import SqliteWeb
from hlops.server.web.store import Candidate, Session

STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
STATIC = {p.name: p for p in (HERE / "static").iterdir() if p.suffix in STATIC_TYPES}
LABELS_SECONDS = 30.0
DatapointQuery = Annotated[int | None, Query(ge=1, le=S.MAX_ID, description="Open this datapoint.")]


class TokenIn(S._In):
    email: str = Field(min_length=3, max_length=320, pattern=S.NO_NUL, description="An e-mail listed in a project's users.")


class TokenProject(S._Out):
    id: int
    name: str
    role: str


class TokenOut(S._Out):
    email: str
    token: str = Field(description="Shown once; the server keeps only its SHA-256. Signs in at /app/sign-in.")
    projects: list[TokenProject]


def install_web(app: FastAPI, store: Any, trainer: Any) -> SqliteWeb:
    web = SqliteWeb(store)
    queue = Queue(web, trainer)
    app.state.web = web
    _token_api(app, store, web)
    _pages(app, store, web, queue, trainer)

    @app.exception_handler(Denied)
    async def denied(request: Request, exc: Denied) -> Response:
        if exc.status == 401 and request.method == "GET":
            return RedirectResponse("/app/sign-in?next=" + quote(request.url.path), status_code=303)
        return page("message.html", status=exc.status, title="Not allowed" if exc.status != 404 else "Not found",
                    message=exc.message, session=None)

    return web


# ---------------------------------------------------------------------- the API call


def _token_api(app: FastAPI, store: Any, web: SqliteWeb) -> None:
    @app.post("/users/tokens", status_code=201, response_model=TokenOut, tags=["users"])
    def issue_token(body: TokenIn, org: int = Depends(org_id)) -> Response:
        """Issue a personal token for an e-mail listed in a project's users [ext]: it signs
        in to the annotation web app (``/app``). A new token replaces the e-mail's earlier
        one. Not replayed by Idempotency-Key (the token is never stored)."""
        listed = []
        after = None
        while True:
            found = store.list_projects(org, None, Page(after, 1000))
            for project in found["items"]:
                role = auth.role_in(project, body.email)
                if role is not None:
                    listed.append({"id": project["id"], "name": project["name"], "role": role})
            after = found["next_cursor"]
            if after is None:
                break
        if not listed:
            raise NotFound("no project of this organisation lists that e-mail in its users")
        token = web.issue_token(org, body.email)
        answer = {"email": body.email.lower(), "token": token, "projects": listed}
        return Response(orjson.dumps(answer), status_code=201, media_type="application/json",
                        headers={"Cache-Control": "no-store"})


# ---------------------------------------------------------------------- pages


def _pages(app: FastAPI, store: Any, web: SqliteWeb, queue: Queue, trainer: Any) -> None:
    labels_cache = SourceLabels(web)
    def session_of(request: Request) -> Session:
        return auth.current(request, web)

    @app.get("/app", include_in_schema=False)
    def home() -> Response:
        return RedirectResponse("/app/projects", status_code=303)

    @app.get("/app/static/{name}", include_in_schema=False)
    def static(name: Annotated[str, Path(max_length=100)]) -> Response:
        found = STATIC.get(name)
        if found is None:
            raise Denied(404, "no such file")
        return Response(found.read_bytes(), media_type=STATIC_TYPES[found.suffix],
                        headers={**SECURITY_HEADERS, "Cache-Control": "max-age=300"})

    @app.get("/app/sign-in", include_in_schema=False)
    def sign_in_page(request: Request, next: Annotated[str | None, Query(max_length=500)] = None) -> Response:
        csrf = secrets.token_urlsafe(32)
        response = page("sign_in.html", csrf=csrf, next=_safe_next(next), error=None, session=None)
        response.set_cookie(auth.SIGNIN_COOKIE, csrf, max_age=3600, **auth.cookie_options(request))
        return response

    @app.post("/app/sign-in", include_in_schema=False)
    async def sign_in(request: Request) -> Response:
        fields = await auth.form(request)
        auth.check_csrf(fields, request.cookies.get(auth.SIGNIN_COOKIE) or secrets.token_urlsafe(8))
        token = (fields.get("token") or [""])[0].strip()
        target = _safe_next((fields.get("next") or [None])[0])
        identity = await run_in_threadpool(web.token_identity, token) if token else None
        if identity is None:
            csrf = secrets.token_urlsafe(32)
            response = page("sign_in.html", status=401, csrf=csrf, next=target, session=None,
                            error="That token is not valid (it may have been replaced by a newer one).")
            response.set_cookie(auth.SIGNIN_COOKIE, csrf, max_age=3600, **auth.cookie_options(request))
            return response
        session_id, _csrf = await run_in_threadpool(web.create_session, identity, auth.SESSION_SECONDS)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(auth.COOKIE, session_id, max_age=auth.SESSION_SECONDS, **auth.cookie_options(request))
        response.delete_cookie(auth.SIGNIN_COOKIE, path="/app")
        return response

    @app.post("/app/sign-out", include_in_schema=False)
    async def sign_out(request: Request) -> Response:
        session = await run_in_threadpool(session_of, request)
        auth.check_csrf(await auth.form(request), session.csrf)
        await run_in_threadpool(web.end_session, request.cookies[auth.COOKIE])
        response = RedirectResponse("/app/sign-in", status_code=303)
        response.delete_cookie(auth.COOKIE, path="/app")
        return response

    @app.get("/app/projects", include_in_schema=False)
    def projects(request: Request) -> Response:
        session = session_of(request)
        mine = auth.my_projects(store, session)
        return page("projects.html", session=session, projects=mine, progress_roles=auth.PROGRESS_ROLES)

    @app.get("/app/projects/{project_id}", include_in_schema=False)
    def label(request: Request, project_id: ProjectId, datapoint: DatapointQuery = None) -> Response:
        session = session_of(request)
        project, role = auth.project_for(store, session, project_id)
        email = session.identity.email
        if datapoint is not None:
            dp = queue.open(session.identity.org, project_id, email, datapoint)
            if dp is None:
                return page("message.html", status=409, session=session, title="Taken",
                            message="Someone else is labelling that datapoint right now.")
        else:
            dp = queue.next(session.identity.org, project_id, email)
        return _label_page(session, project, role, dp)

    def _label_page(session: Session, project: dict, role: str, dp: Candidate | None,
                    error: str | None = None, status: int = 200, chosen: dict | None = None) -> Response:
        pid = project["id"]
        history = web.history(pid, session.identity.email, 1)
        if dp is None:
            return page("done.html", session=session, project=project, role=role, can_undo=bool(history),
                        progress_roles=auth.PROGRESS_ROLES)
        spec, served = queue.models(session.identity.org, pid)
        versions = [(o["name"], trainer.models.model_version(pid, o["id"])) for o in project["outputs"] if o["name"] in served]
        values = spec.values(dp.dataset_id, dp.data)
        current = web.annotations_of(pid, dp.id)
        sources = web.source_values(pid, dp) if project["review_existing_annotations"] else {}
        found_labels = labels_cache.get(pid, project["version"])
        outputs = []
        for output in project["outputs"]:
            labels = [{"name": lb["name"], "description": lb.get("description")} for lb in output["labels"]]
            names = {lb["name"] for lb in labels}
            labels += [{"name": n, "description": None} for n in found_labels.get(output["name"], []) if n not in names]
            value, note = None, None
            if chosen is not None and output["name"] in chosen:
                value, note = chosen[output["name"]], None
            elif output["name"] in current:
                value, note = current[output["name"]], "your earlier annotation"
            elif project["review_existing_annotations"]:
                found = suggestion(spec, served, output, dp, sources.get(output["name"]))
                if found is not None:
                    value, note = found
            text = values.get(output.get("input")) if output["task_type"] == "sequence_tagging" else None
            outputs.append({
                "name": output["name"], "task_type": output["task_type"], "description": output.get("description"),
                "labels": labels, "value": value, "note": note, "text": text if isinstance(text, str) else None,
            })
        inputs = [{"name": i["name"], "description": i.get("description"), "display_only": i.get("display_only"),
                   "value": values.get(i["name"])} for i in project["inputs"]]
        data = {"outputs": [{k: o[k] for k in ("name", "task_type", "labels", "value", "text")} for o in outputs],
                "datapoint_id": dp.id}
        return page("label.html", status=status, session=session, project=project, role=role, dp=dp,
                    inputs=inputs, outputs=outputs, page_data=data, error=error, can_undo=bool(history),
                    progress_roles=auth.PROGRESS_ROLES, model_versions=versions)

    @app.post("/app/projects/{project_id}/annotate", include_in_schema=False)
    async def annotate(request: Request, project_id: ProjectId) -> Response:
        session = await run_in_threadpool(session_of, request)
        fields = await auth.form(request)
        auth.check_csrf(fields, session.csrf)
        project, role = await run_in_threadpool(auth.project_for, store, session, project_id)
        datapoint_id = _int_field(fields, "datapoint_id")
        dp = await run_in_threadpool(web.datapoint, session.identity.org, project_id, datapoint_id)
        try:
            chosen = {o["name"]: _value_of(o, fields) for o in project["outputs"]}
        except Invalid as exc:
            return await run_in_threadpool(_label_page, session, project, role, dp, _message(exc), 422)
        bodies = [{"datapoint_id": datapoint_id, "output": o["name"], "value": chosen[o["name"]]} for o in project["outputs"]]
        try:
            for body in bodies:  # all outputs checked before any is written
                await run_in_threadpool(web.check_annotation, session.identity.org, project_id, body)
            for body in bodies:
                await run_in_threadpool(store.annotate, session.identity.org, project_id, body, None, None)
                await run_in_threadpool(web.record_annotator, project_id, body["output"], datapoint_id,
                                        session.identity.email)
        except StoreError as exc:
            return await run_in_threadpool(_label_page, session, project, role, dp, _message(exc), exc.status, chosen)
        trainer.kick("POST", f"/projects/{project_id}/annotations")  # as an API write would
        return RedirectResponse(f"/app/projects/{project_id}", status_code=303)

    @app.post("/app/projects/{project_id}/skip", include_in_schema=False)
    async def skip(request: Request, project_id: ProjectId) -> Response:
        session = await run_in_threadpool(session_of, request)
        fields = await auth.form(request)
        auth.check_csrf(fields, session.csrf)
        await run_in_threadpool(auth.project_for, store, session, project_id)
        datapoint_id = _int_field(fields, "datapoint_id")
        await run_in_threadpool(web.datapoint, session.identity.org, project_id, datapoint_id)
        await run_in_threadpool(web.skip, project_id, session.identity.email, datapoint_id)
        return RedirectResponse(f"/app/projects/{project_id}", status_code=303)

    @app.post("/app/projects/{project_id}/undo", include_in_schema=False)
    async def undo(request: Request, project_id: ProjectId) -> Response:
        """Back to the datapoint you annotated last, your annotation selected: change it and
        save (the last annotation wins), or skip it."""
        session = await run_in_threadpool(session_of, request)
        auth.check_csrf(await auth.form(request), session.csrf)
        await run_in_threadpool(auth.project_for, store, session, project_id)
        last = await run_in_threadpool(web.history, project_id, session.identity.email, 1)
        if not last:
            return RedirectResponse(f"/app/projects/{project_id}", status_code=303)
        return RedirectResponse(f"/app/projects/{project_id}?datapoint={last[0]}", status_code=303)

    @app.get("/app/projects/{project_id}/progress", include_in_schema=False)
    def progress_page(request: Request, project_id: ProjectId) -> Response:
        session = session_of(request)
        project, role = auth.project_for(store, session, project_id)
        if role not in auth.PROGRESS_ROLES:
            raise Denied(403, "the progress page is for the project's owners and admins")
        summary = store.annotation_summary(session.identity.org, project_id)
        for out in summary["outputs"]:
            out["model"] = request.app.state.model_status(project_id, out)
        figures = progress.figures(summary, web.totals(session.identity.org, project_id), web.by_annotator(project_id))
        return page("progress.html", session=session, project=project, role=role, figures=figures,
                    progress_roles=auth.PROGRESS_ROLES)


class SourceLabels:
    """The labels found in each project's source fields (a scan of their datasets), kept
    for :data:`LABELS_SECONDS` per project version so a page load does not rescan."""

    def __init__(self, web: SqliteWeb):
        self.web = web
        self._found: dict[int, tuple[int, float, dict[str, list[str]]]] = {}
        self._lock = threading.Lock()

    def get(self, project_id: int, version: int) -> dict[str, list[str]]:
        with self._lock:
            hit = self._found.get(project_id)
            if hit is not None and hit[0] == version and time.monotonic() - hit[1] < LABELS_SECONDS:
                return hit[2]
        found = self.web.source_labels(project_id)
        with self._lock:
            self._found[project_id] = (version, time.monotonic(), found)
        return found


# ---------------------------------------------------------------------- form values


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of the app only (no open redirect)."""
    if target and target.startswith("/app/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/app/projects"


def _int_field(fields: dict[str, list[str]], name: str) -> int:
    raw = (fields.get(name) or [""])[0]
    if not raw.isdigit() or len(raw) > 18:
        raise Denied(400, f"the form has no valid {name}")
    return int(raw)


def _value_of(output: dict, fields: dict[str, list[str]]) -> Any:
    """The annotation value the form gives for ``output`` (checked again by the store)."""
    key = "o:" + output["name"]
    given = fields.get(key) or []
    task = output["task_type"]
    if task == "classification":
        if not given or not given[0]:
            raise Invalid.one(("form", output["name"]), f"pick a label for {output['name']!r}", "missing")
        return given[0]
    if task == "multilabel_classification":
        return sorted(set(v for v in given if v))
    try:
        spans = orjson.loads(given[0]) if given and given[0] else []
    except orjson.JSONDecodeError:
        raise Invalid.one(("form", output["name"]), "the spans could not be read", "json") from None
    return spans


def _message(exc: StoreError) -> str:
    if isinstance(exc.detail, list):
        return "; ".join(str(item.get("msg", "invalid")) for item in exc.detail if isinstance(item, dict)) or "invalid"
    return str(exc.detail)

