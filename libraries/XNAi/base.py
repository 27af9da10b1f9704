"""What every component of the ``XNAi`` library shares: the context, and the component base class.

One ``Context`` per library instance (the library is GLOBAL: one per Robot process).  Components reach
each other through it (``self.ctx.faults``), never through Robot's keyword namespace, and read the
target's settings through ``var`` / ``required``, the one place where Robot variables are read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from robot.api.exceptions import Failure, FatalError
from robot.api.types import Secret
from robot.libraries.BuiltIn import BuiltIn
from xnai_qa import targetconfig

if TYPE_CHECKING:  # the components import this module: no import cycle at run time
    from .keywords.api import ApiKeywords
    from .keywords.errors import ErrorKeywords
    from .keywords.faults import FaultKeywords
    from .keywords.load import LoadKeywords
    from .keywords.metrics import MetricKeywords
    from .keywords.probes import ProbeKeywords
    from .keywords.target import TargetKeywords


class Context:
    """The library's shared state: its components, and the target's settings."""

    target: TargetKeywords
    faults: FaultKeywords
    probes: ProbeKeywords
    load: LoadKeywords
    metrics: MetricKeywords
    errors: ErrorKeywords
    api: ApiKeywords

    @staticmethod
    def var(name: str, default: Any = None) -> Any:
        """The value of the Robot variable ``${name}`` (from the variables file or the command line)."""
        return BuiltIn().get_variable_value(f"${{{name}}}", default)

    @staticmethod
    def secrets() -> list[tuple[str, str]]:
        """Every variable holding a ``Secret``, as (name, value): what no answer or log may show."""
        return [(name, value.value) for name, value in BuiltIn().get_variables().items() if isinstance(value, Secret)]

    def required(self, name: str) -> Any:
        """``${name}``, which every target defines: a missing one stops the run, naming it."""
        value = self.var(name)
        if value is None:
            raise FatalError(f"${{{name}}} is not defined: import resources/xnai.resource or pass a variables file.")
        return value


class LibraryComponent:
    """Base of the library's components (``XNAi/keywords/*.py``): each holds the shared context."""

    def __init__(self, ctx: Context):
        self.ctx = ctx

    def _var(self, name: str, default: Any = None) -> Any:
        return self.ctx.var(name, default)

    def _required(self, name: str) -> Any:
        return self.ctx.required(name)

    def _api_url(self, path: str, via: str) -> str:
        """The RAG API's ``path`` (under ``${API_PREFIX}``) ``via`` the ``gateway`` or ``direct``, its host allowed."""
        try:
            return targetconfig.api_url(self._var, path, via)
        except targetconfig.TargetConfigError as err:
            raise Failure(str(err)) from None
