"""notifyd.config: finding the file, defaults, validation errors (file, line, key), secrets, listen."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifyd.config import (
    DEFAULT_LISTEN,
    ServiceConfig,
    default_state_path,
    find_config,
    is_loopback,
    load_config,
    parse_config,
    parse_config_text,
    parse_listen,
    read_config_file,
)
from notifyd.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
ETC_CONFIG = Path("/etc/notifyd/config.toml")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def config_error(tmp_path: Path, text: str, name: str = "config.toml") -> ConfigError:
    """The ConfigError that reading `text` from a real file raises."""
    path = write(tmp_path / name, text)
    with pytest.raises(ConfigError) as info:
        read_config_file(path)
    return info.value


# ---------------------------------------------------------------------------------------------
# Defaults


def test_defaults_without_any_file_listen_on_loopback_8765(tmp_path):
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "XDG_STATE_HOME": str(tmp_path / "state")}
    if ETC_CONFIG.exists():
        pytest.skip("this machine has /etc/notifyd/config.toml")
    config = load_config(None, env=env)
    assert config.path is None
    assert (config.server.host, config.server.port) == ("127.0.0.1", 8765)
    assert config.server.listen == "127.0.0.1:8765" == DEFAULT_LISTEN
    assert config.server.token is None
    assert config.store.path == tmp_path / "state" / "notifyd" / "notifyd.db"
    assert dict(config.services) == {}
    assert dict(config.sources) == {}


def test_defaults_of_every_section():
    config = parse_config({}, path=None, env={"XDG_STATE_HOME": "/srv/state"})
    assert config.server.max_body == 1024 * 1024
    assert config.server.dedupe_window == 3600.0
    assert config.store.synchronous == "NORMAL"
    assert config.store.keep_succeeded == 30 * 86400
    assert config.store.keep_dead == 90 * 86400
    assert config.worker.threads == 4
    assert config.worker.max_attempts == 8
    assert config.worker.backoff == (5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0, 10800.0)
    assert config.worker.timeout == 15.0


def test_default_store_path_under_xdg_state_home():
    assert default_state_path({"XDG_STATE_HOME": "/x/state"}) == Path("/x/state/notifyd/notifyd.db")


def test_default_store_path_under_state_directory_wins_over_xdg():
    env = {"STATE_DIRECTORY": "/var/lib/notifyd", "XDG_STATE_HOME": "/x/state"}
    assert default_state_path(env) == Path("/var/lib/notifyd/notifyd.db")
    config = parse_config({}, path=None, env=env)
    assert config.store.path == Path("/var/lib/notifyd/notifyd.db")


def test_default_store_path_takes_first_of_several_state_directories():
    assert default_state_path({"STATE_DIRECTORY": "/var/lib/a:/var/lib/b"}) == Path("/var/lib/a/notifyd.db")


def test_default_store_path_falls_back_to_home_local_state():
    assert default_state_path({"HOME": "/home/u"}) == Path("/home/u/.local/state/notifyd/notifyd.db")


def test_store_section_without_path_uses_default_state_path(tmp_path):
    path = write(tmp_path / "config.toml", '[store]\nsynchronous = "FULL"\n')
    config = read_config_file(path, env={"STATE_DIRECTORY": "/run/sd"})
    assert config.store.path == Path("/run/sd/notifyd.db")
    assert config.store.synchronous == "FULL"


# ---------------------------------------------------------------------------------------------
# Finding the file


def test_find_config_explicit_wins_over_env(tmp_path):
    xdg = write(tmp_path / "xdg" / "notifyd" / "config.toml", "")
    env = {"NOTIFYD_CONFIG": str(tmp_path / "env.toml"), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    assert xdg.is_file()
    assert find_config(tmp_path / "cli.toml", env) == (tmp_path / "cli.toml", True)
    assert find_config(str(tmp_path / "cli.toml"), env) == (tmp_path / "cli.toml", True)


def test_find_config_notifyd_config_wins_over_xdg(tmp_path):
    write(tmp_path / "xdg" / "notifyd" / "config.toml", "")
    env = {"NOTIFYD_CONFIG": str(tmp_path / "env.toml"), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    assert find_config(None, env) == (tmp_path / "env.toml", True)


def test_find_config_xdg_config_home_when_it_exists(tmp_path):
    xdg = write(tmp_path / "xdg" / "notifyd" / "config.toml", "")
    assert find_config(None, {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}) == (xdg, False)


def test_find_config_home_dot_config_without_xdg_config_home(tmp_path):
    found = write(tmp_path / "home" / ".config" / "notifyd" / "config.toml", "")
    assert find_config(None, {"HOME": str(tmp_path / "home")}) == (found, False)


@pytest.mark.skipif(ETC_CONFIG.exists(), reason="this machine has /etc/notifyd/config.toml")
def test_find_config_nothing_when_no_file_exists(tmp_path):
    assert find_config(None, {"XDG_CONFIG_HOME": str(tmp_path / "none")}) == (None, False)


def test_load_config_reads_the_xdg_file(tmp_path):
    write(tmp_path / "xdg" / "notifyd" / "config.toml", '[server]\nlisten = "127.0.0.1:9999"\n')
    config = load_config(None, env={"XDG_CONFIG_HOME": str(tmp_path / "xdg")})
    assert config.path == tmp_path / "xdg" / "notifyd" / "config.toml"
    assert config.server.port == 9999


def test_named_but_missing_file_is_an_error(tmp_path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_config(missing, env={})
    assert info.value.file == str(missing)
    assert str(missing) in str(info.value)
    assert "no such file" in str(info.value)


def test_missing_file_named_by_notifyd_config_is_an_error(tmp_path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_config(None, env={"NOTIFYD_CONFIG": str(missing), "XDG_CONFIG_HOME": str(tmp_path)})
    assert str(missing) in str(info.value)


# ---------------------------------------------------------------------------------------------
# Errors: file, line, key


def test_toml_syntax_error_carries_line_number(tmp_path):
    error = config_error(tmp_path, '# c\n[server]\nlisten = 127.0.0.1:8765\n')
    assert error.line == 3
    assert str(tmp_path / "config.toml") in str(error)
    assert f"{tmp_path / 'config.toml'}:3:" in str(error)
    assert "invalid TOML" in str(error)


MULTI_TABLE = """\
# notifyd test config

[server]
listen = "127.0.0.1:8765"

[services.kodi]
type = "apprise"
url = "json://127.0.0.1:8080/kodi"
priority = 5

[services.discord]
type = "apprise"
url = "discord://1234567890/abcdefghijklmnopqrstuvwxyz"
# bigger is later
priority = 50
"""


def test_validation_error_names_file_line_and_dotted_key(tmp_path):
    error = config_error(tmp_path, MULTI_TABLE)
    path = str(tmp_path / "config.toml")
    assert error.key == "services.discord.priority"
    assert error.line == 15
    assert error.file == path
    assert str(error).startswith(f"{path}:15: services.discord.priority: ")
    assert "1 to 10" in str(error)


@pytest.mark.parametrize("text, key, line", [
    ('[server]\nlisten = "nohost"\n', "server.listen", 2),
    ('[server]\n\nmax_body = "lots"\n', "server.max_body", 3),
    ('[store]\nsynchronous = "OFF"\n', "store.synchronous", 2),
    ('[worker]\nthreads = 0\n', "worker.threads", 2),
    ('[worker]\nthreads = 2\nbackoff = []\n', "worker.backoff", 3),
    ('[worker]\ntimeout = "0s"\n', "worker.timeout", 2),
    ('[services.a]\ntype = "apprise"\nurl = "no-scheme"\n', "services.a.url", 3),
    ('[services.a]\ntype = "apprise"\nurl = "json://h/x"\nenabled = "yes"\n', "services.a.enabled", 4),
    ('[services.a]\ntype = "apprise"\nurl = "json://h/x"\nevents = "download"\n', "services.a.events", 4),
    ('[services.a]\ntype = "carrier-pigeon"\n', "services.a.type", 2),
    ('[services]\na = { type = "apprise", url = 5 }\n', "services.a.url", 2),
])
def test_validation_errors_locate_the_key(tmp_path, text, key, line):
    error = config_error(tmp_path, text)
    assert error.key == key
    assert error.line == line
    assert f"config.toml:{line}: {key}: " in str(error)


def test_missing_required_key_points_at_its_table(tmp_path):
    error = config_error(tmp_path, '[server]\nlisten = "127.0.0.1:1"\n\n[services.a]\ntype = "apprise"\n')
    assert error.key == "services.a.url"
    assert error.line == 4
    assert "missing" in str(error)


def test_missing_type_is_an_error(tmp_path):
    error = config_error(tmp_path, '[services.a]\nurl = "json://h/x"\n')
    assert error.key == "services.a.type"
    assert "apprise" in error.reason


def test_validation_error_line_with_commented_table_headers(tmp_path):
    text = MULTI_TABLE.replace("[services.kodi]", "[services.kodi]      # the living room") \
                      .replace("[services.discord]", "[services.discord]   # my server")
    error = config_error(tmp_path, text)
    assert error.key == "services.discord.priority"
    assert error.line == 15


@pytest.mark.parametrize("text, key", [
    ('[sevices.a]\ntype = "apprise"\n', "sevices"),
    ('[server]\nlisten = "127.0.0.1:1"\nlisen = "127.0.0.1:2"\n', "server.lisen"),
    ('[store]\npth = "x.db"\n', "store.pth"),
    ('[worker]\nthread = 2\n', "worker.thread"),
    ('[sources.backups]\ntype = "generic"\ntokn = "abc"\n', "sources.backups.tokn"),
    ('[services.a]\ntype = "apprise"\nurl = "json://h/x"\nprio = 3\n', "services.a.prio"),
    ('[services.a]\ntype = "apprise"\nurl = "json://h/x"\npassword = "hunter2hunter2"\n', "services.a.password"),
])
def test_unknown_keys_at_every_level_are_errors_naming_the_key(tmp_path, text, key):
    error = config_error(tmp_path, text)
    assert error.key == key
    assert f"{key}: " in str(error)
    assert "unknown" in error.reason


def test_unknown_key_line(tmp_path):
    error = config_error(tmp_path, '[server]\nlisten = "127.0.0.1:1"\n\n[worker]\nthreads = 2\nthread = 3\n')
    assert error.line == 6


SECRET = "s3cr3t-Val-9f8e7d6c"


@pytest.mark.parametrize("text", [
    f'[server]\ntoken = ["{SECRET}"]\n',
    f'[server]\ntoken = {{ value = "{SECRET}" }}\n',
    f'[sources.box]\ntype = "generic"\ntoken = ["{SECRET}"]\n',
    f'[sources.box]\ntype = "generic"\ntokn = "{SECRET}"\n',
    f'[services.a]\ntype = "apprise"\nurl = "json://h/x"\npassword = "{SECRET}"\n',
    f'[services.a]\ntype = "apprise"\nurl = "json://h/x"\ntoken = "{SECRET}"\n',
    f'[services.a]\ntype = "apprise"\nurl = "hooks.example.com/{SECRET}"\n',
    f'[services.a]\ntype = "apprise"\nurl = ["discord://1/{SECRET}"]\n',
    f'[server]\ntoken = "{SECRET}\n',                       # unterminated string
    f'[server]\ntoken = "{SECRET}" extra\n',                # garbage after the value
])
def test_secret_values_never_appear_in_errors(tmp_path, text):
    error = config_error(tmp_path, text)
    assert SECRET not in str(error)
    assert SECRET not in error.reason
    assert SECRET[:8] not in str(error)


def test_secret_error_still_says_what_was_expected(tmp_path):
    error = config_error(tmp_path, '[server]\ntoken = 12345678\n')
    assert error.key == "server.token"
    assert "12345678" not in str(error)
    assert "expected a non-empty string" in error.reason


# ---------------------------------------------------------------------------------------------
# Values


def test_full_config_is_read(tmp_path):
    path = write(tmp_path / "config.toml", """\
[server]
listen = "[::1]:9000"
token = "server-token-1"
max_body = "64KB"
dedupe_window = "10m"

[store]
path = "/var/lib/notifyd/n.db"
synchronous = "FULL"
keep_succeeded = "7d"
keep_dead = "14d"

[worker]
threads = 2
max_attempts = 3
backoff = ["1s", "2m"]
timeout = "5s"
lease = "1m"

[sources.backups]
type = "generic"
token = "source-token-1"

[services.discord]
type = "apprise"
url = "discord://1234567890/abcdefghijklmnop"
events = ["Download", "health"]
priority = 3
enabled = false
""")
    config = read_config_file(path)
    assert config.path == path
    assert (config.server.host, config.server.port, config.server.listen) == ("::1", 9000, "[::1]:9000")
    assert config.server.token == "server-token-1"
    assert config.server.max_body == 64000
    assert config.server.dedupe_window == 600
    assert config.store.path == Path("/var/lib/notifyd/n.db")
    assert (config.store.synchronous, config.store.keep_succeeded, config.store.keep_dead) == \
        ("FULL", 7 * 86400, 14 * 86400)
    assert (config.worker.threads, config.worker.max_attempts, config.worker.backoff) == (2, 3, (1.0, 120.0))
    assert (config.worker.timeout, config.worker.lease) == (5.0, 60.0)
    assert config.sources["backups"].type == "generic"
    assert config.sources["backups"].token == "source-token-1"
    discord = config.services["discord"]
    assert (discord.type, discord.enabled, discord.priority) == ("apprise", False, 3)
    assert discord.events == ("download", "health")
    assert discord.options == {"url": "discord://1234567890/abcdefghijklmnop"}
    assert discord.job_kind == "notify"


SOURCE_SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"


def test_a_secret_on_a_comfydeploy_source_is_refused_saying_to_use_a_token(tmp_path):
    error = config_error(tmp_path, f'[sources.comfy]\ntype = "comfydeploy"\ntoken = "t0ken-comfy"\n'
                                   f'secret = "{SOURCE_SECRET}"\n')
    assert str(error) == (f'{tmp_path / "config.toml"}:4: sources.comfy.secret: ComfyDeploy never signs its '
                          'webhooks; protect this source with token = "…" and put ?token=… in the webhook URL')
    assert SOURCE_SECRET not in str(error) and "t0ken-comfy" not in str(error)


@pytest.mark.parametrize("stype, app", [("radarr", "Radarr"), ("sonarr", "Sonarr"), ("lidarr", "Lidarr"),
                                        ("readarr", "Readarr")])
def test_a_secret_on_an_arr_source_is_refused_saying_where_the_token_goes(tmp_path, stype, app):
    error = config_error(tmp_path, f'[sources.box]\ntype = "{stype}"\nsecret = "{SOURCE_SECRET}"\n')
    assert (error.key, error.line) == ("sources.box.secret", 3)
    assert error.reason == (f'{app} never signs its webhooks; protect this source with token = "…" and enter it '
                            "as the webhook's Password in the app (or put ?token=… in the webhook URL)")


def test_a_secret_stays_for_a_generic_source_and_a_token_for_every_type(tmp_path):
    text = f'[sources.box]\ntype = "generic"\nsecret = "{SOURCE_SECRET}"\n'
    for stype in ("radarr", "sonarr", "lidarr", "readarr", "comfydeploy", "generic"):
        text += f'\n[sources.{stype}1]\ntype = "{stype}"\ntoken = "token-of-{stype}"\n'
    config = parse_config_text(text, tmp_path / "c.toml")
    assert config.sources["box"].secret == SOURCE_SECRET
    assert config.sources["comfydeploy1"].token == "token-of-comfydeploy"
    assert {"token-of-comfydeploy", SOURCE_SECRET} <= set(config.secrets())


def test_service_defaults(tmp_path):
    config = parse_config_text('[services.a]\ntype = "apprise"\nurl = "json://h/x"\n', tmp_path / "c.toml")
    a = config.services["a"]
    assert (a.enabled, a.events, a.priority) == (True, None, 5)


def test_source_named_like_a_builtin_is_an_error(tmp_path):
    error = config_error(tmp_path, '[sources.generic]\ntype = "generic"\n')
    assert error.key == "sources.generic"


def test_relative_store_path_is_taken_from_the_config_folder(tmp_path):
    path = write(tmp_path / "etc" / "config.toml", '[store]\npath = "data/notifyd.db"\n')
    config = read_config_file(path)
    assert config.store.path == tmp_path / "etc" / "data" / "notifyd.db"


def test_absolute_store_path_is_kept(tmp_path):
    path = write(tmp_path / "etc" / "config.toml", f'[store]\npath = "{tmp_path / "db" / "x.db"}"\n')
    assert read_config_file(path).store.path == tmp_path / "db" / "x.db"


def test_a_postgresql_url_picks_that_engine(tmp_path):
    path = write(tmp_path / "config.toml", '[store]\nurl = "postgresql://notifyd:pw-secret-1@db.lan:5432/notifyd"\n'
                                          '\n[server]\nnode_id = "box-1"\n')
    config = read_config_file(path, env={})
    assert config.store.url == "postgresql://notifyd:pw-secret-1@db.lan:5432/notifyd"
    assert config.server.node_id == "box-1"
    assert "pw-secret-1" in config.secrets() and "db.lan" not in config.secrets()


def test_notifyd_store_url_is_the_url_when_the_file_names_none(tmp_path):
    url = "postgres://u:p4ssword@db/notifyd"
    assert load_config(None, env={"HOME": str(tmp_path), "NOTIFYD_STORE_URL": url}).store.url == url
    path = write(tmp_path / "config.toml", '[store]\nurl = "postgresql://file@db/notifyd"\n')
    assert read_config_file(path, env={"NOTIFYD_STORE_URL": url}).store.url == "postgresql://file@db/notifyd"


def test_a_path_and_a_url_together_are_an_error(tmp_path):
    error = config_error(tmp_path, '[store]\npath = "/var/lib/x.db"\nurl = "postgresql://db/notifyd"\n')
    assert error.key == "store.url" and "both set" in str(error) and error.line == 3
    path = write(tmp_path / "env.toml", '[store]\npath = "/var/lib/x.db"\n')
    with pytest.raises(ConfigError, match="NOTIFYD_STORE_URL is set"):
        read_config_file(path, env={"NOTIFYD_STORE_URL": "postgresql://db/notifyd"})


@pytest.mark.parametrize("url", ["mysql://db/notifyd", "postgresql://", "db.lan:5432", "sqlite:///x.db"])
def test_a_store_url_must_be_postgresql(tmp_path, url):
    error = config_error(tmp_path, f'[store]\nurl = "{url}"\n')
    assert error.key == "store.url" and "PostgreSQL URL" in str(error)


@pytest.mark.parametrize("url", ["postgresql://u:p#ss-word@db/notifyd", "postgresql://u:p?ss-word@db/notifyd"])
def test_a_password_two_parsers_would_read_apart_must_be_encoded(tmp_path, url):
    error = config_error(tmp_path, f'[store]\nurl = "{url}"\n')
    assert error.key == "store.url" and "percent-encode" in str(error) and "ss-word" not in str(error)
    encoded = write(tmp_path / "ok.toml", '[store]\nurl = "postgresql://u:p%23ss-word@db/notifyd"\n')
    assert {"p%23ss-word", "p#ss-word"} <= set(read_config_file(encoded, env={}).secrets())


def test_a_bad_store_url_in_the_environment_names_the_variable(tmp_path):
    with pytest.raises(ConfigError, match=r"\$NOTIFYD_STORE_URL: expected a PostgreSQL URL"):
        load_config(None, env={"HOME": str(tmp_path), "NOTIFYD_STORE_URL": "redis://x"})


# ---------------------------------------------------------------------------------------------
# Service filters


def service(events: tuple[str, ...] | None) -> ServiceConfig:
    return ServiceConfig(name="s", type="apprise", events=events, options={"url": "json://h/x"})


@pytest.mark.parametrize("kind", ["download", "health", "run.completed", "notification", "grab"])
def test_wants_by_default_every_kind(kind):
    assert service(None).wants(kind)


def test_wants_never_test_events():
    assert not service(None).wants("test")
    assert not service(("*",)).wants("test")
    assert not service(("test",)).wants("test")


@pytest.mark.parametrize("kind", ["download", "health", "run.failed", "anything"])
def test_wants_star_takes_every_kind(kind):
    assert service(("*",)).wants(kind)


def test_wants_explicit_list():
    s = service(("download", "health"))
    assert s.wants("download")
    assert s.wants("health")
    assert not s.wants("grab")
    assert not s.wants("health_restored")
    assert not s.wants("upgrade")


def test_wants_empty_list_takes_nothing():
    assert not service(()).wants("download")


@pytest.mark.parametrize("kind", ["download_failed", "import_failed", "retag", "manual_interaction", "app_update",
                                  "file_delete", "run.failed"])
def test_wants_by_default_the_kinds_notifyd_knows(kind):
    assert service(None).wants(kind, "lidarr")


def test_an_unknown_kind_goes_only_where_it_is_named():
    assert not service(None).wants("foobar", "radarr") and not service(None).wants("foobar")
    assert service(("foobar",)).wants("foobar", "radarr") and service(("*",)).wants("foobar", "radarr")


def test_a_generic_sender_and_notifyd_send_name_their_own_kinds():
    assert service(None).wants("backup", "generic") and service(None).wants("notification", "manual")
    assert not service(None).wants("test", "generic")


def test_fold_window_default_value_and_bounds(tmp_path):
    assert parse_config_text("", tmp_path / "c.toml").server.fold_window == 10.0
    assert parse_config_text('[server]\nfold_window = "0s"\n', tmp_path / "c.toml").server.fold_window == 0.0
    with pytest.raises(ConfigError, match="server.fold_window: expected a duration from 0s to 1h"):
        parse_config_text('[server]\nfold_window = "2h"\n', tmp_path / "c.toml")


def test_events_from_the_file_are_lower_cased(tmp_path):
    config = parse_config_text('[services.a]\ntype = "apprise"\nurl = "json://h/x"\nevents = ["Download"]\n',
                               tmp_path / "c.toml")
    assert config.services["a"].wants("download")


# ---------------------------------------------------------------------------------------------
# Secrets


def secrets_of(text: str, tmp_path: Path) -> list[str]:
    return parse_config_text(text, tmp_path / "c.toml").secrets()


def test_secrets_include_server_and_source_tokens(tmp_path):
    found = secrets_of('[server]\ntoken = "server-token"\n\n[sources.box]\ntype = "generic"\n'
                       'token = "source-token-long"\n', tmp_path)
    assert "server-token" in found
    assert "source-token-long" in found


def test_secrets_include_the_discord_webhook_token(tmp_path):
    found = secrets_of('[services.d]\ntype = "apprise"\n'
                       'url = "discord://112233445566778899/AbCdEfGhIjKlMnOpQrStUvWxYz-0123456789"\n', tmp_path)
    assert "AbCdEfGhIjKlMnOpQrStUvWxYz-0123456789" in found


def test_secrets_include_the_mailto_password(tmp_path):
    found = secrets_of('[services.m]\ntype = "apprise"\nurl = "mailto://alice:hunter22@example.com"\n', tmp_path)
    assert "hunter22" in found
    assert "example.com" not in found


def test_secrets_include_the_telegram_bot_token(tmp_path):
    bot = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
    found = secrets_of(f'[services.t]\ntype = "apprise"\nurl = "tgram://{bot}/-1001234567"\n', tmp_path)
    assert bot in found


def test_secrets_include_query_tokens_but_not_addresses(tmp_path):
    found = secrets_of('[services.j]\ntype = "apprise"\nurl = "json://127.0.0.1:8080/hook?token=qwertyuiop"\n',
                       tmp_path)
    assert "qwertyuiop" in found
    assert not any("127.0.0.1" in s for s in found)


def test_secrets_are_longest_first_and_unique(tmp_path):
    found = secrets_of('[server]\ntoken = "abcd"\n\n[sources.box]\ntype = "generic"\ntoken = "abcdefghij"\n\n'
                       '[sources.box2]\ntype = "generic"\ntoken = "abcdefghij"\n', tmp_path)
    assert found == ["abcdefghij", "abcd"]


def test_no_secrets_in_a_default_config():
    assert parse_config({}, path=None, env={"XDG_STATE_HOME": "/s"}).secrets() == []


# ---------------------------------------------------------------------------------------------
# listen


@pytest.mark.parametrize("text, parts", [
    ("127.0.0.1:8765", ("127.0.0.1", 8765)),
    ("0.0.0.0:80", ("0.0.0.0", 80)),
    ("localhost:65535", ("localhost", 65535)),
    ("[::1]:8765", ("::1", 8765)),
    ("[::]:1", ("::", 1)),
    ("notify.lan:8765", ("notify.lan", 8765)),
])
def test_parse_listen(text, parts):
    assert parse_listen(text) == parts


@pytest.mark.parametrize("bad", ["127.0.0.1", "127.0.0.1:", ":8765", "::1:8765", "[::1]8765", "host:0",
                                 "host:65536", "host:port", "", 8765, None])
def test_parse_listen_rejects(bad):
    with pytest.raises(ValueError):
        parse_listen(bad)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "localhost"])
def test_is_loopback(host):
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "10.0.0.1", "example.com", "notify.lan", ""])
def test_is_not_loopback(host):
    assert not is_loopback(host)


# ---------------------------------------------------------------------------------------------
# The shipped example


def test_config_example_parses():
    config = read_config_file(ROOT / "config.example.toml", env={"XDG_STATE_HOME": "/s"})
    assert config.server.listen == "127.0.0.1:8765"
    assert config.server.token is None
    assert config.worker.backoff == (5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0, 10800.0)


def test_starter_config_is_the_example():
    assert (ROOT / "notifyd" / "starter_config.toml").read_bytes() == (ROOT / "config.example.toml").read_bytes()


def test_the_commented_service_examples_are_valid_when_uncommented():
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    tail = text[text.index("# [services.discord]"):]
    lines = [line[2:] for line in tail.splitlines()
             if line.startswith("# [") or (line.startswith("# ") and " = " in line and not line.startswith("#   "))]
    config = parse_config_text("\n".join(lines), None)
    assert sorted(config.services) == ["discord", "hook", "jellyfin", "kodi", "plex"]
    assert config.services["kodi"].options["path_map"] == (("/data/media", "/storage/media"),)
    assert config.services["discord"].options["templates"]["download"]["title"] == "🎬 {{ title }}"


def test_an_invalid_http_url_holding_a_token_is_not_echoed():
    with pytest.raises(ConfigError) as caught:
        parse_config({"services": {"p": {"type": "plex", "url": "plex.lan:32400/?X-Plex-Token=SuperSecretPlexToken123",
                                         "token": "t0k3n-value"}}}, path=None)
    assert "SuperSecretPlexToken123" not in str(caught.value) and "services.p.url" in str(caught.value)
