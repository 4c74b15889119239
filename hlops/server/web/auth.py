"""Who is signed in, what they may see, and the CSRF check.

- A **personal token** (``POST /users/tokens`` with the organisation's API key, or
  ``hlops users token EMAIL``) names an e-mail of one organisation. Signing in with it on
  ``/app/sign-in`` starts a **session**: a random id in the cookie :data:`COOKIE`
  (``HttpOnly``, ``SameSite=Strict``, ``Path=/app``, ``Secure`` over HTTPS), valid for
  :data:`SESSION_SECONDS`. The API key is never accepted by the pages, and a session or a
  token is never accepted by the API (the gate only knows API keys).
- **Roles** come from the project's ``users``: an e-mail not listed sees nothing of the
  project (404, as if it did not exist); ``annotator`` labels; ``owner`` and ``admin`` also
  see the progress page.
- **CSRF.** Every form carries the session's CSRF token in a hidden field ``csrf``; a POST
  without it, or with another, is refused (403). The sign-in form, before any session,
  uses a double-submit cookie (:data:`SIGNIN_COOKIE`).
"""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request

from hlops.server.store import NotFound
from hlops.server.web.store import Session, WebStore

COOKIE = "hlops_session"
SIGNIN_COOKIE = "hlops_signin"
SESSION_SECONDS = 12 * 3600
MAX_FORM_BYTES = 1_000_000
PROGRESS_ROLES = frozenset({"owner", "admin"})


class Denied(Exception):
    """Answer a page with ``status`` (401 -> the sign-in page)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def cookie_options(request: Request) -> dict[str, Any]:
    return {"httponly": True, "samesite": "strict", "path": "/app", "secure": request.url.scheme == "https"}


def current(request: Request, web: WebStore) -> Session:
    session_id = request.cookies.get(COOKIE)
    found = web.session(session_id) if session_id else None
    if found is None:
        raise Denied(401, "sign in with your personal token")
    return found


async def form(request: Request) -> dict[str, list[str]]:
    """An ``application/x-www-form-urlencoded`` body (what the pages' forms post)."""
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise Denied(415, "forms are posted as application/x-www-form-urlencoded")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise Denied(413, "the form is too large")
    return parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)


def check_csrf(fields: dict[str, list[str]], expected: str) -> None:
    given = (fields.get("csrf") or [""])[0]
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Denied(403, "this form has expired or did not come from this site; reload the page and try again")


def role_in(project: dict, email: str) -> str | None:
    folded = email.lower()
    return next((u["role"] for u in project["users"] if u["email"].lower() == folded), None)


def project_for(store: Any, session: Session, project_id: int) -> tuple[dict, str]:
    """The project and the signed-in person's role in it; 404 unless it lists them."""
    try:
        project = store.get_project(session.identity.org, project_id)
    except NotFound:
        raise Denied(404, "no such project") from None
    role = role_in(project, session.identity.email)
    if role is None:
        raise Denied(404, "no such project")
    return project, role


def my_projects(store: Any, session: Session) -> list[tuple[dict, str]]:
    out, after = [], None
    from hlops.server.store import Page

    while True:
        page = store.list_projects(session.identity.org, None, Page(after, 1000))
        for project in page["items"]:
            role = role_in(project, session.identity.email)
            if role is not None:
                out.append((project, role))
        after = page["next_cursor"]
        if after is None:
            return out
