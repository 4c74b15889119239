"""What apply shows while it runs: one line per finished step, a progress bar per upload."""

from __future__ import annotations

import sys
import threading
from typing import Any

import click
from tqdm import tqdm

from hlops.cli.common import plural

STATUS_COLOUR = {"done": "green", "failed": "red", "skipped": "yellow"}


class EventPrinter:
    """Turns apply events into lines on stderr (and tqdm bars when stderr is a terminal)."""

    def __init__(self, enabled: bool = True, color: bool = False):
        self.enabled = enabled
        self.color = color
        self.tty = sys.stderr.isatty()
        self._bars: dict[str, tqdm] = {}
        self._lock = threading.Lock()

    def __call__(self, event: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with self._lock:
            kind = event["type"]
            if kind == "progress":
                self._progress(event["address"], event["event"])
            elif kind in STATUS_COLOUR:
                self._close_bar(event["address"])
                text = f"{event['address']}: {event['detail'] or kind}"
                if self.color:
                    text = click.style(text, fg=STATUS_COLOUR[kind])
                click.echo(text, err=True)
            elif kind == "interrupted":
                for address in list(self._bars):
                    self._close_bar(address)
                click.echo("Interrupt received: finishing the calls in flight, sending no new one "
                           "(Ctrl-C again to quit at once).", err=True)
            elif kind == "start" and not self.tty:
                click.echo(f"{event['address']}: {event['action']}...", err=True)

    def _progress(self, address: str, event: Any) -> None:
        if not self.tty:
            return
        total = _field(event, "rows_total", "total") or None  # 0: not counted yet (a streamed apply)
        done = _field(event, "rows_done", "done")
        bar = self._bars.get(address)
        if bar is None:
            bar = tqdm(total=total, desc=address, unit="rows", unit_scale=True, file=sys.stderr, leave=False, dynamic_ncols=True)
            self._bars[address] = bar
        if total is not None and bar.total != total:
            bar.total = total
        if done is not None:
            bar.update(done - bar.n)

    def _close_bar(self, address: str) -> None:
        bar = self._bars.pop(address, None)
        if bar is not None:
            bar.close()

    def close(self) -> None:
        with self._lock:
            for address in list(self._bars):
                self._close_bar(address)

    def summary(self, report: Any) -> str:
        done = report.by_status("done")
        failed = report.by_status("failed")
        skipped = report.by_status("skipped")
        lines = []
        for result in failed:
            lines.append(f"  failed:  {result.address}: {result.detail}")
        for result in skipped:
            lines.append(f"  skipped: {result.address}: {result.detail}")
        head = (
            f"Apply {'complete' if report.ok else 'incomplete'}: {len(done)} done, "
            f"{len(failed)} failed, {len(skipped)} skipped; {plural(report.calls, 'API call')} "
            f"({plural(report.writes, 'write')}) in {report.seconds:.2f} s."
        )
        if self.color:
            head = click.style(head, fg="green" if report.ok else "red", bold=True)
        return "\n".join([head, *lines])


def _field(event: Any, *names: str) -> Any:
    for name in names:
        if isinstance(event, dict) and name in event:
            return event[name]
        if hasattr(event, name):
            return getattr(event, name)
    return None
