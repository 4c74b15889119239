"""Client side of the reference server's annotation web app (docs/annotate.md): personal
tokens and the project's address (the ``web`` capability). HTTP through the provider's
:class:`~hlops.providers.humanloop.client.Client` only."""

from __future__ import annotations

from hlops.providers.humanloop.client import Client
from hlops.providers.humanloop.labelled import find_project


class Web:
    def __init__(self, client: Client):
        self.client = client

    def issue_token(self, email: str) -> dict:
        """``{email, token, projects: [{id, name, role}]}`` from ``POST /users/tokens``. A
        new token replaces the e-mail's earlier one."""
        return self.client.request("POST", "/users/tokens", body={"email": email})

    def project_url(self, name: str) -> str:
        """The labelling page of the project named ``name``."""
        return f"{self.client.base_url}/app/projects/{find_project(self.client, name)['id']}"

    def sign_in_url(self) -> str:
        return f"{self.client.base_url}/app/sign-in"
