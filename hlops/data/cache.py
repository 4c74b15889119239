"""A local cache of data-file summaries, and of the upload rate last seen.

``cache_dir/data/<id>.npz`` holds the fine-level :class:`~hlops.data.local.LocalSummary` of
one data file (counts, XORs of row hashes, byte sizes per bucket, the row count and the
fingerprint, and each row's 64-bit key point in file order: 8 bytes a row, so that a plan
from the cached summary against a remote that differs reads only the rows of the differing
buckets again, :func:`hlops.data.local.collect`) — never row content. The entry is valid only for the same

- file: resolved path, size, mtime and ctime (ns), inode and device. ``ctime`` cannot be set
  by a user, so an edit that restores the size and the mtime still invalidates;
- meaning: the fields and key, the hlops version and the source of the modules that define
  the canonical form, read data files and check their rows (`hlops.data.scan` checks the
  common JSONL row itself): a changed normalisation or check invalidates.

Like git's index, an entry is not written when the file changed less than
:data:`RACY_SECONDS` before it was read (an edit in the same timestamp tick could go
unseen), nor when the file's stat changed while it was read.

A second tier makes a touched-but-identical file cheap (a fresh ``git checkout`` or CI clone
gives every file a new mtime): the entry also keeps the SHA-256 of the file's bytes; when
the stat differs but the size is the same, the bytes are hashed (~0.2 s for 150 MB) and an
equal hash is a hit (the entry's stat is then refreshed).

``cache_dir/rates.json`` keeps, per API base URL, the rows/s and bytes/s of the last apply
that sent at least :data:`MIN_RATE_ROWS` rows; plans use it to estimate apply's time.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from hlops import __version__, canonical
from hlops.data.local import FINE, LocalSummary

FORMAT = 1
RACY_SECONDS = 2.0
MIN_RATE_ROWS = 1000


def _module_source_hash() -> str:
    h = hashlib.sha256()
    for mod in ("hlops.canonical", "hlops.datafile", "hlops.datareaders", "hlops.data.scan"):
        try:
            module = __import__(mod, fromlist=["_"])
            h.update(Path(module.__file__).read_bytes())
        except Exception:  # noqa: BLE001 - a module that is not there yet counts as absent
            h.update(b"-")
    return h.hexdigest()


_SOURCES: str | None = None


def signature(fields: dict[str, str], key: str | None, checks: str = "") -> str:
    """What the summary of a file depends on besides its bytes (``checks``: what the row
    checks depend on besides fields and key, see :class:`hlops.datafile.RowSource`)."""
    global _SOURCES
    if _SOURCES is None:
        _SOURCES = _module_source_hash()
    body = json.dumps(
        {"format": FORMAT, "fields": sorted(fields.items()), "key": key, "checks": checks,
         "hlops": __version__, "sources": _SOURCES, "fine": FINE, "zero": canonical.ZERO_HASH},
        sort_keys=True,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def file_state(path: Path) -> dict[str, Any] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return {
        "path": str(path.resolve()),
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "ctime_ns": st.st_ctime_ns,
        "ino": st.st_ino,
        "dev": st.st_dev,
    }


class SummaryCache:
    def __init__(self, cache_dir: Path):
        self.dir = Path(cache_dir) / "data"

    def _entry(self, state: dict[str, Any], sig: str) -> Path:
        ident = hashlib.sha256(f"{state['path']}\0{sig}".encode()).hexdigest()[:32]
        return self.dir / f"{ident}.npz"

    def load(self, path: Path, sig: str) -> LocalSummary | None:
        state = file_state(path)
        if state is None:
            return None
        entry = self._entry(state, sig)
        try:
            with np.load(entry, allow_pickle=False) as z:
                meta = json.loads(bytes(z["meta"]).decode())
                if meta.get("sig") != sig or meta.get("format") != FORMAT:
                    return None
                if meta.get("state") != state:
                    if meta["state"].get("size") != state["size"]:
                        return None
                    started = time.time()
                    hashed = hashed_content(path)
                    if hashed is None or hashed != (meta.get("content"), state):
                        return None
                    self._refresh(entry, meta, state, started)
                idx = z["idx"].astype(np.int64)
                summary = LocalSummary.empty()
                summary.count = int(meta["count"])
                summary.fingerprint = meta["fingerprint"]
                summary.bytes_total = int(meta["bytes_total"])
                summary.counts[idx] = z["counts"]
                summary.xor[idx] = z["xor"]
                summary.nbytes[idx] = z["nbytes"]
                summary.dup[idx] = z["dup"]
                points = z["points"] if "points" in z.files else None  # not in entries before it
                if points is not None and len(points) == summary.count:
                    summary.points = points
                return summary
        except (OSError, KeyError, ValueError):
            return None

    def save(self, path: Path, sig: str, before: dict[str, Any] | None, summary: LocalSummary,
             started: float) -> bool:
        """Store ``summary`` of ``path`` read from ``started`` on (``time.time()``), whose
        stat was ``before``; refused (False) when the file may have changed meanwhile."""
        if before is None or racy(before, started):
            return False
        hashed = hashed_content(path)  # once a process: a plan that checked a record hashed it
        if hashed is None or hashed[1] != before:
            return False
        content, after = hashed
        idx = np.flatnonzero(summary.counts).astype(np.uint32)
        meta = {
            "format": FORMAT, "state": after, "sig": sig, "content": content,
            "count": summary.count, "fingerprint": summary.fingerprint,
            "bytes_total": summary.bytes_total,
        }
        arrays = {"idx": idx, "counts": summary.counts[idx], "xor": summary.xor[idx],
                  "nbytes": summary.nbytes[idx], "dup": summary.dup[idx]}
        if summary.points is not None:
            arrays["points"] = summary.points
        return self._write(self._entry(after, sig), meta, arrays)

    def _refresh(self, entry: Path, meta: dict[str, Any], state: dict[str, Any], started: float) -> None:
        """Same bytes under a new stat: remember the new stat (unless it is racy)."""
        if racy(state, started):
            return
        with np.load(entry, allow_pickle=False) as z:
            arrays = {k: z[k] for k in ("idx", "counts", "xor", "nbytes", "dup", "points") if k in z.files}
        self._write(entry, {**meta, "state": state}, arrays)

    def _write(self, entry: Path, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> bool:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_suffix(f".{os.getpid()}.tmp.npz")
        try:
            np.savez(tmp, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)
            os.replace(tmp, entry)
        except OSError:
            tmp.unlink(missing_ok=True)
            return False
        return True


def racy(state: dict[str, Any], started: float) -> bool:
    """The file changed too shortly before ``started`` for its stat to be trusted."""
    return max(state["mtime_ns"], state["ctime_ns"]) / 1e9 >= started - RACY_SECONDS


_HASHED: dict[str, tuple[dict[str, Any], str]] = {}


def hashed_content(path: Path) -> tuple[str, dict[str, Any]] | None:
    """SHA-256 of the file's bytes and the stat it had throughout the read (None: missing,
    or it changed while being read). Remembered for the rest of the process under that
    stat, unless the stat was racy when hashed (too recent to tell a later edit of the same
    size apart): the record check and the cache's save of one plan read the file once."""
    before = file_state(path)
    if before is None:
        return None
    seen = _HASHED.get(before["path"])
    if seen is not None and seen[0] == before:
        return seen[1], before
    started = time.time()
    try:
        digest = content_hash(path)
    except OSError:
        return None
    if file_state(path) != before:
        return None
    remember_content(before, digest, started)
    return digest, before


def remember_content(state: dict[str, Any], digest: str, read_at: float) -> None:
    """Remember ``digest`` as the SHA-256 of the file of ``state`` (its stat before a pass
    that hashed the bytes it read, and still its stat after it), as :func:`hashed_content`
    would have; not when the stat was racy at ``read_at``."""
    if not racy(state, read_at):
        _HASHED[state["path"]] = (state, digest)


SAMPLES, SAMPLE_BYTES = 16, 64 << 10


def sampled_hash(path: Path) -> str | None:
    """SHA-256 of a file's size and of :data:`SAMPLES` runs of :data:`SAMPLE_BYTES` spread
    evenly over it (the whole file when it is smaller): 1 MiB read whatever its size. Other
    samples prove other bytes, so a plan of an edited file need not hash all of it to know
    it is not the one a record names; equal samples prove nothing (the full SHA-256 then
    tells). None when it cannot be read."""
    try:
        with open(path, "rb", buffering=0) as fh:
            size = os.fstat(fh.fileno()).st_size
            h = hashlib.sha256(size.to_bytes(8, "big"))
            if size <= SAMPLES * SAMPLE_BYTES:
                h.update(fh.read())
            else:
                step = (size - SAMPLE_BYTES) // (SAMPLES - 1)
                for i in range(SAMPLES):
                    h.update(os.pread(fh.fileno(), SAMPLE_BYTES, i * step))
    except OSError:
        return None
    return h.hexdigest()


def content_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


class RateStore:
    """The upload rate last seen, per API base URL (no secrets: only a hash of the URL)."""

    def __init__(self, cache_dir: Path):
        self.file = Path(cache_dir) / "rates.json"

    @staticmethod
    def _id(base_url: str) -> str:
        return hashlib.sha256(base_url.encode()).hexdigest()[:16]

    def _read(self) -> dict[str, Any]:
        try:
            return json.loads(self.file.read_text())
        except (OSError, ValueError):
            return {}

    def get(self, base_url: str | None) -> dict[str, float] | None:
        """The rate seen against ``base_url``; without one (a dataset still to create, the
        plan has no client), the most recent rate seen anywhere."""
        data = self._read()
        if base_url is not None and self._id(base_url) in data:
            return data[self._id(base_url)]
        if base_url is None and data:
            return max(data.values(), key=lambda r: r.get("when", 0))
        return None

    def put(self, base_url: str, rows: int, nbytes: int, calls: int, seconds: float) -> None:
        if rows < MIN_RATE_ROWS or seconds <= 0:
            return
        data = self._read()
        data[self._id(base_url)] = {
            "rows_per_s": rows / seconds,
            "bytes_per_s": nbytes / seconds,
            "seconds_per_call": seconds / max(calls, 1),
            "when": time.time(),
        }
        self.file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, self.file)


def estimate_seconds(rate: dict[str, float] | None, rows: int, nbytes: int) -> float | None:
    if not rate or rows <= 0:
        return None if not rate else 0.0
    return max(0.01, round(max(rows / rate["rows_per_s"], nbytes / rate["bytes_per_s"]), 2))
