"""Strict structuring of JSON request bodies into attrs classes, with 400 errors.

The error names every missing and invalid field by its JSON path, so a sender
can fix all of them at once: ``missing required fields: level, service;
invalid fields: timestamp (expected Unix seconds or an ISO 8601 time)``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar, get_origin

import cattrs
from cattrs.cols import is_mapping, is_sequence, list_structure_factory, mapping_structure_factory
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError
from cattrs.gen import make_dict_structure_fn, override

from core.errors import BadRequest

__all__ = ["make_strict_converter", "register_object", "structure_body"]

T = TypeVar("T")

_MISSING = "missing"
_PATH_ROOT = "$"


def _strict_str(value: Any, _: Any) -> str:
    if not isinstance(value, str):
        msg = f"expected a string, got {_json_type(value)}"
        raise TypeError(msg)
    return value


def _strict_int(value: Any, _: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        msg = f"expected an integer, got {_json_type(value)}"
        raise TypeError(msg)
    return value


def _time(value: Any, _: Any) -> datetime:
    """Parse Unix seconds or an ISO 8601 time; a time without offset is taken as UTC."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            msg = f"expected Unix seconds within the years 1-9999, got {value}"
            raise ValueError(msg) from None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            msg = f"expected Unix seconds or an ISO 8601 time, got {value!r}"
            raise ValueError(msg) from None
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    msg = f"expected Unix seconds or an ISO 8601 time, got {_json_type(value)}"
    raise TypeError(msg)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


def _checked(
    factory: Callable[[Any, cattrs.Converter], Callable[[Any, Any], Any]],
    json_type: type,
    expected: str,
    converter: cattrs.Converter,
) -> Callable[[Any], Callable[[Any, Any], Any]]:
    """Wrap a cattrs collection factory so that another JSON type is a clear error."""

    def make(cl: Any) -> Callable[[Any, Any], Any]:
        structure_items = factory(cl, converter)

        def structure(value: Any, target: Any) -> Any:
            if not isinstance(value, json_type):
                msg = f"expected {expected}, got {_json_type(value)}"
                raise TypeError(msg)
            return structure_items(value, target)

        return structure

    return make


def _is_list(cl: Any) -> bool:
    return is_sequence(cl) and get_origin(cl) is list


def make_strict_converter() -> cattrs.Converter:
    """Return a converter that rejects wrong JSON types instead of coercing them.

    Strings stay strings (``null`` or ``5`` is not turned into ``"None"`` or
    ``"5"``), integers must be integers, and ``datetime`` fields accept Unix
    seconds or ISO 8601 text. Unknown keys are ignored, because senders add
    fields over time.
    """
    converter = cattrs.Converter()
    converter.register_structure_hook(str, _strict_str)
    converter.register_structure_hook(int, _strict_int)
    converter.register_structure_hook(datetime, _time)
    converter.register_structure_hook_factory(
        is_mapping, _checked(mapping_structure_factory, dict, "an object", converter)
    )
    converter.register_structure_hook_factory(
        _is_list, _checked(list_structure_factory, list, "an array", converter)
    )
    return converter


def register_object(
    converter: cattrs.Converter, cls: type[T], json_names: dict[str, str] | None = None
) -> None:
    """Register a hook building ``cls`` from a JSON object only.

    ``json_names`` maps attribute names to the JSON keys that differ from
    them (``{"starts_at": "startsAt"}``). Any other JSON value is an invalid
    field instead of a confusing error from inside cattrs.
    """
    renames: dict[str, Any] = {
        name: override(rename=key) for name, key in (json_names or {}).items()
    }
    structure_fields: Callable[[Any, Any], T] = make_dict_structure_fn(cls, converter, **renames)

    def structure_object(value: Any, _: Any) -> T:
        if not isinstance(value, dict):
            msg = f"expected an object, got {_json_type(value)}"
            raise TypeError(msg)
        return structure_fields(value, cls)

    converter.register_structure_hook(cls, structure_object)


def _path(location: str) -> str:
    """Turn cattrs' ``$.alerts[0].labels`` into ``alerts[0].labels``."""
    return location.removeprefix(_PATH_ROOT).removeprefix(".") or "(body)"


def _describe(exc: BaseException, _: type | None) -> str:
    if isinstance(exc, KeyError):
        return _MISSING
    return str(exc) or type(exc).__name__


def _error_message(body_name: str, error: Exception) -> str:
    missing: list[str] = []
    invalid: list[str] = []
    for problem in cattrs.transform_error(error, path=_PATH_ROOT, format_exception=_describe):
        reason, _, location = problem.rpartition(" @ ")
        if reason == _MISSING:
            missing.append(_path(location))
        else:
            invalid.append(f"{_path(location)} ({reason})")

    parts = []
    if missing:
        parts.append("missing required fields: " + ", ".join(sorted(missing)))
    if invalid:
        parts.append("invalid fields: " + ", ".join(invalid))
    return f"invalid {body_name}: " + "; ".join(parts)


def structure_body(converter: cattrs.Converter, data: Any, cls: type[T], body_name: str) -> T:
    """Build ``cls`` from decoded JSON, raising ``BadRequest`` that names each bad field.

    ``body_name`` names the body in the message, e.g. ``"invalid alert: ..."``.
    """
    if not isinstance(data, dict):
        msg = f"invalid {body_name}: expected a JSON object, got {_json_type(data)}"
        raise BadRequest(msg)
    try:
        return converter.structure(data, cls)
    except (ClassValidationError, ForbiddenExtraKeysError) as exc:
        raise BadRequest(_error_message(body_name, exc)) from None
