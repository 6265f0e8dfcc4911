"""Chat-text catalogues: one per plugin, Chinese by default with an English locale."""

from __future__ import annotations

import logging
import string
from collections.abc import Mapping
from typing import Final, Literal, TypeGuard

__all__ = ["DEFAULT_LOCALE", "LOCALES", "Catalogue", "Locale", "resolve_locale"]

Locale = Literal["zh_CN", "en"]
LOCALES: Final[tuple[Locale, ...]] = ("zh_CN", "en")
DEFAULT_LOCALE: Final[Locale] = "zh_CN"

logger = logging.getLogger("plughook.plugins.i18n")


def _is_locale(value: object) -> TypeGuard[Locale]:
    return value in LOCALES


def resolve_locale(value: str, plugin: str) -> Locale:
    """Return ``value`` as a locale, or ``zh_CN`` with a logged warning when it is unsupported."""
    if _is_locale(value):
        return value
    logger.warning(
        "plugin %s: LOCALE %r is not supported; use one of %s. Falling back to %s",
        plugin,
        value,
        ", ".join(LOCALES),
        DEFAULT_LOCALE,
    )
    return DEFAULT_LOCALE


class Catalogue:
    """Message templates of one plugin, keyed by locale and message key.

    Templates use ``str.format`` fields. Every locale must define the same
    keys with the same fields, which is checked when the catalogue is built,
    so a missing translation fails at import time instead of in a handler.
    """

    def __init__(self, templates: Mapping[Locale, Mapping[str, str]]) -> None:
        missing = [locale for locale in LOCALES if locale not in templates]
        if missing:
            msg = f"catalogue has no templates for locale(s) {', '.join(missing)}"
            raise ValueError(msg)
        reference = templates[DEFAULT_LOCALE]
        for locale in LOCALES:
            _check_same_keys(reference, templates[locale], locale)
        self._templates = {locale: dict(templates[locale]) for locale in LOCALES}

    def text(self, locale: Locale, key: str, /, **fields: object) -> str:
        """Return the template ``key`` of ``locale`` filled with ``fields``."""
        return self._templates[locale][key].format(**fields)


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _check_same_keys(
    reference: Mapping[str, str], templates: Mapping[str, str], locale: Locale
) -> None:
    if set(reference) != set(templates):
        differing = sorted(set(reference) ^ set(templates))
        msg = f"catalogue locale {locale} differs from {DEFAULT_LOCALE} in keys: {differing}"
        raise ValueError(msg)
    for key, template in templates.items():
        if _fields(template) != _fields(reference[key]):
            msg = (
                f"catalogue key {key!r} of locale {locale} uses other fields than {DEFAULT_LOCALE}"
            )
            raise ValueError(msg)
