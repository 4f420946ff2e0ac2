"""One item of a SmartUp answer: its key, the hash of its JSON as sent, and why it cannot be stored.

SmartUp answers the same item with the same text, so an unchanged item hashes the same from run to run: a sync reads
only an item's key and hashes its bytes, and decodes the item only when its hash is new. An item with no usable key
(missing, blank, not a string or number, longer than 64 characters), that is not a JSON object, or that is over
1 MB raises `ItemError` naming the item and the reason.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import msgspec
import orjson

MAP_VERSION = b"camsync-map-2"  # part of every hash: a new mapping rewrites each row once
MAX_ITEM_BYTES = 1_000_000
MAX_KEY_CHARS = 64


class ItemError(ValueError):
    """One item that cannot be stored, with its id (when it has one) and why."""

    def __init__(self, item_id: str | None, reason: str) -> None:
        super().__init__(reason)
        self.item_id = item_id
        self.reason = reason

    def as_dict(self) -> dict[str, str | None]:
        return {"id": self.item_id, "reason": self.reason}


class Fingerprint:
    """An item's key, the hash of its JSON text, and that text (stored as `raw`), as SmartUp sent it."""

    __slots__ = ("content_hash", "key", "source")

    def __init__(self, key: str, content_hash: str, source: bytes | msgspec.Raw) -> None:
        self.key = key
        self.content_hash = content_hash
        self.source = source

    @property
    def raw(self) -> str:
        """The item's JSON text."""
        return str(self.source, "utf-8")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Fingerprint):
            return NotImplemented
        return (self.key, self.content_hash) == (other.key, other.content_hash)

    def __hash__(self) -> int:
        return hash((self.key, self.content_hash))

    def __repr__(self) -> str:
        return f"Fingerprint(key={self.key!r}, content_hash={self.content_hash!r})"


def canonical_json(value: Any) -> str:
    """The item as compact JSON text, the form stored as `raw`."""
    return orjson.dumps(value).decode()


def fingerprint(item: Any, *, key_field: str, text: str | None = None) -> Fingerprint:
    """The key (`key_field`) and content hash of a decoded item; raises ItemError for a non-object, a missing key
    or >1 MB. `text` is the item's JSON as sent (hashed as it is); without it the item is encoded compactly."""
    if not isinstance(item, dict):
        raise ItemError(None, f"item is {kind_of(item)}, not an object")
    key = item_key(item, key_field)
    if text is None:
        try:
            data = orjson.dumps(item)
        except (TypeError, orjson.JSONEncodeError) as exc:
            raise ItemError(key, f"item cannot be stored as JSON: {exc}") from None
    else:
        data = text.encode()
    return _sealed(key, data)


def fingerprint_raw(source: bytes | msgspec.Raw, *, key_field: str) -> Fingerprint:
    """The key and content hash of an item's raw JSON, reading only its key; raises ItemError like `fingerprint`.

    SmartUp answers the same item with the same text, so an unchanged item hashes the same from run to run.
    """
    try:
        key = fast_key(getattr(_key_decoder(key_field).decode(source), key_field))
    except (msgspec.DecodeError, NotFast):
        key = item_key(decoded_object(source), key_field)
    return _sealed(key, source)


def _sealed(key: str, data: bytes | msgspec.Raw) -> Fingerprint:
    size = len(memoryview(data))
    if size > MAX_ITEM_BYTES:
        raise ItemError(key, f"item is {size:,} bytes of JSON, more than {MAX_ITEM_BYTES:,}")
    digest = hashlib.blake2b(data, digest_size=16, person=MAP_VERSION).hexdigest()
    return Fingerprint(key, digest, data)


def decoded(source: bytes | msgspec.Raw) -> Any:
    """An item's raw JSON decoded; ItemError when it is not JSON after all."""
    try:
        return msgspec.json.decode(source)
    except msgspec.DecodeError as exc:
        raise ItemError(None, f"item is not valid JSON: {exc}") from None


def decoded_object(source: bytes | msgspec.Raw) -> dict[str, Any]:
    """An item's raw JSON decoded; ItemError when it is not a JSON object."""
    item = decoded(source)
    if not isinstance(item, dict):
        raise ItemError(None, f"item is {kind_of(item)}, not an object")
    return item


@lru_cache(maxsize=8)
def _key_decoder(key_field: str) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(msgspec.defstruct("Key", [(key_field, str)]))


def kind_of(value: Any) -> str:
    """A value's JSON type as a reason names it ("a list", "null")."""
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", bool: "a boolean", str: "a string"}.get(type(value), "a number")


def item_key(item: Mapping[str, Any], key_field: str) -> str:
    """The item's key (a number taken as its text, blanks stripped); ItemError when there is no usable one."""
    value = item.get(key_field)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        shown = "missing" if value in (None, "") else f"{kind_of(value)}"
        raise ItemError(None, f"{key_field} is {shown}")
    value = value.strip()
    if len(value) > MAX_KEY_CHARS:
        raise ItemError(
            value[:MAX_KEY_CHARS] + "…", f"{key_field} is {len(value):,} characters long, more than {MAX_KEY_CHARS}"
        )
    return value


class NotFast(Exception):
    """The fast path does not take this item as it is."""


def fast_key(value: str) -> str:
    """A key the fast path takes as it is (non-blank, unpadded, short); anything else goes the plain way."""
    if not value or len(value) > MAX_KEY_CHARS or value[0].isspace() or value[-1].isspace():
        raise NotFast
    return value
