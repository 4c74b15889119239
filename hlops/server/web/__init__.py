"""The annotation web app served by the reference server under ``/app`` (docs/annotate.md).

:func:`install_web` adds its pages, its static files and the ``POST /users/tokens`` API call
to an app made by :func:`hlops.server.app.create_app`.
"""

from hlops.server.web.routes import install_web

__all__ = ["install_web"]
