"""Live reload: the new config replaces the old only when it is valid and safe."""

from __future__ import annotations

from pathlib import Path

from notifyd.config import read_config_file
from notifyd.config_reload import ConfigHolder
from notifyd.daemon import ServeOptions, apply_overrides


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_a_reload_that_would_drop_the_token_on_a_public_address_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", '[server]\ntoken = "s3cret-token"\n')
    options = ServeOptions(config=str(path), listen="0.0.0.0:9999", threads=2)
    holder = ConfigHolder(apply_overrides(read_config_file(path), options),
                          prepare=lambda c: apply_overrides(c, options))
    assert holder().server.host == "0.0.0.0" and holder().server.token == "s3cret-token"

    write(path, '[server]\nmax_body = "2MiB"\ntoken = "new-token"\n')
    assert holder.reload()
    assert holder().server.host == "0.0.0.0" and holder().worker.threads == 2   # overrides kept
    assert holder().server.token == "new-token"

    write(path, '[server]\nmax_body = "2MiB"\n')
    assert not holder.reload()
    assert holder().server.token == "new-token"
    assert holder.state.state == "error" and "refusing to listen on 0.0.0.0" in holder.state.error


def test_values_of_the_wrong_type_are_config_errors_not_crashes(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", '[services.a]\ntype = "apprise"\nurl = "json://127.0.0.1:9/a"\n')
    holder = ConfigHolder(read_config_file(path))
    for bad in ('[services.a]\ntype = ["apprise"]\nurl = "json://x/y"\n',
                '[store]\npath = "~nosuchuser123/x.db"\n',
                '[worker]\nlease = "10ms"\n',
                '[worker]\nbackoff = [nan]\n',
                '[store]\nsynchronous = ["FULL"]\n'):
        write(path, bad)
        assert not holder.reload(), bad
        assert holder.state.state == "error" and str(path) in holder.state.error, holder.state.error
        assert "a" in holder().services                # the last good config is kept
    write(path, '[services.b]\ntype = "apprise"\nurl = "json://127.0.0.1:9/b"\n')
    assert holder.reload() and set(holder().services) == {"b"} and holder.state.state == "ok"


def test_an_unexpected_failure_is_reported_not_raised(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", "")

    def explode(config):
        raise RuntimeError("boom")

    holder = ConfigHolder(read_config_file(path), prepare=explode)
    assert not holder.reload()
    assert holder.state.state == "error" and "cannot be used" in holder.state.error
