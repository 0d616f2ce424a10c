"""Apprise plugins imported one at a time: the same plugin Apprise's registry would pick, for every
schema it knows, and nothing else imported; what the index cannot answer goes through Apprise."""

from __future__ import annotations

import json
import subprocess
import sys

import apprise
import pytest
from apprise.manager_plugins import NotificationManager

from notifyd.channels.apprise_plugins import find_class, instantiate, schema_index, schema_of

URLS = [
    "json://127.0.0.1:9/hook",
    "jsons://user:pw-very-secret@host.lan:8443/a/b?-X-Token=abc",
    "discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js",
    "pover://uQiRzpo4DXghDmr9QzzfQu27cmVRsG@azGDORePK8gMaC0QOYAMyEEuzJnyUi",
    "tgram://123456789:AAsecretBOTtoken77/-100123456",
    "ntfy://ntfy.example.com/backups",
    "gotify://host.lan/tokenabcdefgh",
    "mailto://user:pw@example.com?to=me@example.com",
    "kodi://kodi.lan:8080",                       # declared through constants: (kodi_protocol, …)
    "slack://TokenA/TokenB/TokenC/#general",      # `/#` read as Apprise reads it
    "https://discord.com/api/webhooks/4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js",   # a native URL
    "form://127.0.0.1:9/hook",
    "nosuchscheme://whatever",
    "json://",
    "not a url",
]


@pytest.mark.parametrize("url", URLS)
def test_a_plugin_is_built_as_apprise_builds_it(url: str) -> None:
    ours, theirs = instantiate(url), apprise.Apprise.instantiate(url)
    assert (ours is None) == (theirs is None)
    if ours is not None and theirs is not None:
        assert type(ours) is type(theirs)
        assert ours.url(privacy=True) == theirs.url(privacy=True)
        assert ours.url() == theirs.url()


def test_every_schema_apprise_knows_names_the_plugin_apprise_would_take() -> None:
    registry = NotificationManager()
    registry.load_modules()
    unresolved = []
    for schema in registry.schemas():
        found = find_class(schema)
        if found is None:
            unresolved.append(schema)
        else:
            assert found is registry[schema], schema
    # Only plugins that declare their schemas in code (dbus) are left to Apprise's registry.
    assert len(unresolved) <= 5, unresolved
    assert len(schema_index()) >= len(registry.schemas()) - len(unresolved)


def test_only_the_urls_plugin_is_imported_and_apprises_registry_stays_unloaded() -> None:
    code = """
import json, sys
from notifyd.channels.apprise_plugins import instantiate
from apprise.manager_plugins import NotificationManager
plugin = instantiate("json://127.0.0.1:9/hook")
plugins = sorted(m for m in sys.modules if m.startswith("apprise.plugins.") and m.count(".") == 2)
print(json.dumps({"plugin": type(plugin).__name__, "plugins": plugins, "registry": bool(NotificationManager()),
                  "oauthlib": "oauthlib" in sys.modules}))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["plugin"] == "NotifyJSON"
    assert found["plugins"] == ["apprise.plugins.base", "apprise.plugins.custom_json"]
    assert found["registry"] is False and found["oauthlib"] is False


def test_schema_of_reads_the_schema_as_apprise_does() -> None:
    assert schema_of("JSON://host/path") == "json"
    assert schema_of("  ntfy://topic") == "ntfy"
    assert schema_of("not a url") is None
