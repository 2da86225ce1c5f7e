"""No log call in firmware/ or hal/ passes an idTag without the ``Tag`` wrapper.

idTags are masked in log lines only when they reach the formatter as
``hal.tokens.Tag``. This test reads every log call of the daemon's code and
fails on an argument that names an idTag, a UID, a token or a parent tag
(``id_tag``, ``request.id_tag``, ``req["idTag"]``, ``uid`` ...) outside a
``Tag(...)`` call, f-string messages included.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOG_METHODS = frozenset({"debug", "info", "warning", "error", "exception", "critical", "log"})
TAG_NAME = re.compile(r"(?i)id_?tag|uid|token|parent")
WRAPPER = "Tag"


def _log_calls(tree: ast.AST) -> Iterator[ast.Call]:
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in LOG_METHODS
            and re.search(r"(?i)log", ast.unparse(node.func.value))
        ):
            yield node


def _named(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        return str(node.slice.value)
    return None


def _unwrapped(node: ast.AST) -> Iterator[ast.AST]:
    """Sub-expressions naming a tag that are not inside ``Tag(...)``."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == WRAPPER:
        return
    name = _named(node)
    if name is not None and TAG_NAME.search(name):
        yield node
        return
    for child in ast.iter_child_nodes(node):
        yield from _unwrapped(child)


def _sources() -> list[Path]:
    return sorted(p for top in ("firmware", "hal") for p in (ROOT / top).rglob("*.py"))


def _arguments(call: ast.Call) -> list[ast.expr]:
    """What a log call renders: the arguments, and the message unless it is a literal."""
    arguments = [*call.args[1:], *(k.value for k in call.keywords if k.arg != "extra")]
    if call.args and not isinstance(call.args[0], ast.Constant):
        arguments.insert(0, call.args[0])  # an f-string or a built message
    return arguments


def _offences(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for call in _log_calls(tree):
        for argument in _arguments(call):
            for node in _unwrapped(argument):
                where = path.relative_to(ROOT)
                found.append(f"{where}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_every_logged_id_tag_is_wrapped() -> None:
    offences = [line for path in _sources() for line in _offences(path)]
    assert offences == [], "wrap idTags in hal.tokens.Tag:\n" + "\n".join(offences)


@pytest.mark.parametrize(
    ("source", "flagged"),
    [
        ('log.info("token %s", id_tag)', ["id_tag"]),
        ('log.info("token %s", Tag(id_tag))', []),
        ('log.info(f"token {request.id_tag}")', ["request.id_tag"]),
        ('logger.warning("x %s", req["idTag"])', ["req['idTag']"]),
        ('log.log(level, "%s %s", self.uid, Tag(parent))', ["self.uid"]),
        ('log.info("%d %s", len(data), info.parent_id_tag)', ["info.parent_id_tag"]),
        ('log.info("connector %d", connector_id)', []),
        ('self.log.calls("token")', []),
    ],
)
def test_the_check_finds_unwrapped_tags(source: str, flagged: list[str]) -> None:
    """The check itself: what it flags and what it lets through."""
    calls = list(_log_calls(ast.parse(source)))
    got = [ast.unparse(n) for call in calls for a in _arguments(call) for n in _unwrapped(a)]
    assert got == flagged
