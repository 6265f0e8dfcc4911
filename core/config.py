"""Plugin configuration classes: ``setting()`` fields, structuring and redaction."""

from __future__ import annotations

import collections.abc
import difflib
import re
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.cols import list_structure_factory, mapping_structure_factory
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn

from .errors import ConfigError

__all__ = [
    "REDACTED",
    "UNKNOWN_SETTING",
    "SettingInfo",
    "closest_name",
    "config_converter",
    "describe_config",
    "redacted_repr",
    "secret_fields",
    "setting",
    "structure_config",
    "structure_partial",
    "toml_key",
]

REDACTED = "***"
# Problem text of a key that no field of its table has, before any suggestion.
UNKNOWN_SETTING = "unknown setting"
_METADATA_KEY = "plughook"

T = TypeVar("T")

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_KEY_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def toml_key(name: str) -> str:
    """Return ``name`` as one TOML key: bare when it can be, else a quoted basic string.

    Bare keys take only ASCII letters, digits, ``_`` and ``-``, so a name
    such as ``运维群`` is written ``"运维群"``, with ``"``, ``\\`` and control
    characters escaped.
    """
    if _BARE_KEY.fullmatch(name):
        return name
    chars = []
    for char in name:
        escaped = _KEY_ESCAPES.get(char)
        if escaped is None and (char < " " or char == "\x7f"):
            escaped = f"\\u{ord(char):04X}"
        chars.append(char if escaped is None else escaped)
    return '"' + "".join(chars) + '"'


@attrs.frozen
class SettingInfo:
    """Title, description and secrecy of one configuration field."""

    title: str = ""
    description: str = ""
    secret: bool = False
    # The value is a chat key, or several separated by commas, checked
    # against the channels when the app starts.
    chat_keys: bool = False


class SettingValueError(ValueError):
    """Raised when a setting's value is outside what the setting allows."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _one_of(choices: tuple[Any, ...]) -> Any:
    def validate(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value not in choices:
            allowed = ", ".join(repr(choice) for choice in choices)
            msg = f"expected one of {allowed}, got {value!r}"
            raise SettingValueError(attribute.name, msg)

    return validate


def positive(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Validator: the setting must be a number greater than zero."""
    if not value > 0:
        raise SettingValueError(attribute.name, f"expected a number greater than 0, got {value!r}")


def setting(
    default: Any,
    *,
    title: str = "",
    description: str = "",
    secret: bool = False,
    choices: Sequence[Any] | None = None,
    chat_keys: bool = False,
) -> Any:
    """Declare a configuration field with its default.

    ``secret=True`` hides the value in listings and logs; ``choices`` lists
    the only values allowed, checked when the app starts. ``chat_keys=True``
    marks a string of chat keys separated by commas: the app checks at start
    that the channels can deliver to each.
    """
    info = SettingInfo(title, description, secret, chat_keys)
    validator = _one_of(tuple(choices)) if choices is not None else None
    if isinstance(default, list | dict | set):
        factory = type(default)
        copy = default

        def make() -> Any:
            return factory(copy)

        return attrs.field(factory=make, metadata={_METADATA_KEY: info}, validator=validator)
    return attrs.field(default=default, metadata={_METADATA_KEY: info}, validator=validator)


def chat_key_settings(config: Any) -> list[tuple[str, list[str]]]:
    """Return the name and the chat keys of each ``chat_keys=True`` field of ``config``."""
    found = []
    for field in attrs.fields(type(config)):
        value = getattr(config, field.name)
        if _info(field).chat_keys and isinstance(value, str):
            keys = [part.strip() for part in value.split(",") if part.strip()]
            found.append((field.name, keys))
    return found


def _info(field: attrs.Attribute[Any]) -> SettingInfo:
    info = field.metadata.get(_METADATA_KEY)
    return info if isinstance(info, SettingInfo) else SettingInfo()


def secret_fields(config_class: type) -> frozenset[str]:
    """Return the names of the fields declared with ``secret=True``."""
    return frozenset(f.name for f in attrs.fields(config_class) if _info(f).secret)


def redacted_repr(instance: Any) -> str:
    """Return ``repr(instance)`` with every non-empty secret field shown as ``'***'``."""
    parts = []
    for field in attrs.fields(type(instance)):
        value = getattr(instance, field.name)
        shown = REDACTED if _info(field).secret and value else value
        parts.append(f"{field.name}={shown!r}")
    return f"{type(instance).__name__}({', '.join(parts)})"


def describe_config(instance: Any) -> dict[str, Any]:
    """Return the fields of a config instance as plain data, secrets shown as ``"***"``."""
    values: dict[str, Any] = {}
    for field in attrs.fields(type(instance)):
        value = config_converter.unstructure(getattr(instance, field.name))
        values[field.name] = REDACTED if _info(field).secret and value else value
    return values


def _strict(expected: type | tuple[type, ...], name: str) -> Any:
    def structure(value: Any, _: Any) -> Any:
        if isinstance(value, bool) and bool not in (
            expected if isinstance(expected, tuple) else (expected,)
        ):
            msg = f"expected {name}, got bool"
            raise TypeError(msg)
        if not isinstance(value, expected):
            msg = f"expected {name}, got {type(value).__name__}"
            raise TypeError(msg)
        return float(value) if isinstance(value, int | float) and name == "float" else value

    return structure


def _make_converter() -> cattrs.Converter:
    # Strict scalars: cattrs would otherwise turn 5 into "5" for a str field,
    # hiding a typo such as an unquoted token in the TOML file.
    converter = cattrs.Converter(forbid_extra_keys=True)
    converter.register_structure_hook(str, _strict(str, "str"))
    converter.register_structure_hook(int, _strict(int, "int"))
    converter.register_structure_hook(float, _strict((int, float), "float"))
    converter.register_structure_hook(bool, _strict(bool, "bool"))
    # A TOML string for a list setting would otherwise become a list of characters.
    converter.register_structure_hook_factory(_is_list_type, _list_hook)
    # Where a table is expected, any other TOML value would otherwise fail
    # inside cattrs with an AttributeError or a TypeError about its internals.
    converter.register_structure_hook_factory(attrs.has, _class_hook)
    converter.register_structure_hook_factory(_is_dict_type, _dict_hook)
    return converter


def _is_list_type(type_: Any) -> bool:
    return typing.get_origin(type_) in (list, collections.abc.Sequence)


def _is_dict_type(type_: Any) -> bool:
    return typing.get_origin(type_) in (dict, collections.abc.Mapping)


def _list_hook(type_: Any, converter: cattrs.Converter) -> Any:
    structure = list_structure_factory(type_, converter)

    def structure_list(value: Any, type_: Any) -> Any:
        if not isinstance(value, list | tuple):
            msg = f"expected a list, got {type(value).__name__}"
            raise TypeError(msg)
        return structure(value, type_)

    return structure_list


def _class_hook(type_: Any, converter: cattrs.Converter) -> Any:
    return _tables_only(make_dict_structure_fn(type_, converter))


def _dict_hook(type_: Any, converter: cattrs.Converter) -> Any:
    return _tables_only(mapping_structure_factory(type_, converter))


def _tables_only(structure: Callable[[Any, Any], Any]) -> Any:
    def structure_table(value: Any, type_: Any) -> Any:
        if not isinstance(value, Mapping):
            msg = f"expected a table, got {type(value).__name__}"
            raise TypeError(msg)
        return structure(value, type_)

    return structure_table


config_converter = _make_converter()


def _problems(error: BaseException, prefix: str, data: Any) -> list[tuple[str, str]]:
    """Flatten a cattrs error tree into ``(dotted key, message)`` pairs without values."""
    if isinstance(error, SettingValueError):
        return [(_join(prefix, error.field), str(error))]
    if isinstance(error, ForbiddenExtraKeysError):
        known = [field.name for field in attrs.fields(error.cl)]
        return [
            (_join(prefix, key), UNKNOWN_SETTING + _did_you_mean(key, known))
            for key in sorted(error.extra_fields)
        ]
    if isinstance(error, ClassValidationError | IterableValidationError):
        # A required setting that an unknown key looks like is missing only
        # because of that typo, which its own problem already names.
        misspelt = {
            closest_name(key, [field.name for field in attrs.fields(sub.cl)])
            for sub in error.exceptions
            if isinstance(sub, ForbiddenExtraKeysError)
            for key in sub.extra_fields
        }
        found: list[tuple[str, str]] = []
        for sub in error.exceptions:
            name = _note_key(sub)
            if name is None:
                found.extend(_problems(sub, prefix, data))
                continue
            key = _join(prefix, name)
            # cattrs reads each attribute with data[name], so a missing one is a KeyError.
            missing = isinstance(sub, KeyError) and isinstance(data, Mapping) and name not in data
            if missing:
                if name not in misspelt:
                    found.append((key, "required setting is missing"))
                continue
            found.extend(_problems(sub, key, _item(data, name)))
        return found
    if isinstance(error, BaseExceptionGroup):
        return [p for sub in error.exceptions for p in _problems(sub, prefix, data)]
    if isinstance(error, TypeError | ValueError) and str(error).startswith("expected "):
        return [(prefix, str(error))]
    # Another error, such as one from a plugin's own attrs validator. Its
    # message may contain the value, which may be a secret. TOML has no null,
    # so None is a value the file did not give, such as a default.
    if data is None:
        return [(prefix, "invalid value")]
    return [(prefix, f"invalid value of type {type(data).__name__}")]


def closest_name(name: str, candidates: Iterable[str]) -> str | None:
    """Return the candidate most like ``name``, ignoring case, or None when none is close.

    Closeness is ``difflib.get_close_matches`` with its default cutoff of 0.6.
    """
    by_folded = {candidate.casefold(): candidate for candidate in candidates}
    close = difflib.get_close_matches(name.casefold(), list(by_folded), n=1)
    return by_folded[close[0]] if close else None


def _did_you_mean(name: str, candidates: Iterable[str]) -> str:
    close = closest_name(name, candidates)
    return f"; did you mean {close!r}?" if close is not None else ""


def _join(prefix: str, name: str | int) -> str:
    if isinstance(name, int):
        return f"{prefix}[{name}]"
    key = toml_key(name)
    return f"{prefix}.{key}" if prefix else key


def _item(data: Any, name: str | int) -> Any:
    """Return the value at ``name`` in a table or at index ``name`` in a list, else None."""
    if isinstance(name, str) and isinstance(data, Mapping):
        return data.get(name)
    if isinstance(name, int) and isinstance(data, list | tuple) and 0 <= name < len(data):
        return data[name]
    return None


def _note_key(error: BaseException) -> str | int | None:
    """Return the attribute name, table key or list index that ``error`` is about, if known.

    cattrs notes it on the errors of structuring. The validators in
    ``attrs.validators`` pass the attribute as the second argument of theirs.
    """
    for note in getattr(error, "__notes__", ()):
        if isinstance(note, AttributeValidationNote):
            return note.name
        if isinstance(note, IterableValidationNote) and isinstance(note.index, str | int):
            return note.index
    if len(error.args) > 1 and isinstance(error.args[1], attrs.Attribute):
        return error.args[1].name
    return None


def structure_config(config_class: type[T], values: Any, key: str) -> T:
    """Build ``config_class`` from ``values``; raise ``ConfigError`` naming each bad key.

    Messages name the field and the type received, never the value, so a
    mistyped secret does not end up in a log.
    """
    if values is None:
        values = {}
    if not isinstance(values, Mapping):
        raise ConfigError([(key, f"expected a table, got {type(values).__name__}")])
    try:
        return config_converter.structure(dict(values), config_class)
    except (ClassValidationError, ForbiddenExtraKeysError, TypeError, ValueError) as exc:
        raise ConfigError(_problems(exc, key, values)) from None


def structure_partial(
    config_class: type[T], values: Any, key: str
) -> tuple[T | None, list[tuple[str, str]]]:
    """Build ``config_class`` from the valid part of ``values`` and return it and every problem.

    An invalid or unknown setting is left at its default, so that the other
    settings can still be checked. The result is None when ``values`` is not
    a table or the valid settings alone do not build the class.
    """
    try:
        return structure_config(config_class, values, key), []
    except ConfigError as exc:
        problems = exc.problems
    if not isinstance(values, Mapping):
        return None, problems

    valid = {}
    for name, value in values.items():
        try:
            structure_config(config_class, {name: value}, key)
        except ConfigError:
            continue
        valid[name] = value
    try:
        return structure_config(config_class, valid, key), problems
    except ConfigError:
        return None, problems
