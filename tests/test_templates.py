"""Message templates: defaults per kind, the generic fallback, overrides and the sandbox's refusals
(the limits themselves: test_template_sandbox.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from notifyd.config import parse_config, parse_config_text
from notifyd.errors import ConfigError
from notifyd.messages import Message
from notifyd.model import Event
from notifyd.templates import (
    SAMPLE,
    TemplateProblem,
    check_template,
    filesize,
    render,
)


def event(**fields) -> Event:
    fields.setdefault("source", "backups")
    fields.setdefault("source_type", "generic")
    fields.setdefault("kind", "backup")
    fields.setdefault("title", "")
    return Event(**fields)


def test_an_event_with_its_own_text_keeps_it():
    assert render(event(title="Nightly", body="3 GB in 4m", media={"level": "success"})) == \
        Message(title="Nightly", body="3 GB in 4m", level="success")
    # even when its kind has a default: a generic sender's words win
    assert render(event(kind="download", title="x", body="said by the sender")).body == "said by the sender"


def test_fallbacks_name_source_and_kind():
    assert render(event(title="Only a title")) == Message(title="Only a title", body="Only a title", level="info")
    assert render(event(body="only a body")) == Message(title="backups: backup", body="only a body")
    assert render(event()) == Message(title="backups: backup", body="backups sent a backup event.")


def test_download_default_reads_like_a_sentence():
    assert render(SAMPLE) == Message(title="Arrival (2016) imported", body="Bluray-2160p, 29.3 GiB · Radarr",
                                     level="success")


def test_upgrade_says_what_it_replaced():
    message = render(replace(SAMPLE, kind="upgrade"))
    assert message.title == "Arrival (2016) upgraded"
    assert message.body == "Bluray-2160p, 29.3 GiB — replaces Bluray-1080p · Radarr"


def test_health_says_level_and_message():
    health = Event(source="radarr", source_type="radarr", kind="health", title="Radarr health warning",
                   media={"level": "warning", "health": {"level": "warning", "message": "Disk almost full",
                                                         "wiki_url": "https://wiki.example/x"}})
    assert render(health) == Message(title="Radarr health warning",
                                     body="Disk almost full\nhttps://wiki.example/x", level="warning")


def test_missing_media_fields_leave_no_debris():
    bare = Event(source="radarr", source_type="radarr", kind="download", title="Arrival (2016)")
    assert render(bare) == Message(title="Arrival (2016) imported", body="Arrival (2016) imported")


def test_overrides_by_kind_then_star():
    overrides = {"download": {"title": "🎬 {{ title }}"}, "*": {"body": "{{ kind }} from {{ source }}"}}
    assert render(SAMPLE, overrides).title == "🎬 Arrival (2016)"
    assert render(SAMPLE, overrides).body == "Bluray-2160p, 29.3 GiB · Radarr"      # body not overridden
    other = replace(SAMPLE, kind="rename")
    assert render(other, overrides) == Message(title="Arrival (2016) renamed", body="rename from radarr",
                                               level="success")


@pytest.mark.parametrize("source", ["{{ ''.__class__.__mro__ }}", "{{ range(3)|list }}",
                                    "{{ 'x' * 10**8 }}", "{{ (10**5000)|string }}",
                                    "{% for a in title %}{% for b in title %}{% for c in title %}{% for d in title %}"
                                    "xxxx{% endfor %}{% endfor %}{% endfor %}{% endfor %}",
                                    "{{ media.update({'a': 1}) }}", "{{ cycler.__init__.__globals__ }}",
                                    "{% for x in %}"])
def test_the_sandbox_refuses_what_a_template_must_not_do(source):
    with pytest.raises(TemplateProblem):
        check_template(source)


def test_a_broken_template_is_a_config_error_at_load_naming_the_key():
    text = '[services.d]\ntype = "apprise"\nurl = "json://127.0.0.1:9/x"\n[services.d.templates.download]\ntitle = "{{ title"\n'
    with pytest.raises(ConfigError) as caught:
        parse_config_text(text, None)
    assert "services.d.templates.download.title" in str(caught.value) and "syntax error" in str(caught.value)
    assert caught.value.line == 5


def test_templates_are_only_a_notification_key():
    with pytest.raises(ConfigError, match="services.k.templates: unknown key"):
        parse_config({"services": {"k": {"type": "kodi", "url": "http://kodi:8080/jsonrpc", "templates": {}}}},
                     path=None)


@pytest.mark.parametrize("value, text", [(31457280000, "29.3 GiB"), (512, "512 B"), (2048, "2 KiB"),
                                         (5 * 1024**2, "5.0 MiB"), (0, ""), (None, ""), ("12", ""), (True, ""),
                                         (10**400, "")])
def test_filesize(value, text):
    assert filesize(value) == text


@pytest.mark.parametrize("kind", sorted(__import__("notifyd.templates", fromlist=["DEFAULTS"]).DEFAULTS))
def test_every_default_renders_for_an_event_with_no_media(kind):
    message = render(Event(source="x", source_type="x", kind=kind, title="Something"))
    assert message.title and message.body


def test_run_defaults():
    done = Event(source="comfydeploy", source_type="comfydeploy", kind="run.completed", title="Portrait: completed",
                 media={"duration_s": 42.5, "cost_usd": 0.0425, "output_urls": ["https://x/a.png"]})
    assert render(done).body == "Done in 42.5 s · $0.0425\nhttps://x/a.png"
    assert render(replace(done, media={})).body == "Done"
    failed = Event(source="comfydeploy", source_type="comfydeploy", kind="run.failed", title="Portrait: failed",
                   media={"duration_s": 3.0, "error": "model file not found"})
    assert render(failed).body == "model file not found (after 3.0 s)"


# ---------------------------------------------------------------------------------------------
# Limits: a template is bounded while it renders, and the error names the limit it passed.


# ---------------------------------------------------------------------------------------------
# The *arr kinds: each message says something of its own (end to end: tests/test_arr_events.py).

def arr(kind: str, title: str = "Radiohead", **media) -> Event:
    return Event(source="lidarr", source_type="lidarr", kind=kind, title=title,
                 media={"app": "lidarr", "app_name": "Lidarr", **media})


def test_app_update_says_the_version_change_once():
    update = {"previous_version": "2.8.2", "new_version": "2.9.6", "message": "Lidarr updated from 2.8.2 to 2.9.6"}
    message = render(arr("app_update", "Lidarr updated to 2.9.6", update=update))
    assert message == Message(title="Lidarr updated to 2.9.6", body="Previous version: 2.8.2", level="info")
    other = render(arr("app_update", "Lidarr updated to 2.9.6", update={**update, "message": "Restart needed"}))
    assert other.body == "Previous version: 2.8.2\nRestart needed"
    assert render(arr("app_update", "Lidarr updated")).body == "A new version is installed."


def test_an_upgrade_names_each_replaced_quality_once():
    message = render(arr("upgrade", "Radiohead · OK Computer (1997)", quality="FLAC", size=417714176, files=12,
                         replaces=[{"quality": "MP3-320", "count": 12}, {"quality": "MP3-V0", "count": 1}]))
    assert message.body == "FLAC, 398.4 MiB · 12 files — replaces MP3-320 ×12, MP3-V0 · Lidarr"
    assert render(arr("upgrade")).body == "Lidarr"


def test_a_failure_says_why_what_and_where():
    failed = render(arr("download_failed", "Radiohead-Kid_A-WEB-FLAC-2000-OBZEN", quality="FLAC",
                        download_client="SABnzbd", reason="Aborted: missing articles", level="failure",
                        release_title="Radiohead-Kid_A-WEB-FLAC-2000-OBZEN"))
    assert failed == Message(title="Radiohead-Kid_A-WEB-FLAC-2000-OBZEN: download failed",
                             body="Aborted: missing articles\nFLAC in SABnzbd · Lidarr", level="failure")
    imported = render(arr("import_failed", quality="FLAC", files=3, download_client="qBittorrent",
                          release_title="Radiohead-Kid_A-WEB-FLAC-2000-OBZEN"))
    assert imported.title == "Radiohead: import failed"
    assert imported.body == "FLAC · 3 files · from qBittorrent\nRadiohead-Kid_A-WEB-FLAC-2000-OBZEN"
    assert render(arr("import_failed", "Lidarr")).body == \
        "No details came with it; the app's Activity queue shows the download."


def test_manual_interaction_says_why_it_waits():
    waiting = render(arr("manual_interaction", "Arrival (2016)", quality="Bluray-2160p", size=31457280000,
                         download_client="SABnzbd", release_title="Arrival.2016.2160p.UHD.BluRay.x265-GRP",
                         reasons=["Not an upgrade", "x.mkv: Sample"], level="warning"))
    assert waiting == Message(title="Arrival (2016) waits for a manual import",
                              body="Arrival.2016.2160p.UHD.BluRay.x265-GRP\nBluray-2160p, 29.3 GiB in SABnzbd\n"
                                   "Not an upgrade\nx.mkv: Sample", level="warning")
    assert render(arr("manual_interaction", "Arrival (2016)")).body == "See the queue in Lidarr."


def test_deletes_say_what_became_of_the_files():
    assert render(arr("delete", deleted_files=True, size=4294967296)).body == \
        "Removed from Lidarr, with its files (4.0 GiB)."
    assert render(arr("delete", deleted_files=False)).body == "Removed from Lidarr; its files were kept."
    assert render(arr("delete")).body == "Removed from Lidarr."
    assert render(arr("file_delete", quality="FLAC", delete_reason="missing from disk")).body == \
        "FLAC · missing from disk · Lidarr"


def test_an_arr_event_type_without_words_says_so_instead_of_its_title_twice():
    message = render(arr("foobar", "Arrival (2016)", event_type="FooBar"))
    assert message == Message(title="Arrival (2016)",
                              body="Lidarr sent FooBar, an event notifyd has no words for yet.")
