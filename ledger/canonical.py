"""Strict JSON parsing and RFC 8785 (JCS) canonical bytes, with `sha256:<hex>` digests."""

from __future__ import annotations

import hashlib
import json
import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import rfc8785

from ledger.errors import InputError
from ledger.textsafe import visible

MAX_SAFE_INT = 2**53 - 1


@dataclass(frozen=True)
class Limits:
    """Bounds on one parsed JSON or TOML document; anything beyond is refused (InputError)."""

    max_bytes: int = 64 * 1024 * 1024
    max_depth: int = 64
    max_string: int = 16 * 1024 * 1024
    """characters in one string or key (an envelope's base64 payload is one string)"""
    max_items: int = 2_000_000
    """values in the whole document (every array element and object member counts)"""
    max_number: int = 40
    """characters in one number literal (a 5000-digit number is refused, not parsed)"""


DEFAULT_LIMITS = Limits()
_SURROGATE = re.compile("[\ud800-\udfff]")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (non-finite numbers are refused)")


def _number_text(text: str, limits: Limits) -> str:
    if len(text) > limits.max_number:
        raise ValueError(
            f"a number of {len(text)} characters is refused (limit {limits.max_number})"
        )
    return text


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {visible(key)!r} (an object names a key once)")
            seen.add(key)
    return obj


def check_limits(obj: Any, limits: Limits = DEFAULT_LIMITS, *, what: str = "document") -> None:
    """Raise ValueError if a parsed value is deeper, bigger or stranger than `limits` allow.

    Iterative (no recursion, whatever the depth); also refuses lone surrogates in strings and
    keys (they cannot be encoded as UTF-8, so no output could show or sign them).
    """
    stack: list[tuple[Any, int]] = [(obj, 1)]
    items = 0
    while stack:
        value, depth = stack.pop()
        items += 1
        if items > limits.max_items:
            raise ValueError(f"{what} has more than {limits.max_items} values")
        if isinstance(value, str):
            _check_string(value, limits)
        elif isinstance(value, dict | list):
            if depth > limits.max_depth:
                raise ValueError(f"{what} is nested deeper than {limits.max_depth} levels")
            if isinstance(value, dict):
                for key, member in value.items():
                    if isinstance(key, str):
                        _check_string(key, limits)
                    stack.append((member, depth + 1))
            else:
                stack.extend((member, depth + 1) for member in value)


def _check_string(value: str, limits: Limits) -> None:
    if len(value) > limits.max_string:
        raise ValueError(
            f"a string of {len(value)} characters is refused (limit {limits.max_string})"
        )
    if not value.isascii() and _SURROGATE.search(value):
        raise ValueError(
            "a string holds a lone surrogate (e.g. \\ud800), which is not Unicode text"
        )


def loads_strict(
    data: bytes | str, *, path: Path | str | None = None, limits: Limits = DEFAULT_LIMITS
) -> Any:
    """Parse JSON, refusing NaN, Infinity, overflowing floats, unsafe integers, duplicate keys,
    lone surrogates, and documents beyond `limits` (size, depth, string length, value count,
    number length); every refusal is one InputError line."""
    if len(data) > limits.max_bytes:
        raise InputError(
            f"{len(data)} bytes is more than the {limits.max_bytes} allowed", path=path
        )
    try:
        if isinstance(data, bytes):
            data = data.decode("utf-8")
        obj = json.loads(
            data,
            parse_constant=_reject_constant,
            parse_float=lambda t: _parse_float(_number_text(t, limits)),
            parse_int=lambda t: _parse_int(_number_text(t, limits)),
            object_pairs_hook=_reject_duplicates,
        )
        check_limits(obj, limits, what="JSON")
        return obj
    except UnicodeDecodeError as e:
        raise InputError("not UTF-8 text", path=path) from e
    except json.JSONDecodeError as e:
        raise InputError(
            f"not JSON ({e.msg} at line {e.lineno} column {e.colno})", path=path
        ) from e
    except RecursionError as e:
        raise InputError(f"JSON is nested deeper than {limits.max_depth} levels", path=path) from e
    except ValueError as e:
        raise InputError(str(e), path=path) from e


def loads_toml_strict(
    data: bytes | str, *, path: Path | str | None = None, limits: Limits = DEFAULT_LIMITS
) -> dict[str, Any]:
    """Parse TOML with the same limits as `loads_strict`; nan and inf are refused, and so are
    integers beyond ±(2^53−1) (they would not survive JSON)."""
    if len(data) > limits.max_bytes:
        raise InputError(
            f"{len(data)} bytes is more than the {limits.max_bytes} allowed", path=path
        )
    try:
        if isinstance(data, bytes):
            data = data.decode("utf-8")
        doc = tomllib.loads(data, parse_float=lambda t: _parse_float(_number_text(t, limits)))
        check_limits(doc, limits, what="TOML")
        _check_toml_ints(doc)
        return doc
    except UnicodeDecodeError as e:
        raise InputError("not UTF-8 text", path=path) from e
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"not valid TOML: {e}", path=path) from e
    except RecursionError as e:
        raise InputError(f"TOML is nested deeper than {limits.max_depth} levels", path=path) from e
    except ValueError as e:  # ours above, and tomllib's int() on a >4300-digit literal
        message = str(e)
        if "integer string conversion" in message:
            message = "an integer literal of more than 4300 digits is refused"
        raise InputError(message, path=path) from e


def _check_toml_ints(obj: Any) -> None:
    stack = [obj]
    while stack:
        value = stack.pop()
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SAFE_INT:
            raise ValueError(f"integer of {len(str(abs(value)))} digits is beyond ±(2^53−1)")
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is not a finite number (it overflows a double, or is nan/inf)")
    return value


def _parse_int(text: str) -> int:
    value = int(text)
    if abs(value) > MAX_SAFE_INT:
        raise ValueError(f"integer {text} is beyond ±(2^53−1); store it as a string")
    return value


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
