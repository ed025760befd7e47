"""Repeated blocks of code: any six or more code lines (imports, docstrings, comments, blank lines and
lone closing brackets left out; indentation ignored) that appear twice in the files under the folders
given. Each repeat is printed with its places; exit 1 when there is one. `make lint` runs it on `sweep/`."""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

WINDOW = 6
TRIVIAL = {")", "]", "}", "),", "],", "},", "else:", "try:", "finally:", "return", "pass"}


def code_lines(source: str) -> list[tuple[int, str]]:
    """The lines that count, as (line number, stripped text)."""
    skipped: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            skipped.update(range(node.lineno, node.end_lineno + 1))
        body = getattr(node, "body", None)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and body:
            first = body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                skipped.update(range(first.lineno, first.end_lineno + 1))
    lines = []
    for number, line in enumerate(source.splitlines(), start=1):
        text = line.strip()
        if number in skipped or not text or text.startswith("#") or text in TRIVIAL:
            continue
        lines.append((number, text))
    return lines


def repeats(files: list[Path], window: int = WINDOW) -> list[list[tuple[Path, int]]]:
    """The places of each block of `window` code lines that appears more than once."""
    places: dict[tuple[str, ...], list[tuple[Path, int]]] = defaultdict(list)
    for path in files:
        lines = code_lines(path.read_text())
        for start in range(len(lines) - window + 1):
            block = tuple(text for _, text in lines[start : start + window])
            places[block].append((path, lines[start][0]))
    return [where for where in places.values() if len(where) > 1]


def main(folders: list[str]) -> int:
    files = sorted(p for folder in folders for p in Path(folder).rglob("*.py"))
    found = repeats(files)
    for where in found:
        print("repeated block of code: " + ", ".join(f"{path}:{line}" for path, line in where))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["sweep"]))
