"""The XNAi library's one listener: what starts and ends with each test, suite and run, in a written order."""

from __future__ import annotations

from .base import Context


class Listener:
    """Registered by the library (``ROBOT_LIBRARY_LISTENER``); runs for the suites that import it."""

    ROBOT_LISTENER_API_VERSION = 3

    def __init__(self, ctx: Context):
        self.ctx = ctx

    def start_test(self, data, result) -> None:  # noqa: ARG002 - listener API
        self.ctx.faults.open_test_scope()
        self.ctx.target.skip_test_without_capabilities(data)

    def end_test(self, data, result) -> None:  # noqa: ARG002 - listener API
        # 1. Background load first: no request of this test reaches a service after its faults are undone.
        self.ctx.load.end_background_load()
        # 2. Streams the test opened and never read.
        self.ctx.errors.close_the_unread_streams()
        # 3. Faults last, so the services are back before the next test (a leftover fails the test).
        self.ctx.faults.undo_test_faults(result)

    def end_suite(self, data, result) -> None:  # noqa: ARG002 - listener API
        self.ctx.faults.undo_suite_faults()
        self.ctx.target.record_capability_table(result)

    def close(self) -> None:
        # Faults before the testbed stops: undoing one needs its service.
        self.ctx.faults.undo_all_faults()
        self.ctx.target.stop_the_testbed_started_here()
