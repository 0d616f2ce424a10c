"""Docs that cannot drift: every CLI command has help text and is named in the README."""

from __future__ import annotations

from pathlib import Path

import typer

from notifyd.cli import app

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
CLI_BLOCK = README.split("## CLI", 1)[1].split("```", 2)[1].splitlines()


def is_group(command: object) -> bool:
    return hasattr(command, "commands")        # typer vendors its own click: test by shape


def commands(group: object, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], object]]:
    found = []
    for name, command in group.commands.items():
        path = prefix + (name,)
        found.append((path, command))
        if is_group(command):
            found.extend(commands(command, path))
    return found


def test_every_command_has_help_and_is_in_the_readme() -> None:
    root = typer.main.get_command(app)
    assert is_group(root)
    listed = commands(root)
    assert len(listed) > 15
    for path, command in listed:
        assert (command.help or "").strip(), f"{' '.join(path)} has no help text"
        if is_group(command):
            assert any(line.startswith(f"notifyd {' '.join(path)} ") for line in CLI_BLOCK), \
                f"`notifyd {' '.join(path)}` is not in the README's CLI section"
        else:
            parent = " ".join(path[:-1])
            words = [w for line in CLI_BLOCK if line.startswith(f"notifyd {parent}".rstrip() + " ")
                     for w in line.split()]
            assert path[-1] in words, f"`notifyd {' '.join(path)}` is not in the README's CLI section"
        for param in command.params:
            if getattr(param, "param_type_name", "") == "option" and param.name != "help":
                assert (param.help or "").strip() or param.name in ("priority",), \
                    f"{' '.join(path)} {param.opts[0]} has no help text"


def test_the_readme_opens_with_the_two_commands() -> None:
    head = README.split("```", 2)[1]
    assert "pip install . && notifyd serve" in head
    assert "pip install -e '.[test]' && pytest" in head
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    assert "pip install -e '.[test]' && pytest" in ci
