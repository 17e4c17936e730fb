"""Text read from disk is data: never markup, never a terminal control sequence.

Run names, status errors, events, log lines, checkpoint tags, what the recogniser heard,
dataset names and transcripts all come from files anyone could have written. `visible()`
turns every control character into a visible stand-in of the same width (ESC becomes `␛`,
BEL `␇`, DEL `␡`, a C1 control such as CSI `⍰`), so an escape sequence in a run name shows
as text instead of retitling the tmux pane or clearing the screen; `plain()` makes that a
Rich `Text`, which Textual never parses as markup (a DataTable parses a plain `str` cell as
markup: `[/]` in a cell would crash it). The CLI's text output uses `visible()` too; its
`--json` output keeps the exact value (JSON escapes control characters itself).

`StripControls` is the TUI's safety net at the last step: a line filter that drops any control
character still left in what is about to be drawn (they are zero cells wide, so dropping one
keeps every line's width).
"""

from __future__ import annotations

from typing import Any

from rich.segment import Segment
from rich.text import Text

#: C0 controls show as the Unicode control pictures (U+2400..U+241F), DEL as ␡, C1 controls as ⍰.
_VISIBLE = {code: 0x2400 + code for code in range(0x20)} | {0x7F: 0x2421} | {code: 0x2370 for code in range(0x80, 0xA0)}
#: Bidirectional overrides and isolates reorder what follows them on screen: shown as ⍰ too.
_VISIBLE |= {code: 0x2370 for code in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}
_DROP = {code: None for code in _VISIBLE}


def visible(text: Any, keep_newlines: bool = False) -> str:
    """`text` (any value: str() of it) with every control character replaced by a visible stand-in.

    With `keep_newlines`, `\\n` stays a line break (for multi-line panels); tabs always show as `␉`.
    """
    text = text if isinstance(text, str) else str(text)
    if text.isprintable():
        return text
    if keep_newlines:
        return "\n".join(line.translate(_VISIBLE) for line in text.split("\n"))
    return text.translate(_VISIBLE)


def plain(text: Any, keep_newlines: bool = False, **kwargs: Any) -> Text:
    """`visible(text)` as a Rich `Text`: shown exactly as written, never parsed as markup."""
    return Text(visible(text, keep_newlines), **kwargs)


class StripControls:
    """A Textual line filter that drops control characters from every segment about to be drawn.

    Duck-types `textual.filter.LineFilter` (kept free of textual so the CLI can import this module).
    """

    enabled = True

    def apply(self, segments: list[Segment], background: Any) -> list[Segment]:
        out = []
        for segment in segments:
            text = segment.text
            if segment.control is None and not text.isprintable():
                segment = Segment(text.translate(_DROP), segment.style)
            out.append(segment)
        return out


def visible_bytes(line: bytes) -> bytes:
    """A line of a child's output (UTF-8, possibly broken) with its control characters shown, line break kept."""
    return visible(line.decode("utf-8", "replace"), keep_newlines=True).encode()
