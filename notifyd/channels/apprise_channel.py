"""The `apprise` channel: any Apprise URL (Discord, Pushover, email, Telegram, ntfy, json://, …).

Apprise's own retries are turned off (the queue owns retries); its per-service result and log
lines become the attempt's detail, with the URL in Apprise's privacy form. Only the plugin the
URL names is imported (`apprise_plugins`); its HTTP requests go over the service's kept-alive
session (`apprise_http`); and a plugin's pace between messages (Apprise sleeps for it) is kept by
handing a message whose turn has not come back to the queue, due at its turn (`pacing`).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import apprise
from apprise.attachment.memory import AttachMemory

from notifyd.attachments import DEFAULT_BUDGET, Picture, Pictures, gather
from notifyd.channels.apprise_http import ServiceSession
from notifyd.channels.apprise_plugins import instantiate
from notifyd.channels.kinds import url_placeholders
from notifyd.channels.pacing import Pace
from notifyd.config import is_loopback
from notifyd.config.model import ServiceConfig
from notifyd.digest import render_digest
from notifyd.errors import Deferred, PermanentError, TransientError
from notifyd.model import Delivery, StoredEvent
from notifyd.templates import TemplateProblem, render

_STATUS = re.compile(r"error=(\d{3})")
_LEVELS = {"info": apprise.NotifyType.INFO, "success": apprise.NotifyType.SUCCESS,
           "warning": apprise.NotifyType.WARNING, "failure": apprise.NotifyType.FAILURE}
TRANSIENT_STATUS = frozenset({408, 425, 429})
log = logging.getLogger("notifyd.worker")


placeholders = url_placeholders       # the {names} in a URL that a run's context fills in


def pace_of(plugin: apprise.plugins.NotifyBase) -> float:
    """Seconds between two messages to this plugin's server: what the plugin declares
    (`request_rate_per_sec`, seconds despite its name; Apprise's default is 5.5), or none when
    every host it names is this machine's (the pace spares someone else's server)."""
    hosts = [h for h in (getattr(plugin, "host", None), getattr(plugin, "smtp_host", None)) if h]
    if hosts and all(is_loopback(str(h).strip("[]")) for h in hosts):
        return 0.0
    return max(0.0, float(getattr(plugin, "request_rate_per_sec", 0) or 0))


def _privacy_url(plugin: apprise.plugins.NotifyBase) -> str:
    """Apprise's privacy form of the URL, without the long tail of default query options."""
    return plugin.url(privacy=True).split("?", 1)[0]


class AppriseChannel:
    """One Apprise object holding this service's single URL, one HTTP session, one pace."""

    def __init__(self, service: ServiceConfig, timeout: float) -> None:
        self.name = service.name
        self.timeout = timeout
        self._http = ServiceSession()
        self._pace: Pace | None = None             # set from the first plugin: its request_rate_per_sec
        self._pace_lock = threading.Lock()
        self.templates = service.options.get("templates")
        # attach = true: bytes of pictures one message may carry (attach_max); 0 when it carries none
        self.attach_max = int(service.options.get("attach_max") or DEFAULT_BUDGET) \
            if service.options.get("attach") else 0
        self.url_template = service.options["url"]
        self.placeholders = placeholders(self.url_template)
        self._apprise = apprise.Apprise()
        if self.placeholders:                       # filled per delivery from the run's context
            self._invalid = False
            self.target = self.url_template.split("://", 1)[0] + "://… (per run)"
            return
        plugin = instantiate(service.options["url"])
        self._invalid = plugin is None
        if plugin is None:
            self.target = f"{service.options['url'].split('://', 1)[0]}://…"
            return
        self._prepare(plugin, timeout)
        self._apprise.add(plugin)
        self.target = _privacy_url(plugin)

    @staticmethod
    def _prepare(plugin: apprise.plugins.NotifyBase, timeout: float) -> None:
        plugin.retry = 0                            # our queue retries, with backoff and a record
        plugin.socket_connect_timeout = min(timeout, 10.0)
        plugin.socket_read_timeout = timeout
        if not pace_of(plugin):                     # a server on this machine: no sleeps between its requests
            plugin.request_rate_per_sec = 0

    def _for_event(self, stored: StoredEvent) -> tuple[apprise.Apprise, str]:
        """The Apprise object for this delivery: the service's own, or one with {placeholders} filled."""
        if not self.placeholders:
            return self._apprise, self.target
        context = stored.event.media.get("context") or {}
        missing = [key for key in self.placeholders if key not in context]
        if missing:
            raise PermanentError(f"service {self.name!r}: its URL needs {', '.join(missing)} from the run's "
                                 f"context, which has {', '.join(sorted(context)) or 'nothing'}")
        url = self.url_template
        for key in self.placeholders:
            url = url.replace("{" + key + "}", quote(str(context[key]), safe=""))
        plugin = instantiate(url)
        if plugin is None:
            raise PermanentError(f"service {self.name!r}: no Apprise plugin accepts its URL once filled in")
        self._prepare(plugin, self.timeout)
        one = apprise.Apprise()
        one.add(plugin)
        return one, _privacy_url(plugin)

    @staticmethod
    def describe(service: ServiceConfig) -> str:
        """The URL in Apprise's privacy form (secrets shortened to a hint)."""
        url = service.options["url"]
        names = placeholders(url)
        for key in names:                             # a stand-in value, so Apprise can mask the rest
            url = url.replace("{" + key + "}", "0" * 8)
        plugin = instantiate(url)
        if plugin is not None and names:
            return f"{_privacy_url(plugin)} ({', '.join('{' + n + '}' for n in names)} per run)"
        if plugin is None:
            return f"{service.options['url'].split('://', 1)[0]}://… (invalid)"
        return _privacy_url(plugin)

    def deliver(self, delivery: Delivery) -> str:
        if self._invalid:
            raise PermanentError(f"invalid Apprise URL for service {self.name!r} ({self.target}): "
                                 "no Apprise plugin accepts it")
        try:
            stored = delivery.event
            # A digest tells every event of its window in one message (notifyd.digest).
            message = render_digest(delivery.events, self.templates) if delivery.digest \
                else render(stored.event, self.templates)
        except TemplateProblem as exc:
            raise PermanentError(f"service {self.name!r}: {exc}") from None
        notifier, target = self._for_event(stored)
        self._wait_for_turn(delivery, notifier, target)
        with self._attachments(delivery, notifier) as (attach, pictures), self._http.active():
            result = notifier.notify(body=message.body, title=message.title,
                                     notify_type=_LEVELS.get(message.level, apprise.NotifyType.INFO),
                                     log_level=logging.INFO, attach=attach)
        try:
            services = list(result)
            logs = [f"{e.level}: {e.message}" for r in services for a in r.attempts for e in a.logs]
            status = services[0].status.name if services else result.status.name
            detail = json.dumps({"service": services[0].name if services else None, "url": target,
                                 "status": status, "logs": logs[-20:], **pictures})
            if result:
                return detail
            if not services:
                raise PermanentError(f"Apprise sent nothing for {target} ({result.status.name})", detail)
            codes = [int(m.group(1)) for line in logs for m in _STATUS.finditer(line)]
            if services[0].status == apprise.AppriseResultStatus.TIMEOUT:
                raise TransientError(f"timed out sending to {target}", detail)
            if codes:
                code = codes[-1]
                if code in TRANSIENT_STATUS or code >= 500:
                    raise TransientError(f"HTTP {code} from {target}", detail)
                raise PermanentError(f"HTTP {code} from {target}: the receiver refused it "
                                     "(check the URL and its credentials)", detail)
            last = logs[-1].split(": ", 1)[-1] if logs else "delivery failed"
            raise TransientError(f"{last} ({target})", detail)
        finally:
            result.close()

    def _wait_for_turn(self, delivery: Delivery, notifier: apprise.Apprise, target: str) -> None:
        """Deferred (back to the queue, due at its turn) while this message's turn has not come;
        `services test` goes at once. Apprise's own sleep before a plugin's first request of a
        message is skipped (its last-I/O mark cleared): the pace between messages is kept here,
        and Apprise still paces the requests within one message."""
        plugins = list(notifier)
        with self._pace_lock:
            if self._pace is None:
                self._pace = Pace(max((pace_of(p) for p in plugins), default=0.0))
        pace = self._pace
        until = None if delivery.data.get("test") else pace.turn(delivery.job_id)
        if until is not None:
            raise Deferred(until, f"one message every {pace.interval:g} s to {target}")
        for plugin in plugins:
            plugin._last_io_datetime = None

    def close(self) -> None:
        """The service's kept-alive connections closed (its config changed, or it was removed)."""
        self._http.close()

    @contextmanager
    def _attachments(self, delivery: Delivery, notifier: apprise.Apprise
                     ) -> Iterator[tuple[list[AttachMemory] | None, dict[str, Any]]]:
        """With `attach = true`: the pictures this message carries, as Apprise attachments, and
        what the attempt's detail says of them. Each picture left out is logged here, once per
        attempt; the message goes without it. Anything written for Apprise is gone on exit."""
        if not self.attach_max:
            yield None, {}
            return
        if not any(getattr(plugin, "attachment_support", False) for plugin in notifier):
            yield None, {"attachments": [], "attachment_errors": ["this Apprise service takes no attachments"]}
            return
        events = delivery.events if delivery.digest else [delivery.event]
        pictures: Pictures = gather([stored.event.media for stored in events], budget=self.attach_max,
                                    allow_private=delivery.allow_private, timeout=self.timeout)
        for missed in pictures.missed:
            log.warning("job %d %s: picture %s not attached: %s", delivery.job_id, self.name, missed.source,
                        missed.reason)
        spill = _Spill()
        try:
            yield [_PictureAttachment(p, spill) for p in pictures.found] or None, pictures.detail()
        finally:
            spill.close()


class _Spill:
    """A private folder, made only if a plugin asks for a file, removed when the message has gone."""

    def __init__(self) -> None:
        self._folder: Path | None = None
        self._files: dict[str, str] = {}

    def write(self, name: str, data: bytes) -> str:
        if name not in self._files:
            if self._folder is None:
                self._folder = Path(tempfile.mkdtemp(prefix="notifyd-pictures-"))
            path = self._folder / name              # names are [A-Za-z0-9._-] (notifyd.attachments)
            path.write_bytes(data)
            self._files[name] = str(path)
        return self._files[name]

    def close(self) -> None:
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
            self._files.clear()


class _PictureAttachment(AttachMemory):
    """A picture handed to Apprise from memory. The few plugins that open an attachment by its path
    (form://, mailgun://, ses://, apprise://, mastodon://, twitter://) get a copy in the spill folder."""

    def __init__(self, picture: Picture, spill: _Spill) -> None:
        super().__init__(content=picture.data, name=picture.name, mimetype=picture.content_type)
        self._spill = spill

    @property
    def path(self) -> str | None:
        return self._spill.write(self.name, self._data.getvalue()) if self.exists() else None
