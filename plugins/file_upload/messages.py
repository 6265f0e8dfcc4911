"""Chat texts of the file-upload plugin in Chinese (default) and English."""

from __future__ import annotations

from .._i18n import Catalogue

__all__ = ["CATALOGUE"]

CATALOGUE = Catalogue(
    {
        "zh_CN": {"received": "📎 收到文件：{filename}（{size}）"},
        "en": {"received": "📎 File received: {filename} ({size})"},
    }
)
