"""The reference server's routes: :func:`create_app` builds the FastAPI application.

Routes are thin: read the request, call one :class:`~hlops.server.store.Store` method,
answer its dict as JSON (with ``ETag: "<version>"`` when it has a version). Auth, limits,
idempotency replay and the test-only knobs happen before, in :mod:`hlops.server.middleware`.

Bodies that carry datapoints are read raw (``async`` routes) and checked in one fast pass
(:mod:`hlops.server.bodies`); the heavy work then runs in the thread pool. Their schemas
are still in the OpenAPI (``openapi_extra`` pointing at the models in ``schemas.py``).

Extension points: training and prediction (``POST /projects/{id}/predict``,
``GET /projects/{id}/export``, a real ``model`` status in the annotation summary) belong in
a module of their own (``hlops/server/ml.py``) that adds an ``APIRouter`` with
``app.include_router`` and replaces ``app.state.model_status``; nothing here needs to move.
"""

from __future__ import annotations

import base64
import binascii
import inspect
import re
from dataclasses import replace
from typing import Annotated, Any, Callable, Literal

import orjson
from fastapi import Body, Depends, FastAPI, Header, Path, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.security import APIKeyHeader
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from hlops import __version__
from hlops.canonical import valid_bucket_count
from hlops.server import bodies, schemas as S
from hlops.server.config import FaultConfig, Settings
from hlops.server.faults import FaultInjector, RateLimiter, RequestLog
from hlops.server.middleware import OCTETS, Gate, GateState
from hlops.server.store import Idem, Invalid, Page, Store, StoreError

READY_TO_TRAIN = 10  # annotated datapoints an output needs before a model can train

api_key_header = APIKeyHeader(
    name="X-API-KEY", auto_error=False, description="Your organisation's API key."
)

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": S.ErrorOut, "description": "Bad request"},
    401: {"model": S.ErrorOut, "description": "Missing or unknown API key"},
    404: {"model": S.ErrorOut, "description": "Not found (or another organisation's)"},
    409: {"model": S.ErrorOut, "description": "Conflict: duplicate name or key, resource in use"},
    412: {"model": S.ErrorOut, "description": "If-Match does not name the current version"},
    413: {"model": S.ErrorOut, "description": "More than 10,000 datapoints or 32 MiB"},
    415: {"model": S.ErrorOut, "description": "The body is not JSON"},
    422: {"model": S.ValidationErrorOut, "description": "Validation error"},
    429: {"model": S.ErrorOut, "description": "Rate limited: retry after Retry-After seconds"},
}

IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        pattern=r'^(W/)?"?[0-9]{1,18}"?$|^\*$',
        description="The version the change is based on; 412 if the resource changed since.",
    ),
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="Send one per logical write: a repeat gets the first answer replayed.",
    ),
]
Limit = Annotated[int, Query(ge=1, le=1000, description="Page size.")]
BigLimit = Annotated[int, Query(ge=1, le=10_000, description="Page size.")]
Cursor = Annotated[str | None, Query(max_length=200, description="`next_cursor` of the previous page.")]
NameFilter = Annotated[str | None, Query(max_length=200, description="Only the resource of this exact name.")]
Include = Annotated[
    Literal["digest"] | None,
    Query(description="`digest`: add each dataset's `digest` (key, count, XOR of its datapoints' hashes) [ext]."),
]
DatasetId = Annotated[int, Path(ge=1, le=S.MAX_ID)]
ProjectId = Annotated[int, Path(ge=1, le=S.MAX_ID)]


def untrained_status(project_id: int, output: dict) -> dict:
    """The model status of an output until training exists (``hlops/server/ml.py``)."""
    ready = output["annotated"] >= READY_TO_TRAIN
    return {"status": "ready_to_train" if ready else "untrained", "version": 0}


# ---------------------------------------------------------------------- helpers


def respond(result: dict, status: int = 200) -> Response:
    headers = {"ETag": f'"{result["version"]}"'} if isinstance(result.get("version"), int) else None
    return Response(orjson.dumps(result), status_code=status, media_type="application/json", headers=headers)


def listed(result: dict) -> Response:
    nxt = result["next_cursor"]
    result["next_cursor"] = None if nxt is None else encode_cursor(nxt)
    return respond(result)


def encode_cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> Any:
    if cursor is None:
        return None
    try:
        return orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise Invalid.one(("query", "cursor"), "invalid cursor", "cursor") from None


def version_of(if_match: str | None) -> int | None:
    if if_match is None or if_match.strip() == "*":
        return None
    return int(if_match.removeprefix("W/").strip('"'))


def org_id(request: Request, _key: str | None = Security(api_key_header)) -> int:
    """The caller's organisation (the gate checked the key before the route runs)."""
    return request.state.org_id


def idem(request: Request, status: int = 200) -> Idem | None:
    found = getattr(request.state, "idem", None)
    return None if found is None else replace(found, status=status)


def raw_body(model: type) -> dict:
    """``openapi_extra`` documenting a raw-read JSON body with ``model``'s schema."""
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


RAW_MODELS = (S.DatasetCreate, S.DatasetAppend, S.DatapointsPatch, S.DatapointsDelete)


# ---------------------------------------------------------------------- the app


def _fastapi_options() -> dict:
    """Options of recent FastAPI versions, when this one has them: no per-request telemetry,
    and a body without Content-Type read as JSON (older versions do that anyway; the gate
    refuses other types)."""
    wanted = {
        "telemetry": {"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
        "strict_content_type": False,
    }
    params = inspect.signature(FastAPI.__init__).parameters
    return {k: v for k, v in wanted.items() if k in params}


def create_app(store: Store, settings: Settings, *, model_status: Callable[[int, dict], dict] = untrained_status) -> FastAPI:
    """The FastAPI app over ``store``. Creates the organisations of ``settings.keys``."""
    orgs = store.ensure_orgs(settings.keys)
    app = FastAPI(
        title="hlops reference server",
        version=__version__,
        description="The Humanloop API as hlops uses it: the seed's calls plus the provisioning "
        "extensions (read, change, delete, digest). See docs/api.md.",
        responses=ERRORS,
        dependencies=[Depends(_known_query_parameters)],
        **_fastapi_options(),
    )
    gate = GateState(
        settings=settings,
        store=store,
        orgs=orgs,
        injector=FaultInjector(settings.faults),
        limiter=RateLimiter(settings.rate_limit),
        log=RequestLog(settings.request_log),
    )
    app.state.store = store
    app.state.gate = gate
    app.state.model_status = model_status
    _install_errors(app)
    _datasets(app, store, settings)
    _projects(app, store)
    from hlops.server.routes_ml import install_ml  # training, predict, export (issue 9)

    install_ml(app, store, settings)
    from hlops.server.web import install_web  # the annotation web app under /app (issue 16)

    install_web(app, store, app.state.trainer)
    if settings.test_endpoints:
        _test_endpoints(app, gate)

    @app.get("/health", response_model=S.Health, tags=["meta"], responses={})
    def health() -> dict:
        """Liveness, without auth."""
        return {"status": "ok", "version": __version__}

    app.add_middleware(Gate, state=gate, routes=app.router.routes)
    _document_raw_bodies(app)
    return app


def _known_query_parameters(request: Request) -> None:
    """Refuse query parameters a call does not take (a typo like ``?limt=5`` would otherwise
    be silently ignored), one given twice (only the last would count), and one holding a NUL
    (``%00``: no store keeps such a text, PostgreSQL's cannot hold it): 422, located at the
    parameter, naming the ones the call takes."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    allowed = getattr(route, "_hlops_query", None)
    if allowed is None:
        allowed = frozenset(_query_names(dependant))
        route._hlops_query = allowed
    items = request.query_params.multi_items()
    names = [name for name, _value in items]
    nul = {name for name, value in items if "\x00" in value}
    problems = []
    takes = ", ".join(sorted(allowed)) or "none"
    for name in dict.fromkeys(names):
        if name not in allowed:
            problems.append({"loc": ("query", name), "type": "extra_forbidden",
                             "msg": f"unknown query parameter; this call takes: {takes}"})
        elif names.count(name) > 1:
            problems.append({"loc": ("query", name), "type": "too_many",
                             "msg": "given more than once; give it once"})
        elif name in nul:
            problems.append({"loc": ("query", name), "type": "string_nul",
                             "msg": "a query parameter may not hold a NUL character (U+0000)"})
    if problems:
        raise RequestValidationError(problems)


def _query_names(dependant) -> set[str]:
    """The query parameters of a route and of every dependency it has."""
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def _install_errors(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def validation(_request: Request, exc: RequestValidationError) -> Response:
        return Response(
            orjson.dumps({"detail": bodies.validation_items(list(exc.errors()))}),
            status_code=422,
            media_type="application/json",
        )

    @app.exception_handler(StoreError)
    async def store_error(_request: Request, exc: StoreError) -> Response:
        return Response(orjson.dumps({"detail": exc.detail}), status_code=exc.status, media_type="application/json")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        return Response(
            orjson.dumps({"detail": str(exc.detail)}),
            status_code=exc.status_code,
            media_type="application/json",
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(ClientDisconnect)
    async def gone(_request: Request, _exc: ClientDisconnect) -> Response:  # nobody reads it
        return Response(orjson.dumps({"detail": "the client went away"}), status_code=400, media_type="application/json")

    @app.exception_handler(Exception)
    async def crash(_request: Request, _exc: Exception) -> Response:  # logged by uvicorn
        return Response(orjson.dumps({"detail": "internal server error"}), status_code=500, media_type="application/json")


def _document_raw_bodies(app: FastAPI) -> None:
    """Add the raw-read body models to the OpenAPI components."""

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes,
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in RAW_MODELS:
                js = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(js.pop("$defs", {}))
                components[model.__name__] = js
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


# ---------------------------------------------------------------------- datasets


def _datasets(app: FastAPI, store: Store, settings: Settings) -> None:
    tags = ["datasets"]
    max_rows = settings.max_rows

    @app.post("/datasets", status_code=201, response_model=S.DatasetWrite, tags=tags, openapi_extra=raw_body(S.DatasetCreate))
    async def create_dataset(request: Request, org: int = Depends(org_id), _idem: IdempotencyKey = None) -> Response:
        """Create a dataset with its fields and, optionally, its first datapoints [seed]."""
        spec, rows = bodies.dataset_create(await request.body(), max_rows)
        result = await run_in_threadpool(store.create_dataset, org, spec, rows, idem(request, 201))
        return respond(result, 201)

    @app.get("/datasets", response_model=S.DatasetPage, tags=tags)
    def list_datasets(
        org: int = Depends(org_id), name: NameFilter = None, limit: Limit = 100, cursor: Cursor = None,
        include: Include = None,
    ) -> Response:
        """The organisation's datasets, oldest first; `include=digest` adds each one's digest
        at one bucket (what a no-op check needs, no datapoint read) [ext]."""
        page = Page(decode_cursor(cursor), limit)
        return listed(store.list_datasets(org, name, page, include_digest=include == "digest"))

    @app.get("/datasets/{dataset_id}", response_model=S.Dataset, tags=tags)
    def get_dataset(dataset_id: DatasetId, org: int = Depends(org_id)) -> Response:
        """One dataset with its fields and datapoint count [ext]."""
        return respond(store.get_dataset(org, dataset_id))

    @app.put("/datasets/{dataset_id}", response_model=S.DatasetWrite, tags=tags, openapi_extra=raw_body(S.DatasetAppend))
    async def append_datapoints(
        dataset_id: DatasetId, request: Request, org: int = Depends(org_id), if_match: IfMatch = None,
        _idem: IdempotencyKey = None,
    ) -> Response:
        """Append datapoints, at most 10,000 per request [seed]."""
        rows = bodies.dataset_append(await request.body(), max_rows)
        result = await run_in_threadpool(
            store.append_datapoints, org, dataset_id, rows, version_of(if_match), idem(request)
        )
        return respond(result)

    @app.patch("/datasets/{dataset_id}", response_model=S.Dataset, tags=tags)
    def patch_dataset(
        dataset_id: DatasetId, request: Request, body: S.DatasetPatch, org: int = Depends(org_id),
        if_match: IfMatch = None, _idem: IdempotencyKey = None,
    ) -> Response:
        """Rename, describe, change the key, add fields (the full list), or note `last_applied` [ext]."""
        patch = body.model_dump(include=body.model_fields_set)
        if "name" in patch and patch["name"] is None:
            raise Invalid.one(("body", "name"), "a dataset needs a name", "missing")
        return respond(store.patch_dataset(org, dataset_id, patch, version_of(if_match), idem(request)))

    @app.delete("/datasets/{dataset_id}", response_model=S.DatasetDeleted, tags=tags)
    def delete_dataset(
        dataset_id: DatasetId, request: Request, org: int = Depends(org_id),
        force: Annotated[bool, Query(description="Also delete the projects that read the dataset.")] = False,
        if_match: IfMatch = None, _idem: IdempotencyKey = None,
    ) -> Response:
        """Delete a dataset; 409 while a project reads it, unless `force` [ext]."""
        return respond(store.delete_dataset(org, dataset_id, force, version_of(if_match), idem(request)))

    @app.get("/datasets/{dataset_id}/datapoints", response_model=S.DatapointPage, tags=tags)
    def list_datapoints(
        dataset_id: DatasetId, org: int = Depends(org_id),
        fields: Annotated[str | None, Query(max_length=10_000, description="Comma-separated field names.")] = None,
        limit: BigLimit = 100, cursor: Cursor = None,
    ) -> Response:
        """The datapoints (canonical values), oldest first [ext]."""
        names = None
        if fields is not None:
            names = [f.strip() for f in fields.split(",")]
            if not all(names):
                raise Invalid.one(("query", "fields"), "an empty field name", "value_error")
        return listed(store.list_datapoints(org, dataset_id, names, Page(decode_cursor(cursor), limit)))

    @app.patch("/datasets/{dataset_id}/datapoints", response_model=S.Dataset, tags=tags, openapi_extra=raw_body(S.DatapointsPatch))
    async def patch_datapoints(
        dataset_id: DatasetId, request: Request, org: int = Depends(org_id), if_match: IfMatch = None,
        _idem: IdempotencyKey = None,
    ) -> Response:
        """Replace the data of existing datapoints, wholesale [ext]."""
        items = bodies.datapoints_patch(await request.body(), max_rows)
        result = await run_in_threadpool(
            store.patch_datapoints, org, dataset_id, items, version_of(if_match), idem(request)
        )
        return respond(result)

    @app.post("/datasets/{dataset_id}/datapoints/delete", response_model=S.DatapointsDeleted, tags=tags, openapi_extra=raw_body(S.DatapointsDelete))
    async def delete_datapoints(
        dataset_id: DatasetId, request: Request, org: int = Depends(org_id), if_match: IfMatch = None,
        _idem: IdempotencyKey = None,
    ) -> Response:
        """Delete datapoints by id (with their annotations); unknown ids are skipped [ext]."""
        ids = bodies.datapoints_delete(await request.body(), max_rows)
        result = await run_in_threadpool(
            store.delete_datapoints, org, dataset_id, ids, version_of(if_match), idem(request)
        )
        return respond(result)

    @app.get("/datasets/{dataset_id}/digest", response_model=S.DigestBuckets | S.DigestRows, tags=tags)
    def digest(
        dataset_id: DatasetId, org: int = Depends(org_id),
        key: Annotated[str | None, Query(max_length=100, description="Key field (default: the dataset's key).")] = None,
        buckets: Annotated[int | None, Query(ge=1, le=65_536, description="A power of two.")] = None,
        bucket: Annotated[int | None, Query(ge=0, le=65_535, description="Rows of this bucket only.")] = None,
        limit: BigLimit = 100, cursor: Cursor = None,
    ) -> Response:
        """`buckets=N`: the bucket summary. `buckets=N&bucket=i`: the rows `{id, key, hash,
        annotations}` of bucket i. Neither: the rows of every datapoint [ext]."""
        if buckets is not None and not valid_bucket_count(buckets):
            raise Invalid.one(("query", "buckets"), "buckets must be a power of two <= 65,536", "value_error")
        if bucket is not None and (buckets is None or bucket >= buckets):
            raise Invalid.one(("query", "bucket"), "bucket needs buckets=N and must be < N", "value_error")
        if buckets is not None and bucket is None:
            return respond(store.digest_buckets(org, dataset_id, key, buckets))
        return listed(store.digest_rows(org, dataset_id, key, buckets, bucket, Page(decode_cursor(cursor), limit)))

    @app.post("/datasets/{dataset_id}/digest/rows", response_model=S.DigestRows, tags=tags)
    def digest_rows_of(
        dataset_id: DatasetId, body: S.DigestRowsOf, org: int = Depends(org_id),
        limit: BigLimit = 1000, cursor: Cursor = None,
    ) -> Response:
        """The rows `{id, key, hash, annotations}` of many buckets of one level, in pages of
        up to 10,000 (send the same body with each page's cursor). A read: nothing is written
        [ext]."""
        which = checked_buckets(body.buckets, body.which)
        return listed(store.digest_rows_of(org, dataset_id, body.key, body.buckets, which, Page(decode_cursor(cursor), limit)))

    @app.post("/datasets/{dataset_id}/digest/keys", response_model=S.DigestRows, tags=tags)
    def digest_rows_by_key(dataset_id: DatasetId, body: S.DigestKeys, org: int = Depends(org_id)) -> Response:
        """The rows `{id, key, hash, annotations}` of the datapoints whose key is listed (1 to
        10,000 keys; a key not found is left out), by id, in one answer (`next_cursor` is
        null). The dataset needs a key field. A read: nothing is written [ext]."""
        return listed(store.digest_rows_by_key(org, dataset_id, checked_keys(body.keys)))

    @app.put(
        "/datasets/{dataset_id}/last_applied/index", status_code=204, response_class=Response, tags=tags,
        openapi_extra=octets_body(), responses={
            413: {"model": S.ErrorOut, "description": f"A body over {settings.max_index_bytes:,} bytes"},
            415: {"model": S.ErrorOut, "description": f"The body is not {OCTETS}"},
        },
    )
    async def put_applied_index(
        dataset_id: DatasetId, request: Request, org: int = Depends(org_id), _idem: IdempotencyKey = None,
    ) -> Response:
        """Keep raw bytes beside the dataset, replacing any it had: a client's index of its
        last apply, answered as it is by the GET. A note, like `last_applied`: the dataset's
        `version` and `updated_at` stay [ext]."""
        data = await request.body()
        await run_in_threadpool(store.put_applied_index, org, dataset_id, data, idem(request, 204))
        return Response(status_code=204)

    @app.get(
        "/datasets/{dataset_id}/last_applied/index", response_class=Response, tags=tags,
        responses={200: {"description": "The bytes last PUT", "content": {OCTETS: {"schema": BINARY}}},
                   206: {"description": "The range asked for", "content": {OCTETS: {"schema": BINARY}}},
                   416: {"description": "A range that starts past the end"}},
    )
    def get_applied_index(dataset_id: DatasetId, org: int = Depends(org_id),
                          range_: str | None = Header(None, alias="Range")) -> Response:
        """The bytes the last `PUT .../last_applied/index` stored; 404 when there are none.
        `Range: bytes=a-b` (or `a-`, or `-n`: the last n) answers those bytes (206, with
        `Content-Range`); a range past the end is a 416; another form of Range (several
        ranges, another unit) is ignored: the whole blob, 200 [ext]."""
        wanted = byte_range(range_)
        if wanted is None:
            return Response(store.get_applied_index(org, dataset_id)[0], media_type=OCTETS,
                            headers={"Accept-Ranges": "bytes"})
        first, last = wanted
        if first is None:  # the last `last` bytes: the size first
            size = store.get_applied_index(org, dataset_id, 0, 0)[1]
            first, last = max(0, size - last), size - 1
        data, size = store.get_applied_index(org, dataset_id, first, None if last is None else last + 1)
        if first >= size or (last is not None and last < first):
            return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
        return Response(data, status_code=206, media_type=OCTETS,
                        headers={"Content-Range": f"bytes {first}-{first + len(data) - 1}/{size}", "Accept-Ranges": "bytes"})


MAX_LISTED = 50  # problems of one body listed in a 422
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def byte_range(header: str | None) -> tuple[int | None, int | None] | None:
    """``(first, last)`` of a single ``Range: bytes=first-last`` (RFC 9110; ``last`` None:
    to the end; ``first`` None: ``last`` is a suffix length), or None for no Range or one
    this server ignores (several ranges, another unit, nonsense: the whole answer)."""
    found = _RANGE.fullmatch(header.strip()) if header else None
    if found is None or found.group(1) == found.group(2) == "":
        return None
    a, b = found.group(1), found.group(2)
    if a == "":
        return None, int(b)
    return int(a), int(b) if b else None
BINARY = {"type": "string", "format": "binary"}


def octets_body() -> dict:
    """``openapi_extra`` documenting a body of raw bytes."""
    return {"requestBody": {"required": True, "content": {OCTETS: {"schema": BINARY}}}}


def checked_keys(keys: list[str]) -> list[str]:
    """``keys`` without repeats, or a 422 at each one no stored key can be: holding a NUL
    (``key_nul``, as :func:`hlops.server.rows.prepare` refuses it) or a lone surrogate (not
    UTF-8); up to 50 listed."""
    problems = []
    for i, key in enumerate(keys):
        if "\x00" in key:
            problems.append({"loc": ["body", "keys", i], "msg": "a key cannot hold a NUL character (U+0000)", "type": "key_nul"})
        elif not key.isascii() and not _utf8(key):
            problems.append({"loc": ["body", "keys", i], "msg": "a key is Unicode text (this holds a lone surrogate)", "type": "string_unicode"})
        if len(problems) >= MAX_LISTED:
            break
    if problems:
        raise Invalid(problems)
    return list(dict.fromkeys(keys))


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def checked_buckets(buckets: int, which: list[int]) -> list[int]:
    """``which`` sorted, or a 422 located at the field (``buckets``) or at each bad item
    (``which[i]``: out of range, or listed twice)."""
    if not valid_bucket_count(buckets):
        raise Invalid.one(("body", "buckets"), "buckets must be a power of two <= 65,536", "value_error")
    problems, seen = [], set()
    for i, b in enumerate(which):
        if not 0 <= b < buckets:
            problems.append({"loc": ["body", "which", i], "msg": f"a bucket of {buckets:,} is 0 to {buckets - 1:,}", "type": "value_error"})
        elif b in seen:
            problems.append({"loc": ["body", "which", i], "msg": "bucket listed twice", "type": "value_error"})
        seen.add(b)
        if len(problems) >= MAX_LISTED:
            break
    if problems:
        raise Invalid(problems)
    return sorted(seen)


# ---------------------------------------------------------------------- projects


def _projects(app: FastAPI, store: Store) -> None:
    tags = ["projects"]

    @app.post("/projects", status_code=201, response_model=S.Project, tags=tags)
    def create_project(request: Request, body: S.ProjectCreate, org: int = Depends(org_id), _idem: IdempotencyKey = None) -> Response:
        """Create a project reading dataset fields [seed]."""
        return respond(store.create_project(org, body.model_dump(), idem(request, 201)), 201)

    @app.get("/projects", response_model=S.ProjectPage, tags=tags)
    def list_projects(org: int = Depends(org_id), name: NameFilter = None, limit: Limit = 100, cursor: Cursor = None) -> Response:
        """The organisation's projects, oldest first [ext]."""
        return listed(store.list_projects(org, name, Page(decode_cursor(cursor), limit)))

    @app.get("/projects/{project_id}", response_model=S.Project, tags=tags)
    def get_project(project_id: ProjectId, org: int = Depends(org_id)) -> Response:
        """One project [ext]."""
        return respond(store.get_project(org, project_id))

    @app.patch("/projects/{project_id}", response_model=S.Project, tags=tags)
    def patch_project(
        project_id: ProjectId, request: Request, body: S.ProjectPatch, org: int = Depends(org_id),
        if_match: IfMatch = None, _idem: IdempotencyKey = None,
    ) -> Response:
        """Change what can change in place; the rest needs a replacement (422) [ext]."""
        patch = body.model_dump(include=body.model_fields_set)
        for attr in ("name", "inputs", "outputs", "users", "review_existing_annotations"):
            if attr in patch and patch[attr] is None:
                raise Invalid.one(("body", attr), f"{attr} cannot be null", "missing")
        return respond(store.patch_project(org, project_id, patch, version_of(if_match), idem(request)))

    @app.delete("/projects/{project_id}", response_model=S.ProjectDeleted, tags=tags)
    def delete_project(
        project_id: ProjectId, request: Request, org: int = Depends(org_id), if_match: IfMatch = None,
        _idem: IdempotencyKey = None,
    ) -> Response:
        """Delete a project with its annotations [ext]."""
        return respond(store.delete_project(org, project_id, version_of(if_match), idem(request)))

    @app.post("/projects/{project_id}/annotations", response_model=S.Annotation, tags=tags)
    def annotate(
        project_id: ProjectId, request: Request, body: S.AnnotationIn, org: int = Depends(org_id),
        if_match: IfMatch = None, _idem: IdempotencyKey = None,
    ) -> Response:
        """Annotate a datapoint for one output; the last annotation wins [ext]."""
        return respond(store.annotate(org, project_id, body.model_dump(), version_of(if_match), idem(request)))

    @app.get("/projects/{project_id}/annotations/summary", response_model=S.AnnotationSummary, tags=tags)
    def annotation_summary(project_id: ProjectId, request: Request, org: int = Depends(org_id)) -> Response:
        """Annotation counts per output, labels in the source fields, model status [ext]."""
        summary = store.annotation_summary(org, project_id)
        status = request.app.state.model_status
        for out in summary["outputs"]:
            out["model"] = status(project_id, out)
        return respond(summary)


# ---------------------------------------------------------------------- test-only


def _test_endpoints(app: FastAPI, gate: GateState) -> None:
    """Hidden routes for tests (``--test-endpoints``); requests to them are not counted."""

    @app.get("/_test/stats", include_in_schema=False)
    def stats() -> dict:
        return gate.stats.snapshot()

    @app.post("/_test/reset-stats", include_in_schema=False)
    def reset_stats() -> dict:
        gate.stats.reset()
        gate.injector.reset()
        return {"ok": True}

    @app.post("/_test/faults", include_in_schema=False)
    def faults(body: Annotated[dict, Body()]) -> dict:
        changes = dict(body)
        if "rate_limit" in changes:
            gate.limiter.rate = changes.pop("rate_limit") or None
        unknown = set(changes) - set(FaultConfig.__dataclass_fields__)
        if unknown:
            raise Invalid.one(("body",), f"unknown fault setting(s): {', '.join(sorted(unknown))}")
        try:
            gate.injector.configure(gate.injector.config.updated(changes))
        except (TypeError, ValueError, Exception) as exc:  # SettingsError included
            raise Invalid.one(("body",), str(exc)) from None
        cfg = gate.injector.config
        return {
            "rate": cfg.rate, "statuses": list(cfg.statuses), "seed": cfg.seed, "fail_nth": list(cfg.fail_nth),
            "phase": cfg.phase, "retry_after": cfg.retry_after, "rate_limit": gate.limiter.rate,
        }
