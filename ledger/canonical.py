"""Strict JSON parsing and RFC 8785 (JCS) canonical bytes, with `sha256:<hex>` digests."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import orjson
import rfc8785

from ledger.errors import InputError

MAX_SAFE_INT = 2**53 - 1


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (non-finite numbers are refused)")


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text} overflows a double (non-finite numbers are refused)")
    return value


def _parse_int(text: str) -> int:
    value = int(text)
    if abs(value) > MAX_SAFE_INT:
        raise ValueError(f"integer {text} is beyond ±(2^53−1); store it as a string")
    return value


def loads_strict(data: bytes | str, *, path: Path | str | None = None) -> Any:
    """Parse JSON, refusing NaN, Infinity, overflowing floats and unsafe integers."""
    try:
        if isinstance(data, bytes):
            data = data.decode("utf-8")
        return json.loads(
            data,
            parse_constant=_reject_constant,
            parse_float=_parse_float,
            parse_int=_parse_int,
        )
    except UnicodeDecodeError as e:
        raise InputError("not UTF-8 text", path=path) from e
    except json.JSONDecodeError as e:
        raise InputError(
            f"not JSON ({e.msg} at line {e.lineno} column {e.colno})", path=path
        ) from e
    except ValueError as e:
        raise InputError(str(e), path=path) from e


def check_json_safe(obj: Any, where: str = "$") -> None:
    """Raise InputError if `obj` holds a value JCS cannot represent (NaN, inf, big ints)."""
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return
    if isinstance(obj, int):
        if abs(obj) > MAX_SAFE_INT:
            raise InputError(f"{where}: integer {obj} is beyond ±(2^53−1); store it as a string")
        return
    if isinstance(obj, float):
        if not math.isfinite(obj):
            raise InputError(f"{where}: non-finite number {obj!r}")
        return
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not isinstance(key, str):
                raise InputError(f"{where}: non-string key {key!r}")
            check_json_safe(value, f"{where}.{key}")
        return
    if isinstance(obj, list | tuple):
        for i, value in enumerate(obj):
            check_json_safe(value, f"{where}[{i}]")
        return
    raise InputError(f"{where}: {type(obj).__name__} is not a JSON value")


def canonical_bytes(obj: Any) -> bytes:
    """RFC 8785 canonical UTF-8 bytes of a JSON value (raises InputError if impossible)."""
    try:
        return rfc8785.dumps(obj)
    except rfc8785.CanonicalizationError as e:
        raise InputError(f"cannot canonicalize: {e}") from e


def is_canonical(data: bytes, obj: Any) -> bool:
    """True if `data` is the JCS form of `obj`; orjson sorted output is the fast path."""
    if orjson.dumps(obj, option=orjson.OPT_SORT_KEYS) == data:
        return True
    try:
        return rfc8785.dumps(obj) == data
    except rfc8785.CanonicalizationError:
        return False


def sha256_digest(data: bytes) -> str:
    """`sha256:<hex>` of raw bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def digest_of(obj: Any) -> str:
    """`sha256:<hex>` over the canonical bytes of a JSON value."""
    return sha256_digest(canonical_bytes(obj))


def digest_bytes(digest: str) -> bytes:
    """The 32 raw bytes of a `sha256:<hex>` digest."""
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256" or len(hexpart) != 64:
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return bytes.fromhex(hexpart)
