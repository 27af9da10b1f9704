"""Key figures at the top of report.html: top-level suite metadata, one entry per measuring test.

pabot's merged output keeps the top-level metadata of every process, so the figures of all
suites meet at the top of the one report.
"""

from __future__ import annotations

from robot.libraries.BuiltIn import BuiltIn, RobotNotRunningError


def figure(text: str, name: str | None = None) -> None:
    """Records ``text`` under ``name`` (default: the running test's name); a no-op outside Robot."""
    try:
        builtin = BuiltIn()
        key = name or builtin.get_variable_value("${TEST NAME}", None)
        if key:
            builtin.set_suite_metadata(key, text, top=True)
    except RobotNotRunningError:
        pass
