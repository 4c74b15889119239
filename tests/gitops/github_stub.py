"""A tiny stand-in for the GitHub REST API: just what examples/github-actions/hlops-pr.sh calls.

Issue comments (list with per_page/page, create, edit, delete), the pull requests of a commit,
and a pull request. It keeps every request (method, path, whether the token was sent) and
answers 422 to a comment body over 65,536 characters, as GitHub does.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

MAX_BODY = 65_536


@dataclass
class Comment:
    id: int
    pr: int
    body: str


@dataclass
class GitHubStub:
    token: str
    repo: str = "acme/labels"
    comments: dict[int, Comment] = field(default_factory=dict)
    pulls: dict[int, dict[str, Any]] = field(default_factory=dict)  # number -> {head_sha, labels, merge_sha}
    requests: list[tuple[str, str, bool]] = field(default_factory=list)
    next_id: int = 1000
    url: str = ""

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: Any = None) -> None:
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                authorised = self.headers.get("Authorization") == f"Bearer {stub.token}"
                parsed = urlparse(self.path)
                with stub._lock:
                    stub.requests.append((method, parsed.path, authorised))
                    if not authorised:
                        return self._answer(401, {"message": "Bad credentials"})
                    status, body = stub.route(method, parsed.path, parse_qs(parsed.query), json.loads(raw) if raw else None)
                self._answer(status, body)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PATCH(self) -> None:
                self._handle("PATCH")

            def do_DELETE(self) -> None:
                self._handle("DELETE")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # ------------------------------------------------------------------ routes

    def route(self, method: str, path: str, query: dict, body: Any) -> tuple[int, Any]:
        base = f"/repos/{self.repo}"
        if not path.startswith(base):
            return 404, {"message": "Not Found"}
        rest = path[len(base):]
        if m := re.fullmatch(r"/issues/(\d+)/comments", rest):
            pr = int(m.group(1))
            if method == "GET":
                per_page = int(query.get("per_page", ["30"])[0])
                page = int(query.get("page", ["1"])[0])
                items = [c for c in sorted(self.comments.values(), key=lambda c: c.id) if c.pr == pr]
                chunk = items[(page - 1) * per_page: page * per_page]
                return 200, [self._json(c) for c in chunk]
            if method == "POST":
                if too_long := self._too_long(body):
                    return too_long
                self.next_id += 1
                comment = Comment(self.next_id, pr, body["body"])
                self.comments[comment.id] = comment
                return 201, self._json(comment)
        if m := re.fullmatch(r"/issues/comments/(\d+)", rest):
            comment = self.comments.get(int(m.group(1)))
            if comment is None:
                return 404, {"message": "Not Found"}
            if method == "PATCH":
                if too_long := self._too_long(body):
                    return too_long
                comment.body = body["body"]
                return 200, self._json(comment)
            if method == "DELETE":
                del self.comments[comment.id]
                return 204, None
        if m := re.fullmatch(r"/commits/([0-9a-zA-Z]+)/pulls", rest):
            sha = m.group(1)
            return 200, [
                {"number": n, "merged_at": "2025-01-01T00:00:00Z"}
                for n, p in self.pulls.items() if p.get("merge_sha") == sha
            ]
        if m := re.fullmatch(r"/pulls/(\d+)", rest):
            pull = self.pulls.get(int(m.group(1)))
            if pull is None:
                return 404, {"message": "Not Found"}
            return 200, {"number": int(m.group(1)), "head": {"sha": pull["head_sha"]},
                         "labels": [{"name": n} for n in pull.get("labels", [])]}
        return 404, {"message": "Not Found"}

    @staticmethod
    def _too_long(body: Any) -> tuple[int, Any] | None:
        if len(body["body"]) > MAX_BODY:
            return 422, {"message": "Validation Failed", "errors": [{"message": "Body is too long (maximum is 65536 characters)"}]}
        return None

    @staticmethod
    def _json(c: Comment) -> dict[str, Any]:
        return {"id": c.id, "body": c.body, "html_url": f"https://github.invalid/comment/{c.id}"}

    def on(self, pr: int) -> list[Comment]:
        return sorted((c for c in self.comments.values() if c.pr == pr), key=lambda c: c.id)
