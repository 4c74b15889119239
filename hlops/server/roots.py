"""A dataset's digest root: the XOR of every datapoint's stored hash (pure helpers).

The root is the digest at one bucket -- ``GET /datasets/{id}/digest?buckets=1`` answers it
as its single item's ``hash`` -- whatever the key, since at one bucket every datapoint is in
bucket 0. The stores keep it in ``datasets.hash_xor``, updated in the transaction of every
datapoint write (insert: XOR the new hashes in; PATCH: XOR the old ones out and the new ones
in; delete: XOR the deleted ones out), so ``GET /datasets?include=digest`` answers it for
every dataset without reading a datapoint. The stored root is valid for the version in
``datasets.hash_xor_version``; when that is not the dataset's ``version`` (a dataset made
before the columns existed, or written by a server process of an older build since: it
bumps the version, not the root) it is computed from the stored hashes when needed, and
stored by the next write.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

ZERO = bytes(32)  # the root of an empty dataset


def xor_hashes(hashes: Iterable[bytes]) -> bytes:
    """XOR of 32-byte hashes (``ZERO`` for none)."""
    joined = b"".join(bytes(h) for h in hashes)
    if not joined:
        return ZERO
    words = np.frombuffer(joined, dtype=np.uint64).reshape(-1, 4)
    return np.bitwise_xor.reduce(words, axis=0).tobytes()


def xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(32, "big")


def listed_digest(key: str | None, count: int, root: bytes) -> dict:
    """What ``?include=digest`` adds to a dataset in a list: the digest at one bucket."""
    return {"key": key, "count": count, "hash": bytes(root).hex()}
