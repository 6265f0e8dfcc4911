"""Header and query-parameter mappings shared by requests and responses."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl

from multidict import CIMultiDict, CIMultiDictProxy, MultiDict, MultiDictProxy

__all__ = ["Headers", "QueryParams", "make_headers", "make_query"]

# Case-insensitive and multi-valued: ``headers.get("X-GitHub-Event")`` and
# ``headers.get("x-github-event")`` agree, ``headers.getall("Via")`` keeps repeats.
Headers = CIMultiDictProxy[str]
QueryParams = MultiDictProxy[str]

HeadersInput = Headers | Mapping[str, str] | Iterable[tuple[str, str]] | None
QueryInput = QueryParams | Mapping[str, str] | Iterable[tuple[str, str]] | str | None


_NO_HEADERS: Headers = CIMultiDictProxy(CIMultiDict())


def make_headers(headers: HeadersInput) -> Headers:
    """Return ``headers`` as a read-only case-insensitive multi-dict, copying only when needed."""
    if isinstance(headers, CIMultiDictProxy):
        return headers
    if headers is None:
        return _NO_HEADERS
    return CIMultiDictProxy(CIMultiDict(headers))


def make_query(query: QueryInput) -> QueryParams:
    """Return ``query`` (a raw query string or pairs) as a read-only multi-dict."""
    if isinstance(query, MultiDictProxy):
        return query
    if query is None or query == "":
        return MultiDictProxy(MultiDict())
    if isinstance(query, str):
        return MultiDictProxy(MultiDict(parse_qsl(query, keep_blank_values=True)))
    return MultiDictProxy(MultiDict(query))
