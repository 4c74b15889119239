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
digest was read at -- or, after a streamed apply, when the answers of its writes prove as
much without the read (below) --, and only when the file's stat is the one its summary was
made from. When the file is racy (written too shortly before it was read for its stat to be trusted,
see :mod:`hlops.data.cache`; typically a file generated just before the apply), its rows
are read once more and must still make the summary's fingerprint (a streamed apply needs
not: its pass hashed the very bytes it read): the record, and so the calls an apply makes,
never depend on the file's age.

A streamed apply (:mod:`hlops.providers.humanloop.data.streamed`) proves the same without
the read, from the answers of its own writes (:func:`proven_version`, a pure function): it
read the remote empty (``datapoint_count`` 0) at version v0 before the first ``PUT``; every
write of datapoints bumps a dataset's version by exactly 1, and each ``PUT`` answers the
dataset as it committed (``version``, ``datapoint_count``; an idempotent replay of a retried
batch answers the first attempt's result). When its k acknowledged ``PUT`` answered exactly
the versions v0+1 .. v0+k, each count the previous plus the rows of that batch, and the
rows sent are the file's, no other write happened between the digest read and the last
``PUT``: the remote holds exactly the file's rows, its digest at L *is* the local summary
folded to L, and the record is written from the local summary (:class:`Proven`) with
``If-Match: v0+k`` (a write since: 412, no record, as after a read). Anything else (an
answer without a version -- another server --, versions with a gap or a repeat, a count
that does not add up, rows not all sent) proves nothing: the digest is read as above.

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

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hlops.providers.humanloop.client import Client
from hlops.data.cache import content_hash, file_state, hashed_content, racy, sampled_hash
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
    index: int = 0  # bytes of the index stored beside it (hlops.data.index; 0: none)
    sample: str = ""  # hlops.data.cache.sampled_hash of the file ("": a record made before it)

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
        strings = (rec.signature, rec.source_sha256, rec.fingerprint, rec.digest, rec.root, rec.sample)
        if not all(type(s) is str for s in strings) or not all(type(n) is int for n in (rec.rows, rec.buckets, rec.index)):
            return None
        return rec


def matching(raw: Any, signature: str, path: Path) -> tuple[Record, dict] | None:
    """The record (and the file's stat) when it was written for these very bytes under this
    signature: the file passed every check when it was applied, and would again."""
    rec = Record.from_json(raw)
    if rec is None or rec.signature != signature:
        return None
    if rec.sample and sampled_hash(path) != rec.sample:  # other bytes, told by 1 MiB of them
        return None
    hashed = hashed_content(path)
    if hashed is None or hashed[0] != rec.source_sha256:
        return None
    return rec, hashed[1]


@dataclass(frozen=True)
class Proven:
    """The remote holds exactly the summarised rows at ``version``, proven by the answers of
    the writes (:func:`proven_version`); ``root``: the local summary's :func:`root_hash`."""

    version: int
    root: str


def proven_version(v0: object, answers: Sequence[tuple[int, object, object]], rows: int) -> int | None:
    """The dataset's version after the writes when their answers prove that the remote holds
    exactly the ``rows`` rows sent, and nothing else; None when they do not.

    ``v0``: the version at which the remote digest was read empty (``datapoint_count`` 0);
    ``answers``: ``(rows sent, version, datapoint_count)`` of each acknowledged ``PUT``, in
    any order (:attr:`~hlops.providers.humanloop.data.upload.Uploader.put_answers`). Proven:
    sorted by version they are v0+1, v0+2, .. v0+k (each write bumps the version by one, so
    no other write took a version in between) and each count is the previous plus the rows
    of that batch, starting from 0 and ending at ``rows``. The answer is v0+k."""
    if type(v0) is not int or type(rows) is not int:
        return None
    if not all(type(version) is int and type(count) is int for _, version, count in answers):
        return None
    count = 0
    for step, (sent, version, answered) in enumerate(sorted(answers, key=lambda a: a[1]), 1):
        count += sent
        if sent <= 0 or version != v0 + step or answered != count:
            return None
    if count != rows:
        return None
    return v0 + len(answers)


def note(client: Client, dataset_id: int, key: str | None, *, signature: str, path: Path,
         state: dict | None, read_at: float, fingerprint: str, rows: int, buckets: int,
         local_hash: str, reread: Callable[[], str], proven: Proven | None = None,
         read_sha256: str | None = None, index: Callable[[str], int] | None = None) -> bool:
    """Write the record after an upload (see the module docstring); False when the facts
    do not allow it (the next plan then compares rows, as without a record).

    ``proven`` (a streamed apply whose write answers proved the remote's content, see
    :func:`proven_version`): the record is the local summary's (``local_hash`` at
    ``buckets``, ``proven.root``), written with ``If-Match`` on ``proven.version``, without
    reading the remote digest. Without it, the digest at ``buckets`` is read and must hash
    to ``local_hash``.

    ``reread`` reads the file's rows again and answers their fingerprint. It is called only
    for a *racy* file (changed too shortly before its summary was read for the stat to
    tell a later edit apart): as git does for a racy index entry, the content is compared
    instead of the stat -- the bytes hashed here must still make the summary's rows. So
    whether an apply notes the record does not depend on how old the data file is.

    ``read_sha256``: the SHA-256 of the very bytes the summary's rows were read from (a
    streamed pass hashes them as it reads); then the file is not read again, racy or not:
    whatever it holds now, the record ties those bytes to those rows, and a later edit of
    the file shows as other bytes to the next plan.

    ``index(sha256)`` stores the file's index (:mod:`hlops.data.index`) for the bytes of
    that SHA-256 and answers its size (0: none stored), noted in the record: the next plan
    of an edit of the file may then be a delta
    (:mod:`~hlops.providers.humanloop.data.delta`). It is stored before the record, which
    names it: an index whose record was not written (a 412) names other bytes than the
    next record does, and is not used."""
    if state is None:
        return False
    if read_sha256 is not None:
        hashed: tuple[str, dict] | None = (read_sha256, state)
    elif racy(state, read_at):
        hashed = _verified_sha256(path, state, fingerprint, reread)
    else:
        hashed = hashed_content(path)
    if hashed is None or hashed[1] != state:
        return False
    if proven is None:
        digest = read_digest(client, dataset_id, key, buckets)
        if digest.items_hash != local_hash or digest.key != key:
            return False
        root, version = root_hash(digest.counts, digest.xor), digest.version
    else:
        root, version = proven.root, proven.version
    sample = sampled_hash(path)
    if sample is None or file_state(path) != state:
        return False
    stored = index(hashed[0]) if index is not None else 0
    record = Record(FORMAT, signature, hashed[0], fingerprint, rows, buckets, local_hash, root, stored, sample)
    try:
        client.request("PATCH", f"/datasets/{dataset_id}", body={FIELD: record.to_json()},
                       if_match=version)
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
