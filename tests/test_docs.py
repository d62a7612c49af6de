"""The README and docs/ hold together: every relative link resolves inside the repository (to a file
and, for ``#anchor``, to a heading of it), nothing points at files a clone does not have, the README
stays an index of at most 12 KiB, and docs/README.md links every page of docs/.

Each check is a function that returns the defects it finds, and each is also run on a small
repository in a temporary folder that has exactly one defect, so a check that finds nothing
cannot pass by accident.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
README_MAX_BYTES = 12 * 1024

FENCE = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1[^\n]*$", re.M | re.S)
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^ {0,3}\[[^\]]+\]:[ \t]*<?([^\s>]+)>?(?:[ \t].*)?$", re.M)
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$", re.M)
#: files of the steering repository that a user who clones tinyjax does not have
OUTSIDE = re.compile(r"(?<![\w.-])(shared/|DESIGN\.md|REFERENCES\.md)")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def documents(repo: Path = REPO) -> list[Path]:
    """The README and every Markdown page of docs/."""
    return [repo / "README.md", *sorted((repo / "docs").glob("*.md"))]


def without_code_blocks(text: str) -> str:
    """``text`` with fenced blocks blanked (a ``# comment`` in a bash block is not a heading)."""
    return FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)


def without_code(text: str) -> str:
    """``text`` with fenced blocks and code spans blanked: what looks like a link there is not one."""
    return CODE_SPAN.sub("", without_code_blocks(text))


def links(text: str) -> list[str]:
    """Every link target of a Markdown text (inline, image and reference-style), in order."""
    prose = without_code(text)
    return INLINE_LINK.findall(prose) + REFERENCE_LINK.findall(prose)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: markup dropped, lower case, punctuation removed, spaces -> '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)   # a link's text stays
    text = text.replace("`", "").lower()
    return "".join(c for c in text if c.isalnum() or c in " -_").replace(" ", "-")


def anchors(text: str) -> set[str]:
    """The anchors of a document's headings (repeated headings get -1, -2, ... as on GitHub)."""
    seen: dict[str, int] = {}
    out = set()
    for _, heading in HEADING.findall(without_code_blocks(text)):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def link_problems(doc: Path, repo: Path = REPO) -> list[str]:
    """What is wrong with the links of ``doc``: a target missing, an anchor with no heading, a path
    leaving the repository, and any mention of the steering repository's files (in code too)."""
    text = doc.read_text(encoding="utf-8")
    name = doc.relative_to(repo).as_posix()
    problems = [f"{name}: refers to {m.group(1)!r}, which is outside the repository"
                for m in OUTSIDE.finditer(text)]
    root = repo.resolve()
    for target in links(text):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        if SCHEME.match(target) or target.startswith("/"):
            problems.append(f"{name}: {target} is not a path relative to the repository")
            continue
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc.resolve()
        if not file.is_relative_to(root):
            problems.append(f"{name}: {target} leaves the repository")
        elif not file.exists():
            problems.append(f"{name}: {target} does not exist")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file.read_text(encoding="utf-8")):
            problems.append(f"{name}: {target} names no heading of {file.name}")
    return problems


def unindexed(docs: Path) -> list[str]:
    """The pages of ``docs`` that ``docs/README.md`` does not link."""
    index = docs / "README.md"
    linked = {(docs / t.partition("#")[0]).resolve() for t in links(index.read_text(encoding="utf-8"))}
    return [p.name for p in sorted(docs.glob("*.md")) if p != index and p.resolve() not in linked]


def oversized(readme: Path, limit: int = README_MAX_BYTES) -> list[str]:
    size = len(readme.read_bytes())
    return [f"{readme.name} is {size:,} bytes, more than {limit:,}"] if size > limit else []


# --- the repository's documents ---------------------------------------------------------------


def test_the_docs_have_their_pages():
    names = {p.name for p in documents()}
    assert {"README.md", "design.md", "papers.md", "benchmarks.md", "deployment.md"} <= names
    assert len(documents()) >= 10


@pytest.mark.parametrize("doc", documents(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_link_resolves_inside_the_repository(doc):
    assert link_problems(doc) == []


def test_the_readme_is_at_most_12_kib():
    assert oversized(REPO / "README.md") == []


def test_the_docs_index_links_every_page():
    assert unindexed(DOCS) == []


def test_the_readme_links_the_docs_index():
    assert "docs/README.md" in links((REPO / "README.md").read_text(encoding="utf-8"))


# --- the checks themselves, each on a document with one defect --------------------------------


GOOD_PAGE = """# A page

## Heading `with` code: and punctuation

Text with a [link](other.md#second-part) and ``code [not](a-link.md)``.

```bash
cat ../../shared-nothing   # a comment, not a heading
```
"""

OTHER_PAGE = """# Other

## Second part

## Second part
"""

DEFECTS = {
    "missing file": ("[x](missing.md)", "does not exist"),
    "missing anchor": ("[x](other.md#third-part)", "names no heading"),
    "missing anchor in the same page": ("[x](#nowhere)", "names no heading"),
    "leaves the repository": ("[x](../../outside.md)", "leaves the repository"),
    "absolute path": ("[x](/etc/passwd)", "not a path relative"),
    "file URL": ("[x](file:///etc/passwd)", "not a path relative"),
    "shared folder": ("See `../shared/facts`.", "outside the repository"),
    "design file": ("As DESIGN.md says.", "outside the repository"),
    "references file": ("The facts of REFERENCES.md.", "outside the repository"),
    "reference-style link": ("[x][y]\n\n[y]: nothing.md", "does not exist"),
    "image": ("![plan](plan.png)", "does not exist"),
}


def fake_repo(tmp_path: Path, extra: str = "") -> Path:
    repo = tmp_path / "repo"
    (repo / "docs").mkdir(parents=True)
    (repo / "README.md").write_text("# r\n\n[docs](docs/README.md)\n")
    (repo / "docs" / "README.md").write_text("# Index\n\n[page](page.md), [other](other.md#other)\n")
    (repo / "docs" / "page.md").write_text(GOOD_PAGE + extra + "\n")
    (repo / "docs" / "other.md").write_text(OTHER_PAGE)
    return repo


def test_a_sound_fake_repository_passes(tmp_path):
    repo = fake_repo(tmp_path, "[again](other.md#second-part-1) [self](#a-page) [web](https://example.org)")
    assert [p for doc in documents(repo) for p in link_problems(doc, repo)] == []
    assert unindexed(repo / "docs") == []
    assert anchors(OTHER_PAGE) == {"other", "second-part", "second-part-1"}
    assert slug("Heading `with` code: and punctuation") == "heading-with-code-and-punctuation"


@pytest.mark.parametrize("defect", DEFECTS)
def test_the_link_check_reports_each_defect(tmp_path, defect):
    markdown, message = DEFECTS[defect]
    repo = fake_repo(tmp_path, markdown)
    problems = link_problems(repo / "docs" / "page.md", repo)
    assert len(problems) == 1 and message in problems[0], problems


def test_the_index_check_reports_an_unlinked_page(tmp_path):
    repo = fake_repo(tmp_path)
    (repo / "docs" / "orphan.md").write_text("# Orphan\n")
    assert unindexed(repo / "docs") == ["orphan.md"]


def test_the_size_check_reports_a_readme_over_12_kib(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_bytes(b"x" * README_MAX_BYTES)
    assert oversized(readme) == []
    readme.write_bytes(b"x" * (README_MAX_BYTES + 1))
    assert oversized(readme) == [f"README.md is {README_MAX_BYTES + 1:,} bytes, more than 12,288"]
