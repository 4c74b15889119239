"""The Humanloop provider: :class:`hlops.provider.Provider` over the Humanloop API.

- connecting: ``HLOPS_BASE_URL`` (or ``--base-url``, ``hlops.yaml`` ``base_url``, default
  ``https://api.humanloop.com``) and ``HLOPS_API_KEY`` (or ``--api-key``), sent as
  ``X-API-KEY`` (:mod:`.client`);
- kinds: :mod:`.kinds` (payloads, what forces a replacement, what a destroy loses);
- reading: :mod:`.remote` (every dataset and project, paginated);
- executing: one :class:`~.kinds.base.Call` per change; a create whose answer was lost is
  looked up by name before it is sent again;
- datapoints: :mod:`.data` (the bucketed digest, the batched upload, the last-applied record);
- labelled data: :mod:`.labelled` (predict, export, annotations).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hlops.errors import ApiError, SettingsError
from hlops.plan import DataChange
from hlops.provider import CAPABILITIES, DataReport, DataSpec, Provider, Variable
from hlops.providers.humanloop.kinds import KINDS
from hlops.providers.humanloop.kinds.base import Call
from hlops.providers.humanloop.remote import RemoteState, read

if TYPE_CHECKING:  # requests is imported on connecting, not by `hlops validate`
    from hlops.providers.humanloop.client import CallCounter, Client, ClientOptions

DEFAULT_BASE_URL = "https://api.humanloop.com"
PAGE = 10_000  # datapoints a page when pull reads every row


class HumanloopProvider(Provider):
    name = "humanloop"
    kinds = KINDS
    capabilities = frozenset(CAPABILITIES)  # everything
    variables = (
        Variable("HLOPS_BASE_URL", "API base URL (default https://api.humanloop.com)"),
        Variable("HLOPS_API_KEY", "API key, sent as X-API-KEY", secret=True),
    )

    def __init__(self, client: Client):
        self.client = client

    def __repr__(self) -> str:  # never shows the key
        return f"HumanloopProvider({self.client.base_url!r})"

    # ----------------------------------------------------------------- connecting

    @classmethod
    def connect(cls, *, url: str | None, api_key: str | None, env: Mapping[str, str],
                settings: Any = None, options: ClientOptions | None = None) -> HumanloopProvider:
        url = (
            url
            or env.get("HLOPS_BASE_URL")
            or (getattr(settings, "base_url", None) if settings is not None else None)
            or DEFAULT_BASE_URL
        )
        if not url.startswith(("http://", "https://")):
            raise SettingsError(f"base URL {url!r} is not an http(s) URL")
        key = api_key or env.get("HLOPS_API_KEY")
        if not key:
            raise SettingsError(
                "no API key: set HLOPS_API_KEY (or pass --api-key), or use --local to run against "
                "the embedded reference server"
            )
        from hlops.providers.humanloop.client import Client

        return cls(Client(url, key, options))

    @property
    def target(self) -> str:
        return self.client.base_url

    @property
    def calls(self) -> CallCounter:
        return self.client.calls

    def stop(self) -> None:
        self.client.stop()

    # ----------------------------------------------------------------- reading

    def read(self, renames: Mapping[str, str] | None = None) -> RemoteState:
        return read(self.client, dict(renames or {}))

    # ----------------------------------------------------------------- executing

    def create(self, kind: str, after: dict[str, Any], state: RemoteState) -> dict:  # type: ignore[override]
        from hlops.providers.humanloop.client import AmbiguousCreate

        k = KINDS[kind]
        with state.lock:
            call = k.create_call(after, state.index)
        opts = self.client.options
        for attempt in range(opts.retries + 1):
            try:
                raw = self._send(call)
                break
            except AmbiguousCreate:
                # The answer was lost: it may or may not exist now. Look before sending
                # again -- as often as the client retries any other call (the second
                # attempt can be lost too).
                if attempt == opts.retries:
                    raise
                existing = self._find_by_name(k.collection, after["name"])
                if existing is not None:
                    raw = existing
                    break
                time.sleep(min(opts.backoff_max, opts.backoff_factor * 2**attempt))
        state.remember(kind, raw)
        return raw

    def update(self, kind: str, remote_id: Any, before: dict[str, Any], after: dict[str, Any],  # type: ignore[override]
               version: int | None, state: RemoteState) -> dict | None:
        with state.lock:
            call = KINDS[kind].update_call(remote_id, before, after, state.index, version)
        if call is None:
            return None
        raw = self._send(call)
        state.remember(kind, raw)
        return raw

    def delete(self, kind: str, remote_id: Any, version: int | None, state: RemoteState) -> None:  # type: ignore[override]
        try:
            self._send(KINDS[kind].delete_call(remote_id, version))
        except ApiError as exc:
            if exc.status != 404:  # already gone: what we wanted
                raise
        state.forget(kind, remote_id)

    def _send(self, call: Call) -> Any:
        return self.client.request(
            call.method, call.path, body=call.body, if_match=call.if_match, create=call.create
        )

    def _find_by_name(self, collection: str, name: str) -> dict | None:
        items = list(self.client.paginate(collection, name=name))
        return next((raw for raw in items if raw["name"] == name), None)

    # ----------------------------------------------------------------- datapoints

    def data_vouched(self, state: RemoteState, name: str, spec: DataSpec) -> bool:  # type: ignore[override]
        from hlops.providers.humanloop import data as hl_data  # numpy: only with data

        return hl_data.vouched(state.last_applied("dataset", name), spec.fields, spec.key, spec.rows, spec.source)

    def data_streamable(self, raw: dict | None, spec: DataSpec) -> bool:  # type: ignore[override]
        from hlops.providers.humanloop import data as hl_data  # numpy: only with data

        return hl_data.streamable(raw, spec.rows, spec.source)

    def plan_data(self, raw: dict | None, spec: DataSpec, *, show_data: bool = False,
                  cache_dir: Path | None = None) -> DataChange:
        from hlops.providers.humanloop import data as hl_data  # numpy: only with data

        return hl_data.plan_data(
            self.client if raw is not None else None,
            raw["id"] if raw is not None else None,
            (raw or {}).get("datapoint_count", 0),
            spec.fields,
            spec.key,
            spec.rows,
            prune=spec.prune,
            show_data=show_data,
            source=spec.source,
            cache_dir=cache_dir,
            last_applied=(raw or {}).get("last_applied"),
            listed=raw,
        )

    def apply_data(self, raw: dict, change: DataChange, spec: DataSpec, *, parallelism: int = 4,
                   progress: Callable[[Any], None] | None = None,
                   cache_dir: Path | None = None) -> DataReport:
        from hlops.providers.humanloop import data as hl_data  # numpy: only with data

        return hl_data.apply_data(
            self.client, raw["id"], change, spec.fields, spec.key, spec.rows,
            prune=spec.prune, parallelism=parallelism, progress=progress, cache_dir=cache_dir,
        )

    def remote_rows(self, raw: dict) -> Iterator[dict[str, Any]]:
        for item in self.client.paginate(f"/datasets/{raw['id']}/datapoints", limit=PAGE):
            yield item["data"]

    def row_count(self, raw: dict) -> int:
        return raw.get("datapoint_count") or 0

    # ----------------------------------------------------------------- labelled data

    def web(self) -> Any:
        from hlops.providers.humanloop.webapp import Web

        return Web(self.client)

    def labelled(self) -> Any:
        from hlops.providers.humanloop.labelled import Labelled

        return Labelled(self.client)
