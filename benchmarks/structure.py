"""How the source is shaped: module sizes, function lengths and imports inside functions.

    python benchmarks/structure.py            # the table
    python benchmarks/structure.py --over 600 # only modules longer than that

Function length counts the lines from `def` to the function's last line (decorators excluded), for every function
and method, nested ones included. An import "inside a function" is any import statement below a `def`.
"""

from __future__ import annotations

import argparse
import ast
import statistics
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "regops"


@dataclass(frozen=True)
class Module:
    name: str
    lines: int
    functions: tuple[tuple[str, int], ...]
    inner_imports: int


def measure(path: Path) -> Module:
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    functions: list[tuple[str, int]] = []
    inner = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            end = node.end_lineno or node.lineno
            functions.append((node.name, end - node.lineno + 1))
            inner += sum(isinstance(n, ast.Import | ast.ImportFrom) for n in ast.walk(node))
    name = str(path.relative_to(SRC.parent)).removesuffix(".py").replace("/", ".")
    return Module(name, len(text.splitlines()), tuple(functions), inner)


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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
