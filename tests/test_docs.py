"""The guide (docs/) and the front door (README.md) do not go stale: the guide builds in Sphinx's
strict mode, where a link to a missing page or heading, or a page that no table of contents
lists, is an error; README's links reach files and headings that are there."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"

LINK = re.compile(r"!?\[(?:[^\]]|\][^(])*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~)")


def build(source: Path, out: Path) -> subprocess.CompletedProcess:
    """Sphinx in its strict mode. Proxies that lead nowhere: a theme or plugin that fetched
    anything at build time would fail the build instead of passing on a connected machine."""
    nowhere = "http://127.0.0.1:9"
    env = {**os.environ, "http_proxy": nowhere, "https_proxy": nowhere, "HTTP_PROXY": nowhere,
           "HTTPS_PROXY": nowhere, "no_proxy": "", "NO_PROXY": ""}
    return subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q",
                           "-b", "html", "-d", str(out / "doctrees"), str(source), str(out / "html")],
                          capture_output=True, text=True, env=env, timeout=300)


def prose(text: str, inline_code: bool = False) -> str:
    """The text outside fenced code blocks (and outside inline code, unless kept): where links
    are links and headings are headings."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line if inline_code else re.sub(r"`[^`]*`", "", line))
    return "\n".join(lines)


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading (MyST's myst_heading_anchors makes the same ones)."""
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found = set()
    for line in prose(page.read_text(), inline_code=True).splitlines():
        m = re.match(r"^(#{1,6})\s+(.*)$", line)
        if m:
            found.add(github_slug(m.group(2)))
    return found


def relative_links(page: Path) -> list[str]:
    return [target for target in LINK.findall(prose(page.read_text()))
            if not re.match(r"^[a-z]+:", target)]


def broken_links(page: Path) -> list[str]:
    """Links of page to a file that is not there, or to a heading its page does not have."""
    broken = []
    for target in relative_links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no such heading in {file.name}")
    return broken


def test_the_guide_builds_in_strict_mode_without_fetching_anything(tmp_path):
    r = build(DOCS, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    pages = sorted(p.stem for p in DOCS.glob("*.md"))
    built = sorted(p.stem for p in (tmp_path / "html").glob("*.html") if p.stem not in ("genindex", "search"))
    assert built == pages, (built, pages)
    # a page's text is there, not an empty shell
    assert "every repetition measured" in (tmp_path / "html" / "running.html").read_text()


def test_a_broken_link_or_a_page_left_out_of_the_contents_fails_the_build(tmp_path):
    source = tmp_path / "docs"
    shutil.copytree(DOCS, source, ignore=shutil.ignore_patterns("_build"))
    with (source / "running.md").open("a") as f:
        f.write("\nSee [gone](no-such-page.md) and [the heading](report.md#no-such-heading).\n")
    (source / "forgotten.md").write_text("# A page no table of contents lists\n")
    r = build(source, tmp_path / "out")
    said = r.stdout + r.stderr
    assert r.returncode != 0, said
    assert "no-such-page.md" in said and "no-such-heading" in said, said
    assert "forgotten" in said and "toctree" in said, said


def test_links_in_the_guide_name_headings_as_github_does():
    # Sphinx also accepts docutils' own ids, which GitHub's rendering of the pages lacks.
    broken = {page.name: broken_links(page) for page in sorted(DOCS.glob("*.md"))}
    assert not any(broken.values()), {k: v for k, v in broken.items() if v}


def test_readme_is_the_front_door():
    text = README.read_text()
    assert len(text.splitlines()) < 300
    assert not broken_links(README), broken_links(README)
    # the two commands and the fast lane, each a script that is there
    for command in ("scripts/run-quick.sh", "scripts/test.sh", "scripts/test.sh --fast"):
        assert command in text, command
        assert os.access(ROOT / command.split()[0], os.X_OK), command
    # every page of the guide is reachable from it
    linked = {(README.parent / t.partition("#")[0]).resolve() for t in relative_links(README)}
    missing = [p.name for p in DOCS.glob("*.md") if p.resolve() not in linked]
    assert not missing, missing


def test_the_link_checker_sees_a_missing_heading(tmp_path):
    (tmp_path / "a.md").write_text("# Title\n\n## A heading: `with code`\n\n```\n[not](a link)\n```\n")
    (tmp_path / "b.md").write_text("[ok](a.md#a-heading-with-code) [bad](a.md#a-heading) [gone](c.md)\n")
    assert broken_links(tmp_path / "b.md") == ["a.md#a-heading: no such heading in a.md", "c.md: no such file"]
