"""A streaming parser of SmartUp export answers.

An export answers one JSON object: `{"<root>": [item, …], "limits": {…}}` with the keys in any order, or an
error object `{"error_code": "A02-…", "message": "…"}`. The parser decodes the body chunk by chunk into a small
text window and lets the C-accelerated `json` decoder (`raw_decode`) build one item at a time, so a large answer
is never held whole and parsing runs at the decoder's speed. `limits` and the error fields are picked up wherever
they come. It checks the shape only: the root is an object, the root value is an array (or null), and every item
is an object.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

HEAD_SIZE = 256  # the start of the body is kept to show what came instead of an export
MAX_VALUE_CHARS = 64 * 1024 * 1024  # one item (or limits block) larger than this is refused
ERROR_KEYS = ("error_code", "message")
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


class MalformedAnswer(ValueError):
    """The answer is not the JSON document an export sends; the text says what broke and where."""

    def __init__(self, what: str, *, offset: int, items: int) -> None:
        super().__init__(f"{what} (after {items} items, near byte {offset})")
        self.what = what
        self.offset = offset
        self.items = items


class ExportParser:
    """Parses one export answer; iterate `items()` once, then read `limits`, `error` and `root_seen`."""

    def __init__(
        self,
        chunks: Iterable[bytes],
        root_key: str,
        *,
        on_limits: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.root_key = root_key
        self.limits: dict[str, Any] | None = None
        self.error: dict[str, Any] = {}
        self.root_seen = False
        self.count = 0
        self.last_text = ""  # the JSON text of the newest item, as the server sent it
        self._span = (0, 0)
        self.offset = 0  # bytes of the body read so far
        self._head = b""
        self._on_limits = on_limits
        self._chunks = iter(chunks)
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._buf = ""
        self._pos = 0
        self._eof = False
        self._failure: Exception | None = None

    @property
    def head(self) -> str:
        """The start of the body as text."""
        return self._head.decode("utf-8", errors="replace")

    def items(self) -> Iterator[dict[str, Any]]:
        """The items of the root array, one at a time; raises `MalformedAnswer` on bad JSON or a wrong shape."""
        first = self._peek()
        if first != "{":
            raise self._malformed("the answer ends too early" if first is None else "the answer is not a JSON object")
        self._pos += 1
        if self._peek() == "}":
            self._pos += 1
        else:
            while True:
                key = self._value()
                if not isinstance(key, str):
                    raise self._malformed("an object key is not a string")
                self._expect(":")
                if key == self.root_key:
                    self.root_seen = True
                    yield from self._root_items()
                elif key == "limits":
                    self._take_limits(self._value())
                elif key in ERROR_KEYS:
                    self.error[key] = self._value()
                else:
                    self._value()
                if self._separator("}"):
                    break
        if self._peek() is not None:
            raise self._malformed("unexpected data after the answer")

    def _root_items(self) -> Iterator[dict[str, Any]]:
        first = self._peek()
        if first == "n":
            if self._value() is not None:
                raise self._malformed(f"'{self.root_key}' is not an array")
            return
        if first != "[":
            raise self._malformed(f"'{self.root_key}' is not an array")
        self._pos += 1
        if self._peek() == "]":
            self._pos += 1
            return
        while True:
            item = self._value()
            self.last_text = self._buf[self._span[0] : self._span[1]]
            if type(item) is not dict:
                raise self._malformed(f"item {self.count + 1} of '{self.root_key}' is not an object")
            self.count += 1
            yield item
            if self._separator("]"):
                return

    def _take_limits(self, value: Any) -> None:
        if value is None:
            return
        if not isinstance(value, dict):
            raise self._malformed("'limits' is not an object")
        self.limits = value
        if self._on_limits is not None:
            self._on_limits(value)

    # --- the text window -------------------------------------------------------------------------------

    def _fill(self, want: int = 1) -> bool:
        """Read until at least `want` more characters are buffered; False when the body has ended."""
        if self._pos:
            self._buf = self._buf[self._pos :]
            self._pos = 0
        goal = len(self._buf) + want
        parts = [self._buf]
        size = len(self._buf)
        while size < goal and not self._eof:
            chunk = self._read_chunk()
            if chunk is None:
                self._eof = True
                tail = self._decode(b"", final=True)
                parts.append(tail)
                size += len(tail)
                break
            text = self._decode(chunk, final=False)
            parts.append(text)
            size += len(text)
        grew = size > len(self._buf)
        self._buf = "".join(parts)
        return grew

    def _read_chunk(self) -> bytes | None:
        if self._failure is not None:
            raise self._failure
        while True:
            try:
                chunk = next(self._chunks, None)
            except Exception as exc:  # the connection broke: raised after the bytes before it are parsed
                self._failure = exc
                raise
            if chunk is None:
                return None
            if chunk:
                break
        self.offset += len(chunk)
        if len(self._head) < HEAD_SIZE:
            self._head += chunk[: HEAD_SIZE - len(self._head)]
        return chunk

    def _decode(self, data: bytes, *, final: bool) -> str:
        try:
            return self._utf8.decode(data, final)
        except UnicodeDecodeError:
            raise self._malformed("the answer is not UTF-8 text") from None

    def _peek(self) -> str | None:
        """The next non-blank character (not consumed), or None at the end of the body."""
        while True:
            match = _WHITESPACE.match(self._buf, self._pos)
            self._pos = match.end() if match else self._pos
            if self._pos < len(self._buf):
                return self._buf[self._pos]
            if not self._fill():
                return None

    def _expect(self, char: str) -> None:
        if self._peek() != char:
            raise self._malformed(f"expected '{char}'")
        self._pos += 1

    def _separator(self, closing: str) -> bool:
        """Consume ',' (False: more follows) or the closing bracket (True)."""
        char = self._peek()
        if char == ",":
            self._pos += 1
            return False
        if char == closing:
            self._pos += 1
            return True
        if char is None:
            raise self._malformed("the answer ends too early")
        raise self._malformed(f"expected ',' or '{closing}'")

    def _value(self) -> Any:
        """Decode the next JSON value, reading more of the body while it is cut off by the window's end."""
        if self._peek() is None:
            raise self._malformed("the answer ends too early")
        while True:
            start = self._pos
            try:
                value, end = _DECODER.raw_decode(self._buf, start)
            except json.JSONDecodeError as exc:
                if self._eof:
                    what = "the answer ends too early" if exc.pos >= len(self._buf) - 1 else exc.msg
                    raise self._malformed(what) from None
                self._grow()
                continue
            if end >= len(self._buf) and not self._eof and not isinstance(value, dict | list | str):
                self._grow()  # a number or literal at the window's end may go on in the next chunk
                continue
            self._pos = end
            self._span = (start, end)
            return value

    def _grow(self) -> None:
        pending = len(self._buf) - self._pos
        if pending > MAX_VALUE_CHARS:
            raise self._malformed(f"a value longer than {MAX_VALUE_CHARS // (1024 * 1024)} MB")
        self._fill(max(pending, 64 * 1024))  # double the window: re-parsing stays linear in the value's size

    def _malformed(self, what: str) -> MalformedAnswer:
        return MalformedAnswer(what, offset=self.offset, items=self.count)
