"""The terminal's sync agent (`lobbypay sync`): journal up to central, catalog down.

* :mod:`~central_sync.agent.core` — :class:`SyncAgent` (upload, heartbeat, catalog,
  the daemon loop) and :class:`AgentConfig`.
* :mod:`~central_sync.agent.decide` — the pure table from central's answer to
  the agent's next move.
* :mod:`~central_sync.agent.transport` — the :class:`Transport` interface and
  :class:`AiohttpTransport`; :mod:`central_sync.simnet` has the simulated one.
* :mod:`~central_sync.agent.timing` — :class:`Clock` and full-jitter :class:`Backoff`.
* :mod:`~central_sync.agent.state` — the status file `lobbypay sync status` reads.
* :mod:`~central_sync.agent.enroll` — :func:`enroll`, the client side of enrollment.
"""

from central_sync.agent.core import (
    AgentConfig,
    AgentCounters,
    CatalogPull,
    FlushReport,
    HeartbeatResult,
    RunReport,
    SyncAgent,
    UploadKind,
    UploadResult,
)
from central_sync.agent.decide import Action, Decision, decide
from central_sync.agent.enroll import EnrollmentError, enroll
from central_sync.agent.errors import (
    AgentConfigError,
    AnswerTooLargeError,
    StateFileError,
    SyncAgentError,
    TransportError,
    TransportTimeoutError,
)
from central_sync.agent.state import STATE_FILE_NAME, AgentState, Problem, load_state
from central_sync.agent.timing import SYSTEM_CLOCK, Backoff, Clock, SystemClock
from central_sync.agent.transport import AiohttpTransport, Response, Transport

__all__ = [
    "STATE_FILE_NAME",
    "SYSTEM_CLOCK",
    "Action",
    "AgentConfig",
    "AgentConfigError",
    "AgentCounters",
    "AgentState",
    "AiohttpTransport",
    "AnswerTooLargeError",
    "Backoff",
    "CatalogPull",
    "Clock",
    "Decision",
    "EnrollmentError",
    "FlushReport",
    "HeartbeatResult",
    "Problem",
    "Response",
    "RunReport",
    "StateFileError",
    "SyncAgent",
    "SyncAgentError",
    "SystemClock",
    "Transport",
    "TransportError",
    "TransportTimeoutError",
    "UploadKind",
    "UploadResult",
    "decide",
    "enroll",
    "load_state",
]
