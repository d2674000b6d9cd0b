"""The sync agent's error taxonomy (CONVENTIONS.md, "A deliberate error taxonomy").

Every error the agent raises is a :class:`SyncAgentError`. Transport errors are
*retryable*: the request may or may not have reached central, and the protocol
makes a resend harmless. Central's final refusals are not errors here but
outcomes (:class:`central_sync.agent.core.UploadResult`), because the agent must
report them and keep running its other duties until told to stop.
"""

from __future__ import annotations

from typing import ClassVar


class SyncAgentError(Exception):
    """Base of every sync agent error. ``reason`` is a short stable code."""

    reason: ClassVar[str] = "agent-error"


class AgentConfigError(SyncAgentError, ValueError):
    """The agent cannot run with this configuration (no central URL, no pinned key, ...)."""

    reason = "config"


class TransportError(SyncAgentError):
    """A request to central failed on the way (connection, TLS, reset, bad framing).

    Retryable: whether central received the request is unknown.
    """

    reason = "network"


class TransportTimeoutError(TransportError):
    """Central did not answer within the timeout (retryable)."""

    reason = "timeout"


class AnswerTooLargeError(TransportError):
    """Central's answer exceeded the agent's bound; it was not read to the end."""

    reason = "answer-too-large"


class StateFileError(SyncAgentError):
    """The agent's status file is unreadable or not a status file."""

    reason = "state-file"
