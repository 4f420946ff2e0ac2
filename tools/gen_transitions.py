"""Rewrite the transition table in docs/luna.md from `camsync.sync.luna.states.describe()`."""

from __future__ import annotations

from pathlib import Path

from camsync.sync.luna.states import describe

DOC = Path(__file__).resolve().parents[1] / "docs" / "luna.md"

text = DOC.read_text(encoding="utf-8")
start = text.index("<!-- transitions:")
body_start = text.index("\n", start) + 1
end = text.index("<!-- /transitions -->")
DOC.write_text(text[:body_start] + describe() + text[end:], encoding="utf-8")
