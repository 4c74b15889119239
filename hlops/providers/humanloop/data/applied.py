"""The last-applied record of a dataset: which data file bytes its datapoints came from.

Like kubectl's ``last-applied-configuration`` annotation. After :func:`hlops.data.apply_data`
has written a dataset's datapoints from a data file (every batch acknowledged), it notes on
the dataset (``PATCH /datasets/{id} {"last_applied": ...}``)::

    {"format": 1, "signature": <hlops.data.cache.signature of fields, key and checks>,
     "source_sha256": <SHA-256 of the file's bytes>, "fingerprint": <the summary's>,
     "rows": <row count>, "buckets": L, "digest": <items hash of the remote digest at L>,
     "root": <items hash of that digest folded to one bucket>}

hashes and counts only, never row content. It is written only when the remote digest read
right after the upload equals the local summary folded to L (the remote holds exactly the
file's rows: no row left alone, no concurrent write), with ``If-Match`` on the version that
digest was read at, and only when the file's stat is the one its summary was made from.
When the file is racy (written too shortly before it was read for its stat to be trusted,
see :mod:`hlops.data.cache`; typically a file generated just before the apply), its rows
are read once more and must still make the summary's fingerprint: the record, and so the
calls an apply makes, never depend on the file's age.

A plan then trusts a record whose format and signature are the current ones when the file's
bytes hash to ``source_sha256`` and the remote still holds the rows applied: a no-op, decided
without reading a row. Whether the remote still holds them is read from the dataset list
when the server answered ``GET /datasets?include=digest`` (each dataset's digest at one
bucket: its ``root`` must equal the record's, with the same key and count -- no call of its
own), else from the remote digest at L, which must still hash to ``digest`` (one call; also
for a record written before ``root`` existed). Anything else falls back to the full
comparison.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hlops.providers.humanloop.client import Client
from hlops.data.cache import content_hash, file_state, racy
from hlops.providers.humanloop.data.digest import RemoteDigest, items_hash, read_digest
from hlops.errors import ApiError, HlopsError

FORMAT = 1
FIELD = "last_applied"


@dataclass(frozen=True)
class Record:
    format: int
    signature: str
    source_sha256: str
    fingerprint: str
    rows: int
    buckets: int
    digest: str
    root: str = ""  # "": a record written before the root existed (checked by `digest` only)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: Any) -> Record | None:
        """The record in a dataset's ``last_applied`` (None: absent or not one of ours)."""
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            return None
        try:
            rec = cls(**{name: raw[name] for name in cls.__dataclass_fields__ if name in raw})
        except TypeError:  # a member missing
            return None
        strings = (rec.signature, rec.source_sha256, rec.fingerprint, rec.digest, rec.root)
        if not all(type(s) is str for s in strings) or not all(type(n) is int for n in (rec.rows, rec.buckets)):
            return None
        return rec


# SHA-256 of data files hashed in this process, by stat (the planner's check and the plan
# of the same dataset ask for the same file).
_HASHED: dict[str, tuple[dict, str]] = {}


def source_sha256(path: Path) -> tuple[str, dict] | None:
    """SHA-256 of the file's bytes and the stat it had throughout the read (None: missing,
    or it changed while being read)."""
    before = file_state(path)
    if before is None:
        return None
    seen = _HASHED.get(before["path"])
    if seen is not None and seen[0] == before:
        return seen[1], before
    try:
        digest = content_hash(path)
    except OSError:
        return None
    if file_state(path) != before:
        return None
    _HASHED[before["path"]] = (before, digest)
    return digest, before


def matching(raw: Any, signature: str, path: Path) -> tuple[Record, dict] | None:
    """The record (and the file's stat) when it was written for these very bytes under this
    signature: the file passed every check when it was applied, and would again."""
    rec = Record.from_json(raw)
    if rec is None or rec.signature != signature:
        return None
    hashed = source_sha256(path)
    if hashed is None or hashed[0] != rec.source_sha256:
        return None
    return rec, hashed[1]


def note(client: Client, dataset_id: int, key: str | None, *, signature: str, path: Path,
         state: dict | None, read_at: float, fingerprint: str, rows: int, buckets: int,
         local_hash: str, reread: Callable[[], str]) -> bool:
    """Write the record after an upload (see the module docstring); False when the facts
    do not allow it (the next plan then compares rows, as without a record).

    ``reread`` reads the file's rows again and answers their fingerprint. It is called only
    for a *racy* file (changed too shortly before its summary was read for the stat to
    tell a later edit apart): as git does for a racy index entry, the content is compared
    instead of the stat -- the bytes hashed here must still make the summary's rows. So
    whether an apply notes the record does not depend on how old the data file is."""
    if state is None:
        return False
    if racy(state, read_at):
        hashed = _verified_sha256(path, state, fingerprint, reread)
    else:
        hashed = source_sha256(path)
    if hashed is None or hashed[1] != state:
        return False
    digest = read_digest(client, dataset_id, key, buckets)
    if digest.items_hash != local_hash or digest.key != key:
        return False
    record = Record(FORMAT, signature, hashed[0], fingerprint, rows, buckets, digest.items_hash,
                    root_hash(digest.counts, digest.xor))
    try:
        client.request("PATCH", f"/datasets/{dataset_id}", body={FIELD: record.to_json()},
                       if_match=digest.version)
    except ApiError:  # 412: written to since the digest; 422: a server without the field
        return False
    return True


def _verified_sha256(path: Path, state: dict, fingerprint: str,
                     reread: Callable[[], str]) -> tuple[str, dict] | None:
    """SHA-256 of a racy file's bytes, when the file (same stat before and after) still
    holds the rows of ``fingerprint``; not kept in the per-process cache, whose key is the
    very stat a racy file cannot be trusted by."""
    if file_state(path) != state:
        return None
    try:
        digest = content_hash(path)
        same = reread() == fingerprint
    except (OSError, HlopsError):
        return None
    if not same or file_state(path) != state:
        return None
    return digest, state


def trusted_digest(client: Client, dataset_id: int, key: str | None, rec: Record) -> tuple[bool, RemoteDigest]:
    """Whether the remote still holds exactly the rows applied, and the digest read (at the
    record's level: a plan falling back reuses it)."""
    digest = read_digest(client, dataset_id, key, rec.buckets)
    same = digest.items_hash == rec.digest and digest.key == key and digest.total == rec.rows
    return same, digest


def root_hash(counts: np.ndarray, xor: np.ndarray) -> str:
    """The items hash of a digest (or a summary's fold: int64 counts, uint8[n, 32] XORs)
    folded to one bucket: the one hash that names a dataset's whole content."""
    return items_hash(np.array([counts.sum()], np.int64), np.bitwise_xor.reduce(xor, axis=0).reshape(1, 32))


def listed_root(listed: Any) -> tuple[str | None, int, str] | None:
    """``(key, count, root hash)`` of a dataset's ``digest`` in a list answered with
    ``include=digest`` (see docs/api.md); None when absent or malformed (a server that
    ignores ``include``)."""
    if not isinstance(listed, dict):
        return None
    key, count, hexed = listed.get("key"), listed.get("count"), listed.get("hash")
    if not (key is None or type(key) is str) or type(count) is not int or type(hexed) is not str:
        return None
    try:
        xor = np.frombuffer(bytes.fromhex(hexed), np.uint8)
    except ValueError:
        return None
    if len(xor) != 32:
        return None
    return key, count, items_hash(np.array([count], np.int64), xor.reshape(1, 32))


def trusted_listing(rec: Record, key: str | None, listed: Any) -> bool | None:
    """Whether the listed digest shows the remote still holds exactly the rows applied;
    None when it cannot tell (a record without ``root``, or no digest in the list): then
    :func:`trusted_digest` asks."""
    found = listed_root(listed)
    if not rec.root or found is None:
        return None
    listed_key, count, root = found
    return root == rec.root and listed_key == key and count == rec.rows
