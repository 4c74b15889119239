"""HTML out: Jinja2 templates (autoescaped, always), guidelines from markdown, and the
security headers every page carries.

- Markdown goes through markdown-it-py's CommonMark parser with raw HTML **off** (an HTML
  tag in a guideline is shown as text) and its link check on (``javascript:``,
  ``vbscript:``, ``file:`` and non-image ``data:`` links are dropped), plus tables.
- Values of datapoints only ever reach a page through autoescaping, or as JSON inside
  ``<script type="application/json">`` via Jinja's ``tojson`` (which escapes ``<``, ``>``,
  ``&`` and ``'``), read by the page's script with ``textContent``/``createTextNode``.
- :data:`CSP` allows scripts and styles from the app's own ``/app/static/`` only: no inline
  script, no inline event handler, no ``eval``, nothing from elsewhere.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.responses import HTMLResponse

HERE = Path(__file__).parent
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["markdown"] = markdown
    return env


@lru_cache(maxsize=1)
def _parser() -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table")


def markdown(text: str | None) -> Markup:
    """Guidelines as safe HTML (raw HTML in the markdown is escaped, not passed through)."""
    if not text:
        return Markup("")
    return Markup(_parser().render(text))


def page(name: str, status: int = 200, headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
    html = environment().get_template(name).render(**context)
    return HTMLResponse(html, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})})
