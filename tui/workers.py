"""Worker failures reach the App: a screen's workers report to the screen, and Textual does not pass that on."""

from __future__ import annotations

from textual.worker import Worker


class ReportsWorkerFailures:
    """Mixed into every screen that runs workers: hands their state changes to the App's one handler."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Pass the change to `VoxtopApp.on_worker_state_changed`, which turns a failure into a notification."""
        handler = getattr(self.app, "on_worker_state_changed", None)  # type: ignore[attr-defined]
        if handler is not None:
            handler(event)
