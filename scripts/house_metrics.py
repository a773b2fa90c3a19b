"""The house's shape in numbers (issue 33's before/after): modules in the package root, the
largest file and function, and how many functions run over 60 lines.

    python scripts/house_metrics.py
"""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "src" / "tavaal"
LONG = 60


def functions(path: Path) -> list[tuple[int, str]]:
    """(lines, qualified name) of every function and method in ``path``."""
    tree = ast.parse(path.read_text())
    found: list[tuple[int, str]] = []

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                found.append((child.end_lineno - child.lineno + 1, name))
                walk(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                walk(child, f"{prefix}{child.name}.")

    walk(tree, "")
    return found


def main() -> None:
    files = sorted(PKG.rglob("*.py"))
    root = [f for f in files if f.parent == PKG]
    sizes = sorted(((len(f.read_text().splitlines()), f) for f in files), reverse=True)
    funcs = sorted(
        ((n, f"{f.relative_to(PKG)}:{name}") for f in files for n, name in functions(f)), reverse=True
    )
    print(f"modules: {len(files)} ({len(root)} in the package root)")
    print("largest files: " + ", ".join(f"{f.relative_to(PKG)} {n}" for n, f in sizes[:3]))
    print("largest functions: " + ", ".join(f"{name} {n}" for n, name in funcs[:3]))
    print(f"functions over {LONG} lines: {sum(n > LONG for n, _ in funcs)}")
    for n, name in funcs:
        if n > LONG:
            print(f"  {n:4d}  {name}")


if __name__ == "__main__":
    main()
