"""Bundled plughook plugins.

Each subpackage defines one plugin as its ``plugin`` attribute and is
registered under the ``plughook.plugins`` entry point:

* ``github_notifier``: GitHub webhooks to chat messages.
* ``monitor_alert``: generic, Alertmanager and Grafana alerts to chat messages.
* ``file_upload``: multipart uploads saved under the data directory.
* ``status``: status and maintenance mode of the app.
* ``long_process``: background tasks with a status record.

Modules starting with ``_`` hold helpers shared by the bundled plugins.
"""
