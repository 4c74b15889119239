"""The local data pass, the same for every provider: a data file's rows checked and summarised.

- :mod:`~hlops.data.scan` (per-row work), :mod:`~hlops.data.local` (the summary of 65,536
  buckets and the second pass that collects rows of chosen buckets),
  :mod:`~hlops.data.parallel` (a big JSONL file split between worker processes);
- :mod:`~hlops.data.summary` (one summary per file and process), :mod:`~hlops.data.cache`
  (summaries and upload rates on disk);
- :mod:`~hlops.data.compare` (pure: local rows vs remote ``{id, key, hash}`` rows, the
  cost model of what to read next).

What the remote holds, and how it is read and written, is the provider's business
(:meth:`hlops.provider.Provider.plan_data`); a provider builds its datapoint diff from these
pieces. Details: ``docs/datapoints.md``.
"""

from __future__ import annotations

from pathlib import Path

from hlops.data.local import RowSource
from hlops.data.summary import load_summary

__all__ = ["RowSource", "prepare"]


def prepare(
    fields: dict[str, str], key: str | None, rows: RowSource, *, source: str | None = None,
    cache_dir: Path | None = None,
) -> None:
    """Check a dataset's data before anything talks to the API: the local summary is made
    (every row checked; ManifestError with line numbers) or found valid in the cache.
    The provider's datapoint diff then reuses it instead of reading the file again."""
    load_summary(rows, fields, key, source, cache_dir, source or "inline data")
