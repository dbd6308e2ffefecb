"""How the source is shaped: module sizes, function lengths and imports inside functions.

    python benchmarks/structure.py            # the table
    python benchmarks/structure.py --over 600 # only modules longer than that

Function length counts the lines from `def` to the function's last line (decorators excluded), for every function
and method, nested ones included. An import "inside a function" is any import statement below a `def` (counted once,
however deeply nested). Such an import is *explained* when a comment says why on its own lines or on the line above
it or above the run of imports it belongs to (STYLE.md: defer an import only for a measured cost, and say so); every
unexplained one is listed by file and line.
"""

from __future__ import annotations

import argparse
import ast
import re
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_PRAGMA = re.compile(r"#\s*(type:\s*ignore(\[[^\]]*\])?|noqa(:[\sA-Z0-9,]*)?)\s*$")
SRC = Path(__file__).resolve().parent.parent / "src" / "regops"


@dataclass(frozen=True)
class Module:
    name: str
    lines: int
    functions: tuple[tuple[str, int], ...]
    inner_imports: int
    unexplained: tuple[int, ...]  # line numbers of imports inside functions with no comment saying why


def measure(path: Path) -> Module:
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    functions: list[tuple[str, int]] = []
    inner: dict[int, ast.stmt] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            end = node.end_lineno or node.lineno
            functions.append((node.name, end - node.lineno + 1))
            inner |= {n.lineno: n for n in ast.walk(node) if isinstance(n, ast.Import | ast.ImportFrom)}
    name = str(path.relative_to(SRC.parent)).removesuffix(".py").replace("/", ".")
    lines = text.splitlines()
    silent = tuple(n for n in sorted(inner) if not _explained(lines, inner[n], inner.values()))
    return Module(name, len(lines), tuple(functions), len(inner), silent)


def _explained(lines: list[str], node: ast.stmt, imports: Iterable[ast.stmt]) -> bool:
    """A comment on the import's lines, or on the line above it or above the run of imports (and blank lines) it is
    part of."""
    own = range(node.lineno, (node.end_lineno or node.lineno) + 1)
    if any(_says_why(lines[n - 1]) for n in own):
        return True
    covered = {n for i in imports for n in range(i.lineno, (i.end_lineno or i.lineno) + 1)}
    above = node.lineno - 1
    while above >= 1 and (above in covered or not lines[above - 1].strip()):
        if _says_why(lines[above - 1]):
            return True
        above -= 1
    return above >= 1 and lines[above - 1].strip().startswith("#") and _says_why(lines[above - 1])


def _says_why(line: str) -> bool:
    """Whether ``line`` has a comment other than a checker's pragma (``type: ignore``, ``noqa``)."""
    return "#" in _PRAGMA.sub("", line)


def modules() -> list[Module]:
    return [measure(p) for p in sorted(SRC.rglob("*.py"))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--over", type=int, default=0, help="list only modules longer than this many lines")
    args = parser.parse_args(argv)
    found = modules()
    lengths = sorted(n for m in found for _, n in m.functions)
    print(f"{'module':<32} {'lines':>6} {'functions':>9} {'longest':>8} {'imports in functions':>21}")
    for m in sorted(found, key=lambda m: -m.lines):
        if m.lines <= args.over:
            continue
        longest = max((n for _, n in m.functions), default=0)
        print(f"{m.name:<32} {m.lines:>6} {len(m.functions):>9} {longest:>8} {m.inner_imports:>21}")
    p90 = lengths[int(0.9 * (len(lengths) - 1))]
    print()
    print(f"modules {len(found)}, lines {sum(m.lines for m in found)}, functions {len(lengths)}")
    print(f"function length: median {statistics.median(lengths):g}, p90 {p90}, max {lengths[-1]}")
    print(f"imports inside functions: {sum(m.inner_imports for m in found)}")
    long = sorted(((n, f"{m.name}.{f}") for m in found for f, n in m.functions if n > 60), reverse=True)
    print("functions over 60 lines: " + (", ".join(f"{name} ({n})" for n, name in long) or "none"))
    silent = [f"{m.name}:{n}" for m in found for n in m.unexplained]
    print(f"imports inside functions with no comment saying why: {len(silent)}")
    for where in silent:
        print(f"  {where}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
