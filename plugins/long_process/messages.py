"""Chat texts of the long-process plugin in Chinese (default) and English."""

from __future__ import annotations

from .._i18n import Catalogue

__all__ = ["CATALOGUE"]

CATALOGUE = Catalogue(
    {
        "zh_CN": {"completed": "✅ 任务「{name}」已完成（{steps} 步）"},
        "en": {"completed": '✅ Task "{name}" completed ({steps} steps)'},
    }
)
