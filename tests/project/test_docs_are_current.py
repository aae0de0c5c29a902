"""The docs say what is true now (issue 49): README.md and docs/benchmarks.md stay short, and
no page and no code comment holds a dated measurement. Results of a sitting, with their date,
live in benchmarks/results/<date>.md (not checked: dated results are what they are for), and
docs/benchmarks.md's "Latest results" section is the one place a page names its results' date.

A dated measurement is a date next to a figure in the same sentence or table row ("On
2026-11-25 the hour took 27.2 s"), a "measured 2026-..." phrase, a date with a time of day
("2026-11-24, evening") or a dated heading; in code comments also a before/after timing
("26.7 -> 11.5 s"). Dates in code (`--since 2026-11-01`, ``metric_date=2026-01-31``), in link
targets and in HTML anchors are examples or addresses, not measurements.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 300
SHORT_PAGES = ("README.md", "docs/benchmarks.md")
# the page a newcomer reads to learn why any model rebuilds what it rebuilds
INCREMENTAL_PAGE, INCREMENTAL_MAX_LINES = "docs/incremental.md", 120

# Pages and sections not checked, each with why. Remove an entry once its reason is gone.
EXEMPT_PAGES = {
    # the collector's page, edited in the collector's own work (its benchmark section is dated)
    "docs/capture.md",
}
EXEMPT_SECTIONS = {
    # the latest results with their date and machine: the one dated section a page keeps
    ("docs/benchmarks.md", "## Latest results"),
}
# Comments and docstrings of these files are checked: the Python package and the benchmarks.
CODE_ROOTS = ("orchestration", "benchmarks")

DATE = re.compile(r"\b20\d\d-[01]\d-[0-3]\d\b")
UNIT = r"(?:ms|µs|us|s|sec|seconds?|min|minutes?|h|hours?|KiB|MiB|GiB|KB|MB|GB|x)"
FIGURE = re.compile(r"\b\d[\d,]*(?:\.\d+)?\s?" + UNIT + r"(?![\w/])|\b\d+(?:\.\d+)?\s?%")
MEASURED_ON = re.compile(r"\b(?:measured|timed|benchmarked)\b.*?\b20\d\d-[01]\d-[0-3]\d\b", re.IGNORECASE)
DATE_AND_TIME_OF_DAY = re.compile(
    r"\b20\d\d-[01]\d-[0-3]\d\b,?\s+(?:early\s+|late\s+)?(?:morning|afternoon|evening|night)\b", re.IGNORECASE
)
BEFORE_AFTER = re.compile(r"\d[\d,]*(?:\.\d+)?\s?" + UNIT + r"?\s*->\s*\d[\d,]*(?:\.\d+)?\s?" + UNIT + r"(?![\w/])")

CODE_BLOCK = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
MARKUP = (
    re.compile(r"``.+?``"),  # reStructuredText inline code
    re.compile(r"`[^`\n]+`"),  # Markdown inline code
    re.compile(r"\]\([^)\s]*\)"),  # link targets
    re.compile(r"<[^>\n]+>"),  # HTML tags (anchors)
)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(`*])")


def prose(text: str) -> str:
    """The text without code, link targets and HTML: what a reader takes as statements."""
    for pattern in MARKUP:
        text = pattern.sub(" ", text)
    return text


def dated_measurements(text: str, *, code_comment: bool = False) -> list[str]:
    """The sentences (or table rows, headings) of ``text`` that state a dated measurement."""
    found = []
    units: list[str] = []
    for block in re.split(r"\n\s*\n", CODE_BLOCK.sub("", text)):
        lines = block.splitlines()
        for line in lines:
            if line.lstrip().startswith(("|", "#")) and not code_comment:
                units.append(line)  # a table row or a heading is a statement of its own
        paragraph = " ".join(
            line.strip() for line in lines if code_comment or not line.lstrip().startswith(("|", "#"))
        )
        units.extend(SENTENCE_END.split(paragraph))
    for unit in units:
        plain = prose(unit)
        dated = DATE.search(plain)
        heading = not code_comment and plain.lstrip().startswith("#")
        if (
            (dated and (FIGURE.search(DATE.sub(" ", plain)) or heading))
            or MEASURED_ON.search(plain)
            or DATE_AND_TIME_OF_DAY.search(plain)
            or (code_comment and BEFORE_AFTER.search(plain))
        ):
            found.append(unit.strip())
    return found


def without_exempt_sections(relative: str, text: str) -> str:
    """The page's text less the sections exempted for it (a section runs to the next heading of its level)."""
    for page, heading in EXEMPT_SECTIONS:
        if page != relative:
            continue
        level = heading.split(" ", 1)[0]
        kept, skipping = [], False
        for line in text.splitlines():
            if line.strip() == heading:
                skipping = True
                continue
            if skipping and re.match(r"#{1,%d} " % len(level), line):
                skipping = False
            if not skipping:
                kept.append(line)
        text = "\n".join(kept)
    return text


def comments_and_docstrings(source: str) -> list[str]:
    """Each block of consecutive ``#`` comment lines, and each docstring, as one text."""
    texts: list[str] = []
    block: list[str] = []
    previous = -2
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            if token.start[0] != previous + 1 and block:
                texts.append("\n".join(block))
                block = []
            block.append(token.string.lstrip("#").strip())
            previous = token.start[0]
    if block:
        texts.append("\n".join(block))
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            docstring = ast.get_docstring(node)
            if docstring:
                texts.append(docstring)
    return texts


def pages() -> list[Path]:
    return [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]


def test_readme_and_benchmarks_page_are_short():
    for name in SHORT_PAGES:
        lines = len((REPO_ROOT / name).read_text().splitlines())
        assert lines <= MAX_LINES, (
            f"{name} has {lines} lines (at most {MAX_LINES}): details go to docs/, results to benchmarks/results/"
        )
    lines = len((REPO_ROOT / INCREMENTAL_PAGE).read_text().splitlines())
    assert lines <= INCREMENTAL_MAX_LINES, f"{INCREMENTAL_PAGE} has {lines} lines (at most {INCREMENTAL_MAX_LINES})"


def test_no_page_holds_a_dated_measurement():
    findings = []
    for page in pages():
        relative = page.relative_to(REPO_ROOT).as_posix()
        if relative in EXEMPT_PAGES:
            continue
        text = without_exempt_sections(relative, page.read_text())
        findings += [f"{relative}: {unit}" for unit in dated_measurements(text)]
    assert not findings, "move these to benchmarks/results/<date>.md and say what is true now:\n" + "\n".join(findings)


def test_no_code_comment_holds_a_timing_or_dated_measurement():
    findings = []
    for root in CODE_ROOTS:
        for path in sorted((REPO_ROOT / root).rglob("*.py")):
            relative = path.relative_to(REPO_ROOT).as_posix()
            for text in comments_and_docstrings(path.read_text()):
                findings += [f"{relative}: {unit}" for unit in dated_measurements(text, code_comment=True)]
    assert not findings, "comments say why; numbers go to benchmarks/results/:\n" + "\n".join(findings)


def test_the_checker_finds_dated_measurements():
    """The check can fail: each kind of dated measurement is found, and what is not one is left alone."""
    assert dated_measurements("Measured 2026-11-24: importing the definitions got faster.")
    assert dated_measurements("On 2026-11-25 CI's `make test` took 19.6 minutes in all.")
    assert dated_measurements("Measured on the reference machine on 2026-11-25 and 26 (one run; the floor took 62.4 s).")
    assert dated_measurements("| 2026-11-23 | 37.1 s | 5.6x |")
    assert dated_measurements("## The touched keys' side of a join (2026-11-24, evening)")
    assert dated_measurements("## Status (2026-11-22)")
    assert dated_measurements("# alone at 10M: 26.7 -> 11.5 s", code_comment=True)
    assert dated_measurements("the load peaked at 2.4 GB\n(2026-11-25, one run)", code_comment=True)

    assert not dated_measurements("convo-warehouse funnel `--since 2026-11-01` prints rates in %.")
    assert not dated_measurements("Hive-style day folders, ``metric_date=2026-01-31/part0.parquet``, 100 MB each.")
    assert not dated_measurements("[the 2026-11-20 results](../benchmarks/results/2026-11-20.md) hold the figures.")
    assert not dated_measurements('<a id="what-the-remaining-targets-would-take-2026-11-26-morning"></a>')
    assert not dated_measurements("Contract v1.2 (2026-10-01) adds the sales step rates.")
    assert not dated_measurements("# retry after 5 s, 10 s, 20 s, 40 s", code_comment=True)
    assert not dated_measurements('A duration: 1234 -> "1.23 s".', code_comment=True)


def test_exempt_sections_are_left_out_and_only_they():
    page = "# P\n\n## Latest results\n\nOn 2026-11-26 the build took 8.6x.\n\n## Targets\n\nOn 2026-11-26 it took 9 s.\n"
    kept = without_exempt_sections("docs/benchmarks.md", page)
    assert "8.6x" not in kept and "9 s" in kept
    assert dated_measurements(kept) == ["On 2026-11-26 it took 9 s."]
    assert without_exempt_sections("docs/other.md", page) == page
