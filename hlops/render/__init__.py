"""Plan -> text. Renderers return strings and never print; only the CLI prints.

- :func:`hlops.render.text.render` — the terminal (colour optional, like `terraform plan`);
- :func:`hlops.render.markdown.render` — a pull-request comment (parts under 65,000 chars);
- :func:`hlops.render.json.render` — the versioned machine format (docs/plan-format.md).
"""

from hlops.render import json, markdown, text

__all__ = ["json", "markdown", "text"]
