"""Client side of the annotation web app (docs/annotate.md): personal tokens and the
project's address. HTTP through :class:`hlops.client.Client` only."""

from __future__ import annotations

from hlops.client import Client
from hlops.labelled import find_project


def issue_token(client: Client, email: str) -> dict:
    """``{email, token, projects: [{id, name, role}]}`` from ``POST /users/tokens``. A new
    token replaces the e-mail's earlier one."""
    return client.request("POST", "/users/tokens", body={"email": email})


def project_url(client: Client, name: str) -> str:
    """The labelling page of the project named ``name``."""
    return f"{client.base_url}/app/projects/{find_project(client, name)['id']}"


def sign_in_url(client: Client) -> str:
    return f"{client.base_url}/app/sign-in"
