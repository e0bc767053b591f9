"""Mutants inside type annotations: equivalent by construction, so never run.

With ``from __future__ import annotations`` an annotation is stored as a string
and never evaluated at run time: ``str | None`` turned into ``str + None``
changes nothing a test could observe (``mypy --strict`` in ``make lint`` is what
checks annotations). cosmic-ray still makes about a dozen mutants of every ``|``
in them, and each would cost a full test run only to "survive". They are
marked skipped before the run and reported as equivalent, with this reason.

This holds only where nothing reads the annotations at run time (pydantic
models, flask-openapi3 view functions): ``security/mutation.toml`` turns it on
with ``skip_annotation_mutants`` and lists no module that has such code.
"""

from __future__ import annotations

import ast

REASON = (
    "inside a type annotation, which is never evaluated (the module uses postponed "
    "annotations; mypy --strict checks them)"
)

Position = tuple[int, int]
Span = tuple[Position, Position]


def annotation_spans(source: str) -> list[Span]:
    """(line, column) spans of every annotation, when the module postpones them; else none.

    Lines count from 1 and columns from 0 in characters, as cosmic-ray reports
    a mutant's position.
    """
    tree = ast.parse(source)
    if not _postpones_annotations(tree):
        return []
    lines = source.splitlines()
    return [
        (_position(lines, node.lineno, node.col_offset), _end_position(lines, node))
        for node in _annotations(tree)
    ]


def in_annotation(spans: list[Span], line: int, column: int) -> bool:
    """Whether a mutant that starts at (line, column) lies inside one of ``spans``."""
    return any(start <= (line, column) < end for start, end in spans)


def _postpones_annotations(tree: ast.Module) -> bool:
    return any(
        isinstance(node, ast.ImportFrom)
        and node.module == "__future__"
        and any(alias.name == "annotations" for alias in node.names)
        for node in tree.body
    )


def _annotations(tree: ast.Module) -> list[ast.expr]:
    """Parameter and return annotations of every function, and every annotated assignment's."""
    found: list[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            arguments = node.args
            parameters = [
                *arguments.posonlyargs,
                *arguments.args,
                *arguments.kwonlyargs,
                arguments.vararg,
                arguments.kwarg,
            ]
            found += [p.annotation for p in parameters if p is not None and p.annotation]
            if node.returns is not None:
                found.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            found.append(node.annotation)
    return found


def _end_position(lines: list[str], node: ast.expr) -> Position:
    # Parsed from source, so both are set; 0 only satisfies the type checker.
    return _position(lines, node.end_lineno or 0, node.end_col_offset or 0)


def _position(lines: list[str], line: int, byte_offset: int) -> Position:
    """ast counts columns in UTF-8 bytes; cosmic-ray in characters."""
    text = lines[line - 1].encode("utf-8")[:byte_offset]
    return line, len(text.decode("utf-8", errors="replace"))
