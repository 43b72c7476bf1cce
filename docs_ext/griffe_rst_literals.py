"""A griffe extension for the docs build: reST's ``::`` literal-block marker, rendered as Markdown.

The docstrings are prose with ``name`` in double backticks, and draw designs in literal blocks
introduced the reST way (``text::`` then an indented block). Markdown already renders both: the
backticks as code, the indented block as a code block. Only the marker would show, so it becomes what
reST makes of it: ``text::`` reads ``text:``, ``text ::`` and a lone ``::`` vanish.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

# A marker at the end of a line that is followed by a blank line (where reST's literal block starts).
_MARKER = re.compile(r"(?P<before>[^\n]*?)(?P<space>\s?)::[ \t]*\n(?=[ \t]*\n)")


def _unmark(match: re.Match[str]) -> str:
    before = match["before"]
    if not before.strip():
        return "\n"
    return f"{before}\n" if match["space"] else f"{before}:\n"


def render_literal_markers(text: str) -> str:
    return _MARKER.sub(_unmark, text)


class RstLiteralBlocks(griffe.Extension):
    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = render_literal_markers(obj.docstring.value)
