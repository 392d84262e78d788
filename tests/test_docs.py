"""Docs inside the repository stay true: every `docs/...md#anchor` a file names exists, and the README's command
summary lists every command and option the `aoi` app has."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import typer.main

from cli import app

ROOT = Path(__file__).resolve().parents[1]
DOC_LINK = re.compile(r"\bdocs/(\w+\.md)#([\w-]+)")


def anchors(page: Path) -> set[str]:
    text = page.read_text()
    return set(re.findall(r'<a id="([\w-]+)"></a>', text))


def test_every_docs_anchor_named_in_the_repository_exists():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    wrong = []
    for name in files:
        path = ROOT / name
        if path.suffix not in {".py", ".yaml", ".yml", ".md", ".toml", ".mako"} or not path.is_file():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            for page, anchor in DOC_LINK.findall(line):
                if not (ROOT / "docs" / page).is_file() or anchor not in anchors(ROOT / "docs" / page):
                    wrong.append(f"{name}:{number} names docs/{page}#{anchor}, which does not exist")
    assert not wrong, "\n".join(wrong)


def test_no_comment_points_at_a_numbered_fact_or_an_issue():
    """Numbered domain facts and issue numbers mean nothing inside the repository: point at docs/ instead."""
    pattern = re.compile(r"\b(domain )?facts? \d\b|\bissues? #?\d+\b", re.IGNORECASE)
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    wrong = []
    for name in files:
        path = ROOT / name
        if path.suffix not in {".py", ".yaml", ".yml", ".toml"} or name == "tests/test_docs.py" or not path.is_file():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if pattern.search(line):
                wrong.append(f"{name}:{number}: {line.strip()}")
    assert not wrong, "\n".join(wrong)


def commands(group, path: tuple[str, ...] = ()):
    """(command words, its options' long names) of every visible command, groups included (Typer's own click)."""
    for name, command in sorted(group.commands.items()):
        if command.hidden:
            continue
        words = (*path, name)
        options = [
            opt
            for param in command.params
            if param.param_type_name == "option" and not param.hidden
            for opt in (*param.opts, *param.secondary_opts)
            if opt.startswith("--") and opt != "--help"
        ]
        yield words, options
        if hasattr(command, "commands"):
            yield from commands(command, words)


def summary() -> dict[str, str]:
    """The README's command summary as {first word after `aoi`: every line of its entries}, comments cut off."""
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## The CLI")
    block = readme[
        readme.index("```bash", start) + len("```bash") : readme.index("```", readme.index("```bash", start) + 7)
    ]
    entries: dict[str, str] = {}
    current = None
    for line in block.splitlines():
        text = line.split("#", 1)[0]
        if line.startswith("aoi "):
            current = text.split()[1]
            entries[current] = entries.get(current, "") + " " + text
        elif line.startswith(" ") and current:
            entries[current] += " " + text
    return entries


def test_the_readme_command_summary_lists_every_command_and_option():
    root = typer.main.get_command(app)
    assert hasattr(root, "commands")
    entries = summary()
    top = " ".join(entries.values())
    missing = []
    root_options = [o for p in root.params if p.param_type_name == "option" for o in (*p.opts, *p.secondary_opts)]
    missing += [
        f"aoi {o}"
        for o in root_options
        if o.startswith("--") and o not in {"--help", "--install-completion", "--show-completion"} and o not in top
    ]
    for words, options in commands(root):
        entry = entries.get(words[0])
        if entry is None:
            missing.append(f"aoi {' '.join(words)}: no line")
            continue
        tokens = set(re.findall(r"[\w-]+", entry))
        missing += [f"aoi {' '.join(words)}: the word {w}" for w in words[1:] if w not in tokens]
        missing += [
            f"aoi {' '.join(words)} {o}" for o in options if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", entry)
        ]
    assert not missing, "the README's command summary lacks:\n" + "\n".join(missing)
