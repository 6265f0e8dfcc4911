"""Chat texts of the monitor-alert plugin in Chinese (default) and English."""

from __future__ import annotations

from .._i18n import Catalogue

__all__ = ["CATALOGUE"]

CATALOGUE = Catalogue(
    {
        "zh_CN": {
            "unknown": "未知",
            "no_details": "无详细信息",
            # POST /alert
            "alert_title": "{icon} 告警 | {level}",
            "level_critical": "严重",
            "level_error": "错误",
            "level_warning": "警告",
            "level_info": "提示",
            "service_line": "服务：{service}",
            "time_line": "时间：{time}",
            "details_line": "详情：{text}",
            "metrics_header": "指标：",
            "metric_item": "- {name}：{value}",
            # Alertmanager and Grafana groups
            "firing_title": "{icon} 告警触发 | {source}",
            "resolved_title": "{icon} 告警恢复 | {source}",
            "title_line": "标题：{title}",
            "labels_line": "标签：{labels}",
            "firing_header": "触发中（{count}）：",
            "resolved_header": "已恢复（{count}）：",
            "alert_item": "- {icon} {name}{details}",
            "summary_part": "：{text}",
            "since_part": "（开始于 {time}）",
            "ended_part": "（结束于 {time}）",
            "values_part": " [{values}]",
            "more_alerts": "…以及另外 {count} 条",
            "truncated_line": "另有 {count} 条告警被 {source} 截断",
            "link_line": "链接：{url}",
        },
        "en": {
            "unknown": "unknown",
            "no_details": "no details",
            # POST /alert
            "alert_title": "{icon} Alert | {level}",
            "level_critical": "CRITICAL",
            "level_error": "ERROR",
            "level_warning": "WARNING",
            "level_info": "INFO",
            "service_line": "Service: {service}",
            "time_line": "Time: {time}",
            "details_line": "Details: {text}",
            "metrics_header": "Metrics:",
            "metric_item": "- {name}: {value}",
            # Alertmanager and Grafana groups
            "firing_title": "{icon} Firing | {source}",
            "resolved_title": "{icon} Resolved | {source}",
            "title_line": "Title: {title}",
            "labels_line": "Labels: {labels}",
            "firing_header": "Firing ({count}):",
            "resolved_header": "Resolved ({count}):",
            "alert_item": "- {icon} {name}{details}",
            "summary_part": ": {text}",
            "since_part": " (since {time})",
            "ended_part": " (ended {time})",
            "values_part": " [{values}]",
            "more_alerts": "…and {count} more",
            "truncated_line": "{count} more alerts were truncated by {source}",
            "link_line": "Link: {url}",
        },
    }
)
