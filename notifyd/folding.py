"""Folding: one notification for one Sonarr download that arrives as several webhooks.

Sonarr tells of a download twice over, under one `downloadId`: a Download body per imported file
(`episodeFile`, `isUpgrade`, `deletedFiles`) and, with "On Import Complete", one more Download
that lists every file (`episodeFiles`, no `isUpgrade`; notifyd.sources.arr marks it
`import_complete`). Told as sent, a season pack is N+1 notifications. Folded, it is one per service:

- a per-file event waits `server.fold_window` before its notifications go, and each later
  event of the same download pushes that wait of the earlier ones (`Tx.delay_jobs`): a download
  still importing is not told of yet;
- the Import Complete event ends the still-waiting notifications of the per-file events, for the
  services it notifies itself, as `skipped` "folded into event N" (`Tx.skip_jobs`), and, when
  every per-file event of its download before it was an upgrade, is recorded as an upgrade that
  says what it replaced (once per quality), since its own body cannot say so;
- a per-file event that arrives after the Import Complete of its download notifies no service
  the Import Complete notified.

Without Import Complete each file keeps its own notification, only later. Library refreshes are
never held here: every event plans its own, and refreshes of one folder collapse while they wait
(scan_delay), so the pack is one scan per server. The events of a download are found among the
events the same source sent within LOOKBACK.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from notifyd.fanout import is_digest
from notifyd.model import Event, JobKind, JobSpec, StoredEvent
from notifyd.sources.arr import tally
from notifyd.store import Tx

SUMMARISED_BY = frozenset({"sonarr"})           # source types that send an Import Complete body
KINDS = ("download", "upgrade")
DELIVERIES = (JobKind.NOTIFY, JobKind.CALLBACK)  # what is folded: messages, not library refreshes
LOOKBACK = 6 * 3600.0                           # how far back the earlier webhooks of a download are looked for


@dataclass(frozen=True)
class Fold:
    """An event of a download told in several webhooks, and the earlier events of that download."""

    event: Event                       # as it is to be stored (an Import Complete may have become an upgrade)
    earlier: tuple[StoredEvent, ...]

    @property
    def summary(self) -> bool:
        return is_summary(self.event)


def is_summary(event: Event) -> bool:
    return bool(event.media.get("import_complete"))


def find_fold(tx: Tx, event: Event, now: float) -> Fold | None:
    """The fold this event belongs to, or None: only a Download of a sender that summarises its
    downloads, carrying a downloadId, folds."""
    download_id = event.media.get("download_id")
    if event.source_type not in SUMMARISED_BY or event.kind not in KINDS or not isinstance(download_id, str):
        return None
    earlier = tuple(e for e in tx.recent_events(event.source, now - LOOKBACK, KINDS)
                    if e.event.media.get("download_id") == download_id)
    if is_summary(event):
        event = summarised(event, [e.event for e in earlier if not is_summary(e.event)])
    return Fold(event, earlier)


def summarised(summary: Event, files: Sequence[Event]) -> Event:
    """The Import Complete event, an upgrade when every per-file event of its download was one:
    what they replaced, and that once per quality."""
    if summary.kind != "download" or not files or any(e.kind != "upgrade" for e in files):
        return summary
    replaced: list[dict[str, Any]] = [dict(old) for e in files for old in e.media.get("replaced") or []]
    media = dict(summary.media)
    if replaced:
        media.update(replaced=replaced, replaces=tally(replaced))
    return replace(summary, kind="upgrade", media=media)


def plan_fold(tx: Tx, fold: Fold, event_id: int, specs: list[JobSpec], now: float, window: float) -> list[JobSpec]:
    """The jobs to enqueue for the folded event (stored as `event_id`), after settling the jobs
    of the earlier events of its download (see the module docstring)."""
    files = [e.id for e in fold.earlier if not is_summary(e.event)]
    summaries = [e.id for e in fold.earlier if is_summary(e.event)]
    if fold.summary:
        # A digest job gathers other events too: it is never skipped; the digest tells the
        # download once (notifyd.digest drops the per-file events an Import Complete sums up).
        services = {s.service for s in specs if s.kind in DELIVERIES and not is_digest(s)}
        tx.skip_jobs(files, services, DELIVERIES, f"folded into event {event_id}", now)
        return specs
    if summaries:
        told = set().union(*(tx.event_services(i) for i in summaries))
        return [s for s in specs if not (s.kind in DELIVERIES and s.service in told)]
    if window <= 0:
        return specs
    tx.delay_jobs(files, DELIVERIES, now + window)
    return [replace(s, delay=max(s.delay, window)) if s.kind in DELIVERIES else s for s in specs]
