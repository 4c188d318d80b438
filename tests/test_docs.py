"""The documentation: code snippets cover exactly what their titles name, both pages
include the same code, and `mkdocs build --strict` passes.

A stale snippet is fixed with `python docs/sync_snippets.py`.
"""

import ast
import html
import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "docs"))
from sync_snippets import SUBPAGES  # noqa: E402 (the pages under the example, one list)

MAIN_PAGES = ("docs/zh/examples/wgangp.md", "docs/en/examples/wgangp.md")
PAGES = MAIN_PAGES + tuple(
    f"docs/{lang}/examples/wgangp/{sub}.md" for lang in ("zh", "en") for sub in SUBPAGES
)
PAIRS = [
    (f"docs/zh/examples/{page}.md", f"docs/en/examples/{page}.md")
    for page in ("wgangp", *(f"wgangp/{sub}" for sub in SUBPAGES))
]
FIX = "run `python docs/sync_snippets.py` to update the ranges"

# fence line, then --8<--, the included file (optionally :START:END), --8<--
SNIPPET = re.compile(
    r"^(?P<indent>[ \t]*)`{3,}[ \t]*(?P<info>[^\n`]*)\n"
    r"(?P=indent)--8<--[ \t]*\n"
    r"(?P=indent)(?P<path>[^\s:]+)(?::(?P<start>-?\d+):(?P<end>-?\d+))?[ \t]*\n"
    r"(?P=indent)--8<--[ \t]*\n",
    re.M,
)


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def snippets(page):
    """[(line in page, path, start, end, linenums, title)] of every snippet block."""
    text = read(page)
    found = []
    for m in SNIPPET.finditer(text):
        info = m.group("info")
        linenums = re.search(r'\blinenums="(\d+)"', info)
        title = re.search(r'\btitle="([^"]*)"', info)
        found.append(
            (
                text.count("\n", 0, m.start()) + 1,
                m.group("path"),
                int(m.group("start")) if m.group("start") else None,
                int(m.group("end")) if m.group("end") else None,
                int(linenums.group(1)) if linenums else None,
                title.group(1) if title else None,
            )
        )
    return found


STEPS = (
    "set model",
    "set constraint",
    "set optimizer",
    "set validator",
    "initialize solver",
    "train model",
    "evaluate",
    "visualize",
    "export model",
)


def python_spans(source):
    """{name: (first line incl. decorators, end_lineno)} for top-level defs/classes and methods,
    and "function / step" for the blocks a step comment opens in a top-level function."""
    spans = {}
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    lines = source.splitlines()
    for node in ast.parse(source).body:
        if not isinstance(node, kinds):
            continue
        nodes = [(node.name, node)]
        if isinstance(node, ast.ClassDef):
            nodes += [(f"{node.name}.{c.name}", c) for c in node.body if isinstance(c, kinds)]
        for name, n in nodes:
            first = min([n.lineno] + [d.lineno for d in n.decorator_list])
            spans[name] = (first, n.end_lineno)
        if isinstance(node, ast.ClassDef):
            continue
        starts = []  # (line, step) of each step comment in the function
        for number in range(node.lineno, node.end_lineno + 1):
            text = lines[number - 1].strip()
            step = next(
                (
                    s
                    for s in STEPS
                    if text == f"# {s}" or text.startswith(f"# {s} ") or text.startswith(f"# {s}:")
                ),
                None,
            )
            if step:
                starts.append((number, step))
        for k, (number, step) in enumerate(starts):
            end = starts[k + 1][0] - 1 if k + 1 < len(starts) else node.end_lineno
            while not lines[end - 1].strip():
                end -= 1
            spans.setdefault(f"{node.name} / {step}", (number, end))
    return spans


def yaml_spans(source):
    """{top-level key: (its line, its last line)}: up to the next top-level entry, without
    trailing blank lines and top-level comments (they introduce what follows)."""
    lines = source.splitlines()
    keys = [i for i, line in enumerate(lines) if re.match(r"[A-Za-z_][\w.-]*\s*:", line)]
    spans = {}
    for n, i in enumerate(keys):
        last = (keys[n + 1] if n + 1 < len(keys) else len(lines)) - 1
        while last > i and (not lines[last].strip() or lines[last].startswith("#")):
            last -= 1
        spans[lines[i].split(":")[0].strip()] = (i + 1, last + 1)
    return spans


def spans_of(path):
    source = read(path)
    return yaml_spans(source) if path.endswith((".yaml", ".yml")) else python_spans(source)


def all_snippets():
    return [(page, *s) for page in PAGES for s in snippets(page)]


def test_pages_have_snippets():
    for page in MAIN_PAGES:
        ranged = [s for s in snippets(page) if s[2] is not None]
        assert len(ranged) >= 20, f"{page}: only {len(ranged)} ranged snippets found"


@pytest.mark.parametrize("page", PAGES)
def test_snippet_files_exist(page):
    missing = [
        f"{page}:{line}: {path}"
        for line, path, *_ in snippets(page)
        if not os.path.isfile(os.path.join(ROOT, path))
    ]
    assert not missing, "snippets include files that do not exist:\n" + "\n".join(missing)


@pytest.mark.parametrize("page", PAGES)
def test_ranges_cover_the_named_definition(page):
    problems, cache = [], {}
    for line, path, start, end, linenums, title in snippets(page):
        if start is None:
            continue
        where = f"{page}:{line}: {path}:{start}:{end}"
        if not title or ":" not in title:
            problems.append(f'{where}: no title="<file>: <name>" naming what it shows')
            continue
        file_part, name = (s.strip() for s in title.rsplit(":", 1))
        if file_part != os.path.basename(path):
            problems.append(f"{where}: title names {file_part}, the block includes {path}")
            continue
        if not os.path.isfile(os.path.join(ROOT, path)):
            continue  # reported by test_snippet_files_exist
        if path not in cache:
            cache[path] = spans_of(path)
        if name not in cache[path]:
            problems.append(f"{where}: {name} is not a top-level definition of {path}")
            continue
        first, last = cache[path][name]
        if (start, end) != (first, last):
            problems.append(f"{where}: {name} is lines {first}-{last}")
        if linenums != start:
            problems.append(f'{where}: linenums="{linenums}", the range starts at {start}')
    assert not problems, f"stale or wrong snippets ({FIX}):\n" + "\n".join(problems)


@pytest.mark.parametrize("pair", PAIRS, ids=[en for _, en in PAIRS])
def test_pages_include_the_same_code(pair):
    def included(page):
        return [
            (path, start is not None, title or "") for _, path, start, _, _, title in snippets(page)
        ]

    zh, en = (included(page) for page in pair)
    assert sorted(zh) == sorted(en), (
        f"only in {pair[0]}: {sorted(set(zh) - set(en))}; "
        f"only in {pair[1]}: {sorted(set(en) - set(zh))}"
    )


def test_sync_script_agrees():
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "docs", "sync_snippets.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site built once by `mkdocs build --strict`: its folder."""
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip("mkdocs is not installed (pip install -r requirements-docs.txt)")
    out = tmp_path_factory.mktemp("docs") / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return out


def built_page(site, page):
    return site / page[len("docs/") :].replace(".md", "") / "index.html"


def test_mkdocs_build_strict(site):
    for page in PAGES:
        built = built_page(site, page)
        assert built.is_file(), f"{built} was not built"
        text = built.read_text(encoding="utf-8")
        assert "--8&lt;--" not in text and "--8<--" not in text, (
            f"{page}: a snippet was not included"
        )
        # every ranged block shows exactly its lines of the file
        for line, path, start, end, _, title in snippets(page):
            if start is None:
                continue
            block = re.search(
                r'<span class="filename">'
                + re.escape(html.escape(title))
                + r'</span>.*?<td class="code">(.*?)</td>',
                text,
                re.S,
            )
            assert block, f"{page}:{line}: no rendered block titled {title!r}"
            shown = html.unescape(re.sub(r"<[^>]+>", "", block.group(1))).rstrip("\n").split("\n")
            wanted = read(path).split("\n")[start - 1 : end]
            assert [s.rstrip() for s in shown] == [s.rstrip() for s in wanted], (
                f"{page}:{line}: the block titled {title!r} does not show {path}:{start}:{end}"
            )


def test_pages_languages(site):
    """The Chinese page has material's Chinese interface, the English page the English one
    (overrides/partials/language.html), and the search finds Chinese words: the index
    uses lunr's zh support and jieba has split the Chinese text into words."""
    for page, lang, placeholder in ((PAGES[0], "zh", "搜索"), (PAGES[1], "en", "Search")):
        text = built_page(site, page).read_text(encoding="utf-8")
        assert re.search(r'<html lang="%s"[ >]' % lang, text), f"{page}: not <html lang={lang!r}>"
        assert f'placeholder="{placeholder}"' in text, f"{page}: the search box is not {lang}"

    index = json.loads((site / "search" / "search_index.json").read_text(encoding="utf-8"))
    assert {"en", "zh"} <= set(index["config"]["lang"]), index["config"]
    separator = re.compile(index["config"]["separator"])
    words = set()
    for doc in index["docs"]:
        if doc["location"].startswith("zh/"):
            words.update(separator.split(doc["title"] + " " + doc["text"]))
    # words, not whole Chinese sentences: without jieba a run of Chinese text is one token
    missing = {"梯度", "惩罚", "训练"} - words
    assert not missing, (
        f"the search index of the zh page lacks the words {sorted(missing)} "
        "(is jieba installed? pip install -r requirements-docs.txt)"
    )
    assert "WGAN" in "".join(words)
