"""The README claims only what is there: its commands and options exist, its folders hold what it says."""
from __future__ import annotations

import pathlib
import re

from click.testing import CliRunner

from otwatch.sensor.cli import cli

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _commands() -> list[list[str]]:
    block = README.split("## What you get", 1)[1].split("```", 2)[1]
    return [line.split("#", 1)[0].split() for line in block.splitlines() if line.startswith("otwatch")]


def test_every_readme_command_and_option_exists():
    cmds = _commands()
    assert len(cmds) >= 8
    for words in cmds:
        path = [w for w in words[1:] if re.fullmatch(r"[a-z]+", w)]
        sub = []
        for w in path:               # the sub-command chain: stop at the first word that is an argument
            probe = CliRunner().invoke(cli, sub + [w, "--help"], terminal_width=200)
            if probe.exit_code != 0 or "Usage:" not in probe.output:
                break
            sub.append(w)
        helptext = CliRunner().invoke(cli, sub + ["--help"], terminal_width=200).output
        for opt in (w.strip("[]") for w in words if w.strip("[]").startswith("-") and w != "-"):
            assert re.search(r"(^|[\s,])%s([\s,=]|$)" % re.escape(opt.split("=")[0]), helptext, re.M), (words, opt)


def test_every_folder_in_the_readme_table_holds_something():
    for folder in re.findall(r"^\| `([a-z]+)/` \|", README, re.M):
        files = [p for p in (ROOT / folder).rglob("*") if p.is_file() and p.name != "__init__.py"
                 and "__pycache__" not in p.parts]
        assert files, f"README lists {folder}/ but it holds nothing besides __init__.py"


def test_readme_points_at_the_user_guide_and_it_exists():
    assert "docs/user-guide.md" in README
    guide = (ROOT / "docs" / "user-guide.md").read_text()
    for section in ("## The plant laptop", "## The headless appliance", "## The analyst with pcaps",
                    "## Reading the summary", "## Reading an inventory record"):
        assert section in guide
    for part in ("Messages per protocol and kind", "Decode coverage", "Anomalies", "Notes (informational"):
        assert f"**{part}" in guide
