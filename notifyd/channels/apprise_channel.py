"""The `apprise` channel: any Apprise URL (Discord, Pushover, email, Telegram, ntfy, json://, …).

Apprise's own retries are turned off (the queue owns retries); its per-service result and log
lines become the attempt's detail, with the URL in Apprise's privacy form.
"""

from __future__ import annotations

import json
import logging
import re

import apprise

from notifyd.config import ServiceConfig
from notifyd.errors import PermanentError, TransientError
from notifyd.history import StoredEvent
from notifyd.templates import TemplateProblem, render
from notifyd.queue import Job

_STATUS = re.compile(r"error=(\d{3})")
_LEVELS = {"info": apprise.NotifyType.INFO, "success": apprise.NotifyType.SUCCESS,
           "warning": apprise.NotifyType.WARNING, "failure": apprise.NotifyType.FAILURE}
TRANSIENT_STATUS = frozenset({408, 425, 429})


def _privacy_url(plugin: apprise.plugins.NotifyBase) -> str:
    """Apprise's privacy form of the URL, without the long tail of default query options."""
    return plugin.url(privacy=True).split("?", 1)[0]


class AppriseChannel:
    """One Apprise object holding this service's single URL."""

    def __init__(self, service: ServiceConfig, timeout: float) -> None:
        self.name = service.name
        self.templates = service.options.get("templates")
        self._apprise = apprise.Apprise()
        plugin = apprise.Apprise.instantiate(service.options["url"])
        self._invalid = plugin is None
        if plugin is None:
            self.target = f"{service.options['url'].split('://', 1)[0]}://…"
            return
        plugin.retry = 0                            # our queue retries, with backoff and a record
        plugin.socket_connect_timeout = min(timeout, 10.0)
        plugin.socket_read_timeout = timeout
        self._apprise.add(plugin)
        self.target = _privacy_url(plugin)

    @staticmethod
    def describe(service: ServiceConfig) -> str:
        """The URL in Apprise's privacy form (secrets shortened to a hint)."""
        plugin = apprise.Apprise.instantiate(service.options["url"])
        if plugin is None:
            return f"{service.options['url'].split('://', 1)[0]}://… (invalid)"
        return _privacy_url(plugin)

    def deliver(self, job: Job, stored: StoredEvent) -> str:
        if self._invalid:
            raise PermanentError(f"invalid Apprise URL for service {self.name!r} ({self.target}): "
                                 "no Apprise plugin accepts it")
        try:
            message = render(stored.event, self.templates)
        except TemplateProblem as exc:
            raise PermanentError(f"service {self.name!r}: {exc}") from None
        result = self._apprise.notify(body=message.body, title=message.title,
                                      notify_type=_LEVELS.get(message.level, apprise.NotifyType.INFO),
                                      log_level=logging.INFO)
        try:
            services = list(result)
            logs = [f"{e.level}: {e.message}" for r in services for a in r.attempts for e in a.logs]
            status = services[0].status.name if services else result.status.name
            detail = json.dumps({"service": services[0].name if services else None, "url": self.target,
                                 "status": status, "logs": logs[-20:]})
            if result:
                return detail
            if not services:
                raise PermanentError(f"Apprise sent nothing for {self.target} ({result.status.name})", detail)
            codes = [int(m.group(1)) for line in logs for m in _STATUS.finditer(line)]
            if services[0].status == apprise.AppriseResultStatus.TIMEOUT:
                raise TransientError(f"timed out sending to {self.target}", detail)
            if codes:
                code = codes[-1]
                if code in TRANSIENT_STATUS or code >= 500:
                    raise TransientError(f"HTTP {code} from {self.target}", detail)
                raise PermanentError(f"HTTP {code} from {self.target}: the receiver refused it "
                                     "(check the URL and its credentials)", detail)
            last = logs[-1].split(": ", 1)[-1] if logs else "delivery failed"
            raise TransientError(f"{last} ({self.target})", detail)
        finally:
            result.close()
