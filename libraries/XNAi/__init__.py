"""The XNAi keyword library: one library, components by concern on one shared context."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import TypeVar

from robotlibcore import DynamicCore

from .base import Context, LibraryComponent
from .keywords.api import ApiKeywords
from .keywords.breakers import BreakerKeywords
from .keywords.errors import ErrorKeywords
from .keywords.faults import FaultKeywords
from .keywords.health import HealthKeywords
from .keywords.load import LoadKeywords
from .keywords.metrics import MetricKeywords
from .keywords.performance import PerformanceKeywords
from .keywords.probes import ProbeKeywords
from .keywords.rag import RagKeywords
from .keywords.redis import RedisKeywords
from .keywords.streams import StreamKeywords
from .keywords.target import TargetKeywords
from .keywords.tasks import TaskKeywords
from .keywords.ui import UiKeywords
from .keywords.voice import VoiceKeywords
from .listener import Listener

__all__ = ["Context", "LibraryComponent", "XNAi"]

C = TypeVar("C", bound=LibraryComponent)

INTRO = """\
Acceptance-test keywords for the Xoe-NovAi (XNAi) stack: its gateway, RAG API and SSE streams,
circuit breakers, Redis, PostgreSQL, task service, UI, docs, voice and health monitor.

%TOC%

= Using the library =

Suites import it through ``resources/xnai.resource``, which also imports the target's variables
file and the keywords every suite shares:

| *** Settings ***
| Resource    ../resources/xnai.resource
| Suite Setup    Open Target Sessions

The *target* is the variables file: ``variables/testbed.py`` (the embedded testbed, the default),
``variables/xnai_host.py`` (a stack on this machine) or ``variables/xnai_compose.py`` (from a
container of the stack's compose project), chosen with ``--variablefile``.  Suites never name a host
or port; services are named as in ``${SERVICES}`` (``gateway``, ``rag_api``, ``redis``,
``postgres`` ...).  `Prepare Target` validates the whole configuration before the first test: a
wrong variable stops the run, naming the variable and the fix.  ``./qa docs`` writes
``docs/variables.html``: every variable, its meaning, its value per target and who reads it.

= Verdicts =

- *PASS* and *FAIL* are about the stack: a FAIL names what it did wrong.
- *SKIP* names a capability the target does not offer.  A keyword tagged ``requires:<capability>``
  (see each keyword's tags) needs it; a test tagged ``requires:<capability>`` is skipped in place of
  its setup when the target lacks it.  `Target Capabilities` lists what the target offers, and the
  report's metadata shows the table with the run's skip counts.
- A configuration error is a fatal error before the first test.

= Faults =

Every fault keyword returns a fault id for `Remove Fault` and is written to the fault ledger
(``${FAULT_LEDGER}``) before it takes effect.  A fault a test leaves is undone when the test ends
(one left by a suite setup, when the suite ends), with a warning; ``duration`` makes a fault end by
itself, and the log says when it ended; a fault that outlives its time fails the test that made it.
A run killed outright leaves its ledger, and the next run heals it before testing.

= What ends with each test =

The library's one listener (``XNAi/listener.py``) cleans up after every test in this order:

1. background load the test did not wait for ends (it is bounded by its duration);
2. streams opened by `Open Streams That Are Never Read` are closed;
3. faults the test left are undone.

Load first, so no request of the test reaches a service after its faults are undone; faults last,
so the services are back before the next test.  At the end of a suite its setup's faults are
undone; at the end of the run every fault still active is, and a testbed this process started
stops.

= Times and bounds =

Times are Robot time strings (``200ms``, ``1.5s``, ``2 minutes``).  Every wait polls with a bound
and every request loop is bounded in count and in time; the bounds of the chosen profile are in
the variables file (``TIMINGS``, ``*_BOUND_S``).  Load and probes go only to loopback or to hosts
listed in ``${ALLOWED_HOSTS}``.
"""

COMPONENTS = (TargetKeywords, ApiKeywords, ProbeKeywords, FaultKeywords, BreakerKeywords, HealthKeywords,
              StreamKeywords, LoadKeywords, MetricKeywords, PerformanceKeywords, RagKeywords, RedisKeywords,
              TaskKeywords, UiKeywords, VoiceKeywords, ErrorKeywords)


def _component_sections() -> str:
    """One section per component, from its class documentation (its title is the docstring's first line)."""
    parts = []
    for component in COMPONENTS:
        doc = inspect.getdoc(component) or ""
        title = component.__name__.removesuffix("Keywords")
        title = {"Api": "API", "Rag": "RAG", "Ui": "UI"}.get(title, title)
        parts.append(f"= {title} keywords =\n\n{doc}")
    return "\n\n".join(parts)


class XNAi(DynamicCore):
    __doc__ = INTRO + "\n" + _component_sections()

    ROBOT_LIBRARY_SCOPE = "GLOBAL"
    ROBOT_LIBRARY_DOC_FORMAT = "ROBOT"
    try:
        ROBOT_LIBRARY_VERSION = version("xnai-acceptance")
    except PackageNotFoundError:
        ROBOT_LIBRARY_VERSION = "unreleased"

    def __init__(self) -> None:
        self.ctx = ctx = Context()
        components = [cls(ctx) for cls in COMPONENTS]
        # The components the others call (through ctx; none does while they are being made).
        ctx.target, ctx.api = _one(components, TargetKeywords), _one(components, ApiKeywords)
        ctx.probes, ctx.faults = _one(components, ProbeKeywords), _one(components, FaultKeywords)
        ctx.load, ctx.metrics = _one(components, LoadKeywords), _one(components, MetricKeywords)
        ctx.errors = _one(components, ErrorKeywords)
        self.ROBOT_LIBRARY_LISTENER = Listener(ctx)
        DynamicCore.__init__(self, components)
        _check_unique_names(components)

def _one(components: Sequence[LibraryComponent], cls: type[C]) -> C:
    return next(c for c in components if isinstance(c, cls))


def _check_unique_names(components: list) -> None:
    """Two components defining one keyword name would silently shadow each other: refuse it."""
    seen: dict[str, str] = {}
    for component in components:
        for name in dir(type(component)):
            func = getattr(type(component), name, None)
            kw = getattr(func, "robot_name", None) or (name if hasattr(func, "robot_name") else None)
            if kw is None:
                continue
            key = kw.lower().replace(" ", "").replace("_", "")
            if key in seen:
                raise TypeError(f"Keyword '{kw}' is defined by {seen[key]} and {type(component).__name__}.")
            seen[key] = type(component).__name__
