"""notifyd.config_edit: in-place edits that keep every comment and blank line, or change nothing."""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path

import pytest

from notifyd.config import read_config_file
from notifyd.config_edit import add_service, remove_service, set_service_enabled, set_service_fields, write_config_file
from notifyd.errors import ConfigError, ConfigNotWritable, NotFound

ROOT = Path(__file__).resolve().parent.parent

COMMENTED = """\
# notifyd config, hand-written
#
# with a blank comment line above and a blank line below

[server]
# loopback only
listen = "127.0.0.1:8765"   # the default


max_body = "1MiB"

# ----- services -----

[services.discord]
# my own server
type = "apprise"

url = "discord://112233445566778899/AbCdEfGhIjKlMnOpQrStUvWx"   # webhook
priority = 5

# email goes out last
[services.mail]
type = "apprise"
url = "mailto://alice:hunter22@example.com"
enabled = true   # keep this comment
events = ["health", "download"]   # only these

# a trailing comment
"""


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(COMMENTED, encoding="utf-8")
    return path


def lines(text: str) -> list[str]:
    return text.split("\n")


def test_disable_changes_only_the_existing_enabled_line(config_path):
    set_service_enabled(config_path, "mail", False)
    before, after = lines(COMMENTED), lines(config_path.read_text(encoding="utf-8"))
    assert len(after) == len(before)
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert len(changed) == 1
    assert before[changed[0]] == "enabled = true   # keep this comment"
    assert after[changed[0]] == "enabled = false   # keep this comment"


def test_disable_then_enable_restores_the_file_exactly(config_path):
    set_service_enabled(config_path, "mail", False)
    set_service_enabled(config_path, "mail", True)
    assert config_path.read_text(encoding="utf-8") == COMMENTED


def test_disable_adds_only_an_enabled_line_when_there_was_none(config_path):
    config = set_service_enabled(config_path, "discord", False)
    text = config_path.read_text(encoding="utf-8")
    after = lines(text)
    assert len(after) == len(lines(COMMENTED)) + 1
    added = [i for i, line in enumerate(after) if line.strip() == "enabled = false"]
    assert len(added) == 1
    assert after[: added[0]] + after[added[0] + 1:] == lines(COMMENTED)
    # the new line belongs to the right table, and nothing else moved between tables
    data = tomllib.loads(text)
    assert data["services"]["discord"]["enabled"] is False
    assert data["services"]["mail"]["enabled"] is True
    assert config.services["discord"].enabled is False
    assert config.services["mail"].enabled is True


def test_enable_after_disable_keeps_comments(config_path):
    set_service_enabled(config_path, "discord", False)
    config = set_service_enabled(config_path, "discord", True)
    assert config.services["discord"].enabled is True
    after = [line for line in lines(config_path.read_text(encoding="utf-8")) if line.strip() != "enabled = true"]
    assert after == lines(COMMENTED)


def test_returned_config_matches_the_file(config_path):
    returned = set_service_enabled(config_path, "mail", False)
    reread = read_config_file(config_path)
    assert returned.services == reread.services
    assert returned.path == config_path


def test_unknown_service_is_not_found_and_file_untouched(config_path):
    with pytest.raises(NotFound) as info:
        set_service_enabled(config_path, "slack", False)
    assert "slack" in str(info.value)
    assert config_path.read_text(encoding="utf-8") == COMMENTED


def test_enable_in_a_file_without_services_is_not_found(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[server]\nlisten = "127.0.0.1:8765"\n', encoding="utf-8")
    with pytest.raises(NotFound):
        set_service_enabled(path, "discord", True)
    assert path.read_text(encoding="utf-8") == '[server]\nlisten = "127.0.0.1:8765"\n'


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as info:
        set_service_enabled(tmp_path / "none.toml", "a", True)
    assert str(tmp_path / "none.toml") in str(info.value)


def test_add_service_appends_a_table_and_keeps_everything(config_path):
    config = add_service(config_path, "sink", {"type": "apprise", "url": "json://127.0.0.1:9000/hook",
                                               "events": ["grab"], "priority": 7})
    text = config_path.read_text(encoding="utf-8")
    assert text.startswith(COMMENTED)
    data = tomllib.loads(text)
    assert data["services"]["sink"] == {"type": "apprise", "url": "json://127.0.0.1:9000/hook",
                                        "events": ["grab"], "priority": 7}
    assert list(data["services"]) == ["discord", "mail", "sink"]
    assert config.services["sink"].priority == 7
    assert config.services["sink"].events == ("grab",)
    assert set(config.services) == {"discord", "mail", "sink"}


def test_add_service_to_the_commented_example(tmp_path):
    example = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    path = tmp_path / "config.toml"
    path.write_text(example, encoding="utf-8")
    config = add_service(path, "discord", {"type": "apprise", "url": "discord://1/abcdefgh"})
    text = path.read_text(encoding="utf-8")
    assert text.startswith(example)
    assert "[services.discord]" in text[len(example):]
    assert list(config.services) == ["discord"]


def test_add_existing_service_is_refused_and_file_untouched(config_path):
    with pytest.raises(ConfigError) as info:
        add_service(config_path, "mail", {"type": "apprise", "url": "json://127.0.0.1/x"})
    assert info.value.key == "services.mail"
    assert "already exists" in str(info.value)
    assert config_path.read_text(encoding="utf-8") == COMMENTED


@pytest.mark.parametrize("fields", [
    {"type": "apprise"},                                          # url missing
    {"type": "apprise", "url": "not-a-url"},
    {"type": "apprise", "url": "json://h/x", "priority": 11},
    {"type": "apprise", "url": "json://h/x", "colour": "red"},    # unknown key
    {"type": "pigeon", "url": "json://h/x"},
])
def test_invalid_add_raises_and_leaves_the_file_untouched(config_path, fields):
    with pytest.raises(ConfigError) as info:
        add_service(config_path, "broken", fields)
    assert str(config_path) in str(info.value)
    assert "services.broken" in str(info.value)
    assert config_path.read_text(encoding="utf-8") == COMMENTED


def test_invalid_service_name_raises_and_leaves_the_file_untouched(config_path):
    with pytest.raises(ConfigError):
        add_service(config_path, "has space", {"type": "apprise", "url": "json://h/x"})
    assert config_path.read_text(encoding="utf-8") == COMMENTED


def test_edit_of_an_already_broken_file_raises_and_changes_nothing(tmp_path):
    broken = COMMENTED.replace('listen = "127.0.0.1:8765"', 'listen = "nowhere"')
    path = tmp_path / "config.toml"
    path.write_text(broken, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        set_service_enabled(path, "mail", False)
    assert info.value.key == "server.listen"
    assert path.read_text(encoding="utf-8") == broken


def test_no_temporary_files_are_left_behind(config_path):
    set_service_enabled(config_path, "mail", False)
    with pytest.raises(ConfigError):
        add_service(config_path, "broken", {"type": "apprise"})
    assert sorted(p.name for p in config_path.parent.iterdir()) == ["config.toml"]


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o644])
def test_file_permissions_are_kept(config_path, mode):
    os.chmod(config_path, mode)
    set_service_enabled(config_path, "mail", False)
    assert stat.S_IMODE(config_path.stat().st_mode) == mode
    add_service(config_path, "sink", {"type": "apprise", "url": "json://127.0.0.1/x"})
    assert stat.S_IMODE(config_path.stat().st_mode) == mode


def test_a_symlinked_config_is_edited_through_the_link(tmp_path):
    real = tmp_path / "dotfiles" / "notifyd.toml"
    real.parent.mkdir()
    real.write_text(COMMENTED, encoding="utf-8")
    link = tmp_path / "config.toml"
    link.symlink_to(real)
    set_service_enabled(link, "mail", False)
    assert link.is_symlink()
    assert "enabled = false   # keep this comment" in real.read_text(encoding="utf-8")


def test_a_new_enabled_key_lands_inside_its_table_before_the_next_tables_comment(config_path):
    set_service_enabled(config_path, "discord", False)
    text = config_path.read_text(encoding="utf-8")
    assert 'priority = 5\nenabled = false\n\n# email goes out last\n[services.mail]' in text


def test_remove_takes_the_table_and_its_inner_comments_and_keeps_every_other(config_path):
    config = remove_service(config_path, "discord")
    text = config_path.read_text(encoding="utf-8")
    assert list(config.services) == ["mail"] and "discord" not in text and "# my own server" not in text
    for kept in ("# notifyd config, hand-written", "# loopback only", "# the default", "# ----- services -----",
                 "# email goes out last\n[services.mail]", "# keep this comment", "# a trailing comment"):
        assert kept in text
    assert text.endswith('events = ["health", "download"]   # only these\n\n# a trailing comment\n')


def test_removing_the_last_service_keeps_the_comments_after_it(config_path):
    config = remove_service(config_path, "mail")
    text = config_path.read_text(encoding="utf-8")
    assert list(config.services) == ["discord"] and "[services.mail]" not in text and "alice" not in text
    assert text.endswith('priority = 5\n\n# email goes out last\n\n# a trailing comment\n')
    assert text.startswith(COMMENTED.split("[services.mail]")[0])


def test_remove_of_a_service_with_sub_tables_keeps_what_follows(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[services.a]\ntype = "apprise"\nurl = "json://h/a"\n\n[services.a.templates.download]\n'
                    'title = "got {{ title }}"\n\n# b is the backup\n[services.b]\ntype = "apprise"\n'
                    'url = "json://h/b"\n', encoding="utf-8")
    config = remove_service(path, "a")
    assert list(config.services) == ["b"]
    assert path.read_text(encoding="utf-8") == '\n# b is the backup\n[services.b]\ntype = "apprise"\nurl = "json://h/b"\n'


def test_remove_of_an_unknown_service_is_not_found_and_the_file_untouched(config_path):
    with pytest.raises(NotFound):
        remove_service(config_path, "slack")
    assert config_path.read_text(encoding="utf-8") == COMMENTED


def test_set_changes_lines_in_place_adds_after_the_last_key_and_removes(config_path):
    config = set_service_fields(config_path, "mail", {"enabled": False, "priority": 3, "events": None})
    after = lines(config_path.read_text(encoding="utf-8"))
    assert "enabled = false   # keep this comment" in after
    assert 'events = ["health", "download"]   # only these' not in after
    assert after[after.index("enabled = false   # keep this comment") + 1] == "priority = 3"
    assert [line for line in after if line not in ("enabled = false   # keep this comment", "priority = 3")] == \
        [line for line in lines(COMMENTED) if line not in ("enabled = true   # keep this comment",
                                                           'events = ["health", "download"]   # only these')]
    assert config.services["mail"].priority == 3 and config.services["mail"].events is None


def test_set_writes_a_path_map_as_one_line_of_inline_tables(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[services.kodi]\ntype = "kodi"\nurl = "http://kodi:8080/jsonrpc"\n\n# next\n', encoding="utf-8")
    config = set_service_fields(path, "kodi", {"path_map": [{"from": "/data", "to": "/media"},
                                                            {"from": "/x", "to": "/y"}]})
    assert path.read_text(encoding="utf-8") == (
        '[services.kodi]\ntype = "kodi"\nurl = "http://kodi:8080/jsonrpc"\n'
        'path_map = [{from = "/data", to = "/media"}, {from = "/x", to = "/y"}]\n\n# next\n')
    assert config.services["kodi"].options["path_map"] == (("/data", "/media"), ("/x", "/y"))


@pytest.mark.parametrize("changes, key", [
    ({"priority": 0}, "services.mail.priority"),
    ({"url": None}, "services.mail.url"),                      # url is required: removing it is refused
    ({"events": ["downlaod"]}, "services.mail.events"),
    ({"colour": "red"}, "services.mail.colour"),
])
def test_a_refused_set_names_the_key_and_leaves_the_file_untouched(config_path, changes, key):
    with pytest.raises(ConfigError) as info:
        set_service_fields(config_path, "mail", changes)
    assert info.value.key == key
    assert config_path.read_text(encoding="utf-8") == COMMENTED


def test_a_check_that_refuses_leaves_the_file_untouched(config_path):
    def refuse(config):
        raise ConfigError("no", key="services.mail.url")
    with pytest.raises(ConfigError):
        set_service_fields(config_path, "mail", {"priority": 2}, check=refuse)
    with pytest.raises(ConfigError):
        add_service(config_path, "x", {"type": "apprise", "url": "json://h/x"}, check=refuse)
    assert config_path.read_text(encoding="utf-8") == COMMENTED


def test_write_config_file_is_0600_and_replaces_only_a_regular_file(tmp_path):
    target = tmp_path / "deep" / "er" / "config.toml"
    write_config_file(target, "# new\n")
    assert target.read_text() == "# new\n" and stat.S_IMODE(target.stat().st_mode) == 0o600
    target.chmod(0o644)
    write_config_file(target, "# again\n")
    assert target.read_text() == "# again\n" and stat.S_IMODE(target.stat().st_mode) == 0o600
    for where, reason in ((tmp_path, "Is a directory"), (Path("/dev/null"), "not a regular file"),
                          (target / "below.toml", f"{target} is not a folder")):
        with pytest.raises(ConfigNotWritable) as info:
            write_config_file(where, "x")
        assert str(info.value) == f"cannot write {where}: {reason}"
    assert sorted(p.name for p in target.parent.iterdir()) == ["config.toml"]
