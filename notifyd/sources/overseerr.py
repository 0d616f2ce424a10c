"""The Overseerr source (Jellyseerr too): its webhook agent's default JSON payload.

Both apps fill one JSON template (Settings → Notifications → Webhook → JSON Payload; samples and
sources in tests/fixtures/overseerr/) by replacing each "{{key}}" inside its strings, so every
value arrives as a string — ids too ("603") — and what a notification lacks arrives as "" (a
movie's tvdbId, a test's event). The "{{media}}", "{{request}}", "{{issue}}" and "{{comment}}"
objects arrive as null when the notification has none (a request has no issue, a test has nothing):

    {"notification_type": "MEDIA_PENDING", "event": "New Movie Request", "subject": "Dune (2021)",
     "message": "<the overview, or the issue's description>", "image": "<poster URL>",
     "media": {"media_type": "movie" | "tv", "tmdbId", "tvdbId", "status", "status4k"} | null,
     "request": {"request_id", "requestedBy_username", "requestedBy_email", …} | null,
     "issue": {"issue_id", "issue_type", "issue_status", "reportedBy_username", …} | null,
     "comment": {"comment_message", "commentedBy_username", …} | null,
     "extra": [{"name": "Requested Seasons", "value": "1, 2"}, …]}

`notification_type` names the kind (event_kinds.REQUEST_KINDS; TEST_NOTIFICATION is `test`).
MEDIA_AUTO_REQUESTED has no kind: the apps never send it to a webhook (they mark it not for the
system), and the request it starts is told again as MEDIA_PENDING or MEDIA_AUTO_APPROVED. A type
notifyd does not know keeps its lower-cased name and `event_type`, with the app's own `event`
words as its text. E-mail addresses, avatars and chat ids in the body are never read.

The user may edit the template; only `notification_type` is required, every other value is read
if it is there, through the field vocabulary (`notifyd.fields`), and a wrong one is a BadPayload
naming the dotted field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from notifyd.fields import DB_ID_MAX, EPISODES, SEASONS, TITLE_MAX, Fields, clip, put_given
from notifyd.model import Event

KINDS = {
    "MEDIA_PENDING": "request_pending",
    "MEDIA_APPROVED": "request_approved",
    "MEDIA_AUTO_APPROVED": "request_approved",
    "MEDIA_DECLINED": "request_declined",
    "MEDIA_AVAILABLE": "request_available",
    "MEDIA_FAILED": "request_failed",
    "ISSUE_CREATED": "issue_created",
    "ISSUE_COMMENT": "issue_comment",
    "ISSUE_RESOLVED": "issue_resolved",
    "ISSUE_REOPENED": "issue_reopened",
    "TEST_NOTIFICATION": "test",
}
# A reported problem asks an admin to look (warning skips a digest's wait); a decline is the admin's own act.
LEVELS = {"request_approved": "success", "request_available": "success", "request_failed": "failure",
          "issue_created": "warning", "issue_reopened": "warning", "issue_resolved": "success"}
MEDIA_TYPES = {"movie": "movie", "tv": "series", "": None}
# The apps' IssueType, as their own messages name it ("New Audio Issue Reported"); OTHER names none.
ISSUE_TYPES = {"video": "video", "audio": "audio", "subtitles": "subtitle", "other": None}
REQUESTED_SEASONS = "Requested Seasons"
# An issue's extra facts: media key, what it is, its bound.
AFFECTED = {"Affected Season": ("season", "a season number", SEASONS[1]),
            "Affected Episode": ("episode", "an episode number", EPISODES[1])}
APP_NAME = "Overseerr"
FOUR_K = "4K "                  # how the apps' `event` starts for a 4K request ("4K Movie Request Approved")
_TYPE = re.compile(r"\s*[A-Za-z][A-Za-z0-9_]{0,63}\s*")
_DIGITS = re.compile(r"[0-9]{1,10}")


def parse_overseerr(body: Mapping[str, Any], source: str, source_type: str, raw: str) -> Event:
    """Build an Event from an Overseerr or Jellyseerr webhook body, or raise BadPayload naming the field."""
    fields = Fields(body)
    name = fields.pattern("notification_type", _TYPE, 'a notification type such as "MEDIA_PENDING"',
                          required=True)
    assert name is not None
    name = name.strip().upper()
    kind = KINDS.get(name, name.lower())
    said = fields.label("event", "an event name")
    subject = fields.title("subject")
    media: dict[str, Any] = {"app_name": APP_NAME}
    if name not in KINDS:
        media["event_type"] = name
    put_given(media, "event", said)
    put_given(media, "message", fields.prose("message"))
    put_given(media, "poster_url", fields.url("image"))
    if said and said.startswith(FOUR_K):
        media["is_4k"] = True
    if name == "MEDIA_AUTO_APPROVED":
        media["auto_approved"] = True
    _media(media, fields.obj("media"))
    _request(media, fields.obj("request"))
    _issue(media, fields.obj("issue"))
    _comment(media, fields.obj("comment"))
    _extra(media, fields)
    media["level"] = LEVELS.get(kind, "info")
    title = subject or said or f"{APP_NAME} {name}"
    # A type without words of notifyd's own is told in the app's (its `event`), not as the title twice.
    text = said if name not in KINDS and said and said != title else ""
    return Event(source=source, source_type=source_type, kind=kind, title=clip(title, TITLE_MAX), body=text,
                 paths=(), media=media, payload=raw)




def numeric_id(fields: Fields, key: str, what: str = "a numeric id", high: int = DB_ID_MAX) -> int | None:
    """A whole number as the template writes it, digits in a string ("603"), or a number (an edited
    template may leave it unquoted); blank is none."""
    value = fields.data.get(key)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if not _DIGITS.fullmatch(text) or int(text) > high:
            raise fields.refuse(key, f"{what} from 0 to {high}, in digits", value)
        return int(text)
    return fields.whole(key, 0, high, what)


def _media(media: dict[str, Any], item: Fields | None) -> None:
    """The movie or series: its type, TMDb and TVDB ids, and its status in the app (and in 4K)."""
    if item is None:
        return
    put_given(media, "media_type", item.choice("media_type", MEDIA_TYPES, '"movie" or "tv"', fold_case=True))
    ids = {"tmdb": numeric_id(item, "tmdbId", "a TMDb id"), "tvdb": numeric_id(item, "tvdbId", "a TVDB id")}
    ids = {k: v for k, v in ids.items() if v}       # 0 is no id
    if ids:
        media["ids"] = ids
    for key, into in (("status", "media_status"), ("status4k", "media_status_4k")):
        status = item.label(key, "a media status")
        put_given(media, into, status.lower() if status else None)


def _request(media: dict[str, Any], item: Fields | None) -> None:
    if item is None:
        return
    put_given(media, "request_id", numeric_id(item, "request_id", "a request id"))
    put_given(media, "requester", item.label("requestedBy_username", "a user name"))


def _issue(media: dict[str, Any], item: Fields | None) -> None:
    if item is None:
        return
    put_given(media, "issue_id", numeric_id(item, "issue_id", "an issue id"))
    issue_type = item.label("issue_type", "an issue type")
    if issue_type:
        # A type the apps add later is kept as they name it; OTHER is no type worth saying.
        put_given(media, "issue_type", ISSUE_TYPES.get(issue_type.lower(), issue_type.lower()))
    status = item.label("issue_status", "an issue status")
    put_given(media, "issue_status", status.lower() if status else None)
    put_given(media, "reporter", item.label("reportedBy_username", "a user name"))


def _comment(media: dict[str, Any], item: Fields | None) -> None:
    if item is None:
        return
    put_given(media, "comment", item.prose("comment_message"))
    put_given(media, "commenter", item.label("commentedBy_username", "a user name"))


def _extra(media: dict[str, Any], fields: Fields) -> None:
    """The apps' extra facts: a series request's seasons, an issue's season and episode."""
    extra = []
    for item in fields.objects("extra") or []:
        name = item.label("name", "a name", required=True)
        value = item.prose("value")            # a long series' seasons pass a label's bound
        if name is None or value is None:
            continue
        if name == REQUESTED_SEASONS:
            media["seasons"] = _seasons(item, value)
        elif name in AFFECTED:
            into, what, high = AFFECTED[name]
            put_given(media, into, numeric_id(item, "value", what, high))
        extra.append({"name": name, "value": value})
    if extra:
        media["extra"] = extra
    season, episode = media.get("season"), media.get("episode")
    if season is not None:
        media["affected"] = f"S{season:02d}E{episode:02d}" if episode is not None else f"season {season}"


def _seasons(item: Fields, value: str) -> list[int]:
    """The season numbers the apps join with ", " ("1, 2, 5"), as numbers."""
    parts = [part.strip() for part in value.split(",")]
    if not all(_DIGITS.fullmatch(part) and int(part) <= SEASONS[1] for part in parts):
        raise item.refuse("value", f'season numbers from 0 to {SEASONS[1]} such as "1, 2"', value)
    return [int(part) for part in parts]
