"""Keep the line ranges of the documentation's code snippets on the code they name.

The example pages include code with pymdownx.snippets blocks whose fence title names
what they show:

    ``` py linenums="120" title="functions.py: CriticLoss"
    --8<--
    examples/wgangp/functions.py:120:160
    --8<--
    ```

The name after the colon is a top-level def or class of that file, `Class.method`,
`function / step` (a block of a function that opens with a step comment such as
`# set constraint`, up to the next step comment or the function's end), or, in a YAML
file, a top-level key. This script finds that definition and rewrites
START, END and linenums so the range covers exactly it: from its first decorator (or
its def / class line) to its last line (Python's ast end_lineno; for a YAML key, its
last line before the next top-level entry, trailing blank and top-level comment lines
left out).

    python docs/sync_snippets.py            # rewrite stale ranges in place
    python docs/sync_snippets.py --check    # exit 1 and list stale ranges; change nothing

Exit status 2 when a snippet cannot be resolved (no title, unknown name, missing file).
"""

import argparse
import ast
import os
import re
import sys
from typing import Dict, List, NamedTuple, Optional, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUBPAGES = (
    "usage",
    "faithfulness",
    "baselines",
    "speed",
    "mnist_recipes",
    "own_data",
    "published",
    "reference",
)  # under the example in the navigation
PAGES = tuple(
    f"docs/{lang}/examples/{page}.md"
    for lang in ("zh", "en")
    for page in ("wgangp", *(f"wgangp/{sub}" for sub in SUBPAGES))
)

# a fenced block whose body is exactly one snippet include (with or without a range)
SNIPPET = re.compile(
    r"^(?P<indent>[ \t]*)(?P<fence>`{3,})[ \t]*(?P<info>[^\n`]*)\n"
    r"(?P=indent)--8<--[ \t]*\n"
    r"(?P=indent)(?P<path>[^\s:]+)(?::(?P<start>-?\d+):(?P<end>-?\d+))?[ \t]*\n"
    r"(?P=indent)--8<--[ \t]*\n",
    re.M,
)
TITLE = re.compile(r'\btitle="(?P<title>[^"]*)"')
LINENUMS = re.compile(r'\blinenums="(?P<linenums>\d+)"')
YAML_KEY = re.compile(r"^(?P<key>[A-Za-z_][\w.-]*)[ \t]*:")


class Snippet(NamedTuple):
    page: str  # path relative to ROOT
    line: int  # 1-based line of the opening fence in the page
    path: str  # included file, relative to ROOT
    start: Optional[int]
    end: Optional[int]
    linenums: Optional[int]
    title: Optional[str]
    span: Tuple[int, int]  # character span of the block head (fence line .. closing --8<--)


def find_snippets(page: str, text: Optional[str] = None) -> List[Snippet]:
    if text is None:
        with open(os.path.join(ROOT, page), encoding="utf-8") as f:
            text = f.read()
    found = []
    for m in SNIPPET.finditer(text):
        info = m.group("info")
        title = TITLE.search(info)
        linenums = LINENUMS.search(info)
        found.append(
            Snippet(
                page=page,
                line=text.count("\n", 0, m.start()) + 1,
                path=m.group("path"),
                start=int(m.group("start")) if m.group("start") else None,
                end=int(m.group("end")) if m.group("end") else None,
                linenums=int(linenums.group("linenums")) if linenums else None,
                title=title.group("title") if title else None,
                span=m.span(),
            )
        )
    return found


# the step comments of PaddleScience's examples that open a block of a script's function
STEP = re.compile(
    r"^\s+# (set model|set constraint|set optimizer|set validator|initialize solver"
    r"|train model|evaluate|visualize|export model)\b"
)


def step_blocks(lines: List[str], first: int, last: int) -> Dict[str, Tuple[int, int]]:
    """{step: (first line, last line)} of the step blocks in lines first..last (1-based):
    each from its comment to the line before the next one, trailing blank lines left out."""
    heads = [(i, m.group(1)) for i in range(first, last + 1) if (m := STEP.match(lines[i - 1]))]
    blocks = {}
    for n, (i, step) in enumerate(heads):
        stop = heads[n + 1][0] - 1 if n + 1 < len(heads) else last
        while stop > i and not lines[stop - 1].strip():
            stop -= 1
        blocks.setdefault(step, (i, stop))
    return blocks


def python_definitions(source: str) -> Dict[str, Tuple[int, int]]:
    """{name: (first line, last line)} of top-level defs / classes, their methods, and the
    step blocks of top-level functions ("train / set constraint")."""
    spans = {}
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    lines = source.splitlines()

    def span(node):
        first = min([node.lineno] + [d.lineno for d in node.decorator_list])
        return first, node.end_lineno

    for node in ast.parse(source).body:
        if isinstance(node, kinds):
            spans[node.name] = span(node)
        if isinstance(node, ast.ClassDef):
            for child in node.body:
                if isinstance(child, kinds):
                    spans[f"{node.name}.{child.name}"] = span(child)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for step, block in step_blocks(lines, node.lineno, node.end_lineno).items():
                spans[f"{node.name} / {step}"] = block
    return spans


def yaml_sections(source: str) -> Dict[str, Tuple[int, int]]:
    """{top-level key: (first line, last line)} of a YAML file."""
    lines = source.splitlines()
    heads = [(i, m.group("key")) for i, line in enumerate(lines) if (m := YAML_KEY.match(line))]
    spans = {}
    for n, (i, key) in enumerate(heads):
        stop = heads[n + 1][0] if n + 1 < len(heads) else len(lines)
        last = stop - 1
        # trailing blank lines and top-level comments introduce the next entry
        while last > i and (not lines[last].strip() or lines[last].startswith("#")):
            last -= 1
        spans[key] = (i + 1, last + 1)
    return spans


def definitions(path: str) -> Dict[str, Tuple[int, int]]:
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        source = f.read()
    if path.endswith((".yaml", ".yml")):
        return yaml_sections(source)
    return python_definitions(source)


def named_target(snippet: Snippet) -> Tuple[Optional[str], Optional[str]]:
    """(name, problem) of a ranged snippet, from its title "file.py: Name"."""
    where = f"{snippet.page}:{snippet.line}: {snippet.path}"
    if not snippet.title or ":" not in snippet.title:
        return None, f'{where}: the fence needs title="{os.path.basename(snippet.path)}: <name>"'
    file_part, name = (s.strip() for s in snippet.title.rsplit(":", 1))
    if file_part != os.path.basename(snippet.path):
        return None, f"{where}: title names {file_part!r}, the snippet includes {snippet.path}"
    return name, None


def expected_range(
    snippet: Snippet, cache: dict
) -> Tuple[Optional[Tuple[int, int]], Optional[str]]:
    name, problem = named_target(snippet)
    if problem:
        return None, problem
    where = f"{snippet.page}:{snippet.line}: {snippet.path}"
    if not os.path.isfile(os.path.join(ROOT, snippet.path)):
        return None, f"{where}: no such file"
    if snippet.path not in cache:
        cache[snippet.path] = definitions(snippet.path)
    spans = cache[snippet.path]
    if name not in spans:
        return None, f"{where}: {name!r} is not a top-level definition of that file"
    return spans[name], None


def rewrite_head(text: str, snippet: Snippet, start: int, end: int) -> str:
    head = text[snippet.span[0] : snippet.span[1]]
    lines = head.split("\n")
    fence = lines[0]
    if LINENUMS.search(fence):
        fence = LINENUMS.sub(f'linenums="{start}"', fence, count=1)
    else:
        fence = f'{fence.rstrip()} linenums="{start}"'
    lines[0] = fence
    indent = lines[2][: len(lines[2]) - len(lines[2].lstrip())]
    lines[2] = f"{indent}{snippet.path}:{start}:{end}"
    return "\n".join(lines)


def sync(pages=PAGES, check: bool = False) -> int:
    problems, stale, cache = [], [], {}
    for page in pages:
        with open(os.path.join(ROOT, page), encoding="utf-8") as f:
            text = f.read()
        pieces, position = [], 0
        for snippet in find_snippets(page, text):
            if snippet.start is None:
                continue  # a whole file: nothing to keep in step
            wanted, problem = expected_range(snippet, cache)
            if problem:
                problems.append(problem)
                continue
            start, end = wanted
            if (snippet.start, snippet.end, snippet.linenums) == (start, end, start):
                continue
            stale.append(
                f"{page}:{snippet.line}: {snippet.path}:{snippet.start}:{snippet.end} "
                f"(linenums {snippet.linenums}) -> {start}:{end}  [{snippet.title}]"
            )
            pieces += [text[position : snippet.span[0]], rewrite_head(text, snippet, start, end)]
            position = snippet.span[1]
        if pieces and not check:
            pieces.append(text[position:])
            with open(os.path.join(ROOT, page), "w", encoding="utf-8") as f:
                f.write("".join(pieces))
    for line in problems:
        print(f"error: {line}", file=sys.stderr)
    for line in stale:
        print(("stale: " if check else "updated: ") + line)
    if problems:
        return 2
    return 1 if check and stale else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 when a range is stale"
    )
    parser.add_argument(
        "pages",
        nargs="*",
        default=list(PAGES),
        help="pages relative to the repository root (default: the example's pages)",
    )
    args = parser.parse_args(argv)
    return sync(args.pages, check=args.check)


if __name__ == "__main__":
    sys.exit(main())
