"""Parsing of SmartUp export answers.

An export answers one JSON object: `{"<root>": [item, …], "limits": {…}}` with the keys in any order, or an
error object `{"error_code": "A02-…", "message": "…"}`. The body is read once into memory (bytes, at most
`MAX_ANSWER_BYTES`; 100,000 products are about 70 MB) and its envelope decoded by msgspec's C decoder: each item
stays a zero-copy view of the exact bytes SmartUp sent (`msgspec.Raw`), to be hashed as it is and decoded only
when it has to be. The shape is checked here: the root is an object, the root value an array (or null), every
item an object, `limits` an object.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec

MAX_ANSWER_BYTES = 1024 * 1024 * 1024  # an answer larger than this is refused rather than held in memory
HEAD_SIZE = 256  # the start of the body is kept to show what came instead of an export
ERROR_KEYS = ("error_code", "message")
_ENVELOPE = msgspec.json.Decoder(dict[str, msgspec.Raw])
_ITEMS = msgspec.json.Decoder(list[msgspec.Raw] | None)
_ANY = msgspec.json.Decoder()
_BYTE = re.compile(r"\(byte (\d+)\)")
_OPEN_BRACE = ord("{")


class MalformedAnswer(ValueError):
    """The answer is not the JSON document an export sends; the text says what broke and where."""

    def __init__(self, what: str, *, offset: int | None = None) -> None:
        super().__init__(what if offset is None else f"{what} (near byte {offset})")
        self.what = what
        self.offset = offset


class BodyTooLarge(MalformedAnswer):
    """The answer is larger than `MAX_ANSWER_BYTES`."""


@dataclass
class Answer:
    """A parsed answer: the root items as raw JSON, the `limits` block, the error fields, whether the root came."""

    items: list[msgspec.Raw] = field(default_factory=list)
    limits: dict[str, Any] | None = None
    error: dict[str, Any] = field(default_factory=dict)
    root_seen: bool = False


class BodyReader:
    """Reads a body chunk by chunk into one buffer, counting bytes (so a broken read can say where it broke)."""

    def __init__(self, chunks: Iterable[bytes], *, limit: int | None = None) -> None:
        self._chunks = chunks
        self._limit = MAX_ANSWER_BYTES if limit is None else limit
        self.size = 0

    def read(self, expected: int | None = None) -> bytearray:
        """The whole body; raises `BodyTooLarge`, or whatever the chunk source raises when the connection breaks.

        `expected` (the Content-Length) sizes the buffer once, so a large body is never copied while it grows.
        """
        if expected is not None and expected > self._limit:
            raise BodyTooLarge(f"the answer announces {expected:,} bytes, more than the {self._limit:,} read at most")
        buffer = bytearray(expected or 0)
        view = memoryview(buffer) if expected else None
        for chunk in self._chunks:
            start, self.size = self.size, self.size + len(chunk)
            if self.size > self._limit:
                raise BodyTooLarge(
                    f"the answer is larger than the {self._limit:,} bytes read at most", offset=self.size
                )
            if view is not None and self.size <= len(buffer):
                view[start : self.size] = chunk
                continue
            if view is not None:  # longer than announced: carry on growing
                view.release()
                view = None
                del buffer[start:]
            buffer += chunk
        if view is not None:
            view.release()
            del buffer[self.size :]  # shorter than announced
        return buffer


def head_text(body: bytes | bytearray) -> str:
    """The start of the body as text (to show what came instead of an export)."""
    return bytes(body[:HEAD_SIZE]).decode("utf-8", errors="replace")


def parse_answer(body: bytes | bytearray, root_key: str) -> Answer:
    """Decode an export answer's envelope; raises `MalformedAnswer` on bad JSON or a wrong shape."""
    try:
        envelope = _ENVELOPE.decode(body)
    except msgspec.ValidationError:
        raise MalformedAnswer("the answer is not a JSON object") from None
    except msgspec.DecodeError as exc:
        raise _decode_failure(exc) from None
    answer = Answer()
    for key, raw in envelope.items():
        if key == root_key:
            answer.root_seen = True
            answer.items = _root_items(raw, root_key)
        elif key == "limits":
            answer.limits = _limits(raw)
        elif key in ERROR_KEYS:
            answer.error[key] = _ANY.decode(raw)
    return answer


def _root_items(raw: msgspec.Raw, root_key: str) -> list[msgspec.Raw]:
    try:
        items = _ITEMS.decode(raw)
    except msgspec.ValidationError:
        raise MalformedAnswer(f"'{root_key}' is not an array") from None
    if items is None:
        return []
    for number, item in enumerate(items, 1):
        if memoryview(item)[0] != _OPEN_BRACE:
            raise MalformedAnswer(f"item {number} of '{root_key}' is not an object")
    return items


def _limits(raw: msgspec.Raw) -> dict[str, Any] | None:
    value = _ANY.decode(raw)
    if value is not None and not isinstance(value, dict):
        raise MalformedAnswer("'limits' is not an object")
    return value


def _decode_failure(exc: msgspec.DecodeError) -> MalformedAnswer:
    text = str(exc)
    match = _BYTE.search(text)
    offset = int(match[1]) if match else None
    if "truncated" in text:
        return MalformedAnswer("the answer ends too early")
    if "trailing characters" in text:
        return MalformedAnswer("unexpected data after the answer", offset=offset)
    reason = _BYTE.sub("", text.removeprefix("JSON is malformed: ")).strip()
    return MalformedAnswer(f"the answer is not valid JSON: {reason}", offset=offset)
