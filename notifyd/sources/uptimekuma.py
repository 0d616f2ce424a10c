"""The Uptime Kuma source: its Webhook notification with the preset JSON body.

Body, as Uptime Kuma's webhook provider posts it (server/notification-providers/webhook.js;
samples and sources in tests/fixtures/uptimekuma/): {"heartbeat": {...} | null, "monitor": {...} |
null, "msg": "[Jellyfin] [🔴 Down] Request failed with status code 502"}.

- A monitor that goes down or comes back sends its heartbeat (`status` 0 down, 1 up, 2 pending,
  3 maintenance; `msg`, `ping` in ms, `time` in UTC, and when it is up again `lastDownTime`) and
  its monitor (`name`, `pathName` "Group / Name", `type`, `url`, `hostname`, `port`, …).
  Down is `monitor_down` (failure), up is `monitor_up` (success), with how long it was down.
- Pending and maintenance have no kind in the vocabulary: Uptime Kuma itself never notifies of
  them (a check that fails is retried as pending and told once it is down; maintenance is
  planned), so a body that carries one is recorded as `monitor_pending` or
  `monitor_maintenance` and is QUIET: kept in the history, told to no one.
- The Test button sends no heartbeat and no monitor, and `msg` "<notification name> Testing": `test`.
- Certificate and domain expiry warnings also come without heartbeat or monitor, their whole
  text in `msg`: they are a `notification` (the sender's own words) of level warning.

Every value read goes through the field vocabulary (`notifyd.fields`), and a wrong one raises
BadPayload naming the dotted field ("field 'heartbeat.status': expected a heartbeat status …").
The monitor's other settings and the heartbeat's `response` (a page's body) are never read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from notifyd.event_kinds import GENERIC, QUIET
from notifyd.fields import DB_ID_MAX, TITLE_MAX, URL_MAX, Fields, clip
from notifyd.model import Event
from notifyd.timefmt import iso
from notifyd.units import format_duration

STATUSES = ("down", "up", "pending", "maintenance")       # heartbeat.status 0 to 3
STATUS_RULE = "a heartbeat status: 0 (down), 1 (up), 2 (pending) or 3 (maintenance)"
KINDS = {"down": "monitor_down", "up": "monitor_up", "pending": "monitor_pending",
         "maintenance": "monitor_maintenance"}
LEVELS = {"down": "failure", "up": "success", "pending": "warning", "maintenance": "info"}
QUIET_WHY = {"pending": "a pending check is retried; Uptime Kuma tells once the monitor is down",
             "maintenance": "maintenance is planned; Uptime Kuma tells no one of it"}
APP_NAME = "Uptime Kuma"
TEST_SUFFIX = " Testing"        # the Test button's msg: "<notification name> Testing"
NO_MESSAGE = "N/A"              # what Uptime Kuma writes into a heartbeat that has no msg
UNFILLED_URLS = ("", "http://", "https://")     # a monitor's URL field before anyone fills it
# Monitor types whose address is not their URL (Uptime Kuma's own extractAddress).
HOST_TYPES = frozenset({"ping", "dns"})
HOST_PORT_TYPES = frozenset({"port", "gamedig", "steam"})
NO_ADDRESS_TYPES = frozenset({"push", "group"})
HOST_MAX = 253
TIME_RULE = 'a time such as "2025-03-01 12:00:00.000"'
DOWNTIME_MAX = 10 * 365 * 86400  # past this a downtime is a clock's mistake, not worth saying
_CREDENTIALS = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})?")


def parse_uptimekuma(body: Mapping[str, Any], source: str, source_type: str, raw: str) -> Event:
    """Build an Event from an Uptime Kuma webhook body, or raise BadPayload naming the field."""
    fields = Fields(body)
    heartbeat = fields.obj("heartbeat")
    monitor = fields.obj("monitor", required=heartbeat is not None)
    msg = fields.prose("msg", required=heartbeat is None)
    media: dict[str, Any] = {"app_name": APP_NAME}
    if heartbeat is None:
        assert msg is not None
        if msg.endswith(TEST_SUFFIX):
            media.update(notification=msg[:-len(TEST_SUFFIX)].strip(), level="info")
            return Event(source=source, source_type=source_type, kind="test", title=f"{APP_NAME} test",
                         media=media, payload=raw)
        if monitor is not None:
            _monitor(media, monitor)
        media["level"] = "warning"          # what comes this way: certificates and domains about to expire
        return Event(source=source, source_type=source_type, kind=GENERIC, title=APP_NAME, body=msg,
                     media=media, payload=raw)

    assert monitor is not None
    status_number = heartbeat.whole("status", 0, len(STATUSES) - 1, STATUS_RULE, required=True)
    assert status_number is not None
    status = STATUSES[status_number]
    title = _monitor(media, monitor)
    media["status"] = status
    message = heartbeat.prose("msg")
    if message and message != NO_MESSAGE:
        media["message"] = message
    ping = heartbeat.number("ping", 0, 86_400_000)
    if ping is not None:
        media["ping_ms"] = round(ping) if ping >= 1 else round(ping, 2)
    checked = _time(heartbeat, "time")
    if checked is not None:
        media["time"] = iso(checked.timestamp())
    last_down = _time(heartbeat, "lastDownTime")
    if status == "up" and checked is not None and last_down is not None:
        seconds = (checked - last_down).total_seconds()
        if 0 <= seconds <= DOWNTIME_MAX:
            media["down_for_s"] = round(seconds)
            media["downtime"] = format_duration(seconds)
    if status in QUIET_WHY:
        media[QUIET] = QUIET_WHY[status]
    media["level"] = LEVELS[status]
    return Event(source=source, source_type=source_type, kind=KINDS[status], title=title, media=media,
                 payload=raw)


def _monitor(media: dict[str, Any], monitor: Fields) -> str:
    """The monitor's facts into `media`; its name as a title ("Media / Jellyfin" inside a group)."""
    name = monitor.title("name")
    path_name = monitor.title("pathName")
    monitor_id = monitor.whole("id", 0, DB_ID_MAX, "a monitor id")
    monitor_type = monitor.label("type", "a monitor type")
    for key, value in (("monitor", name), ("monitor_id", monitor_id), ("monitor_type", monitor_type),
                       ("address", _address(monitor, monitor_type))):
        if value is not None:
            media[key] = value
    title = path_name or name or (f"monitor {monitor_id}" if monitor_id is not None else f"{APP_NAME} monitor")
    return clip(title, TITLE_MAX)


def _address(monitor: Fields, monitor_type: str | None) -> str | None:
    """What the monitor checks, as Uptime Kuma itself shows it: a host (ping, DNS), host:port (port,
    game servers), else its URL (any credentials in it left out); a push monitor has none."""
    url = monitor.label("url", "a URL", URL_MAX)
    host = monitor.label("hostname", "a host name", HOST_MAX)
    port = monitor.whole("port", 0, 65535, "a port number")
    if monitor_type in NO_ADDRESS_TYPES:
        return None
    if monitor_type in HOST_TYPES:
        return host
    if monitor_type in HOST_PORT_TYPES:
        return f"{host}:{port}" if host and port else host
    if url and url not in UNFILLED_URLS:
        return _without_credentials(url)
    return host


def _without_credentials(url: str) -> str:
    """https://user:pass@host/x → https://host/x: a message must not carry a password."""
    return _CREDENTIALS.sub(r"\1", url)


def _time(fields: Fields, key: str) -> datetime | None:
    """A heartbeat time, UTC: "2025-03-01 12:00:00.000" as Uptime Kuma writes it (SQLite), or ISO
    8601 with a zone (as a MariaDB-backed Uptime Kuma serialises a date)."""
    text = fields.label(key, TIME_RULE, 64)
    if text is None:
        return None
    try:
        if not _TIME.fullmatch(text):
            raise ValueError(text)
        moment = datetime.fromisoformat(text)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):     # year 1 or 9999 with an offset leaves the calendar in UTC
        raise fields.refuse(key, TIME_RULE, text) from None
