"""The OpenAPI 3.1 document of the JSON API, served at ``GET /v1/openapi.json``.

Built from data here rather than kept as a file, so the patterns and bounds it
states are the ones the code enforces (they come from the same constants).
CI runs schemathesis against it (tests/gateway/test_openapi_schemathesis.py).
"""

from __future__ import annotations

import json
from typing import Any, Final

from gateway.identifiers import IDEMPOTENCY_KEY_PATTERN
from gateway.registry import CSV_COLUMNS

__all__ = ["openapi_document", "openapi_document_bytes"]

API_VERSION: Final = "1.0.0"

_PROBLEM_REF: Final = {"$ref": "#/components/schemas/Problem"}
_RETRY_AFTER: Final = {
    "description": "Seconds to wait before repeating the request.",
    "schema": {"type": "string", "pattern": "^[0-9]+$"},
}
_ERROR_TEXT: Final = {
    "400": "Malformed request: a parameter, header or body is missing or wrong.",
    "401": "Not signed, bad signature, unknown key, stale timestamp or a replayed nonce.",
    "403": "Agent disabled, API not allowed for it, source address not allowed, or payment "
    "refused by the provider's rules.",
    "404": "No such account, payment or resource.",
    "405": "Method not allowed on this resource.",
    "408": "The request body did not arrive in time.",
    "409": "A request with this Idempotency-Key is still being processed.",
    "413": "The request body is too large.",
    "422": "Well-formed but refused: account format, inactive account, amount limits, or an "
    "Idempotency-Key reused with a different body.",
    "429": "Rate limit exceeded; see Retry-After.",
    "503": "Retry later (overload, stale or missing catalog, journal busy, shutting down, or "
    "payment outcome unknown: repeat the same request); see Retry-After.",
}


def _error(status: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": _ERROR_TEXT[status],
        "content": {"application/problem+json": {"schema": _PROBLEM_REF}},
    }
    if status in ("429", "503"):
        response["headers"] = {"Retry-After": _RETRY_AFTER}
    return response


def _errors(*statuses: str) -> dict[str, Any]:
    common = ("400", "401", "403", "405", "408", "413", "429", "503")
    return {s: _error(s) for s in sorted(set(common) | set(statuses))}


def _localized() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["ru", "en"],
        "additionalProperties": False,
        "properties": {"ru": {"type": "string"}, "en": {"type": "string"}},
    }


def _schemas(account_pattern: str) -> dict[str, Any]:
    minor = {"type": "integer", "description": "Money in kopecks (minor units); never a float."}
    return {
        "Problem": {
            "type": "object",
            "description": "RFC 9457 problem details.",
            "required": ["type", "title", "status", "detail", "code", "retryable"],
            "properties": {
                "type": {"type": "string"},
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "detail": {"type": "string"},
                "code": {"type": "string", "description": "Stable error code (docs/gateway.md)."},
                "retryable": {"type": "boolean"},
                "param": {"type": "string"},
                "limit_minor": minor,
            },
        },
        "LocalizedText": _localized(),
        "Service": {
            "type": "object",
            "required": ["code", "name", "provider", "debt_minor", "period"],
            "additionalProperties": False,
            "properties": {
                "code": {"type": "string"},
                "name": {"$ref": "#/components/schemas/LocalizedText"},
                "provider": {
                    "type": "object",
                    "required": ["id", "name"],
                    "additionalProperties": False,
                    "properties": {
                        "id": {"type": "string"},
                        "name": {"$ref": "#/components/schemas/LocalizedText"},
                    },
                },
                "debt_minor": {
                    **minor,
                    "description": "Owed (positive) or overpaid (negative), in kopecks.",
                },
                "period": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"},
            },
        },
        "Account": {
            "type": "object",
            "required": [
                "account",
                "holder",
                "address",
                "currency",
                "debt_total_minor",
                "services",
                "catalog",
            ],
            "additionalProperties": False,
            "properties": {
                "account": {"type": "string"},
                "holder": {
                    "$ref": "#/components/schemas/LocalizedText",
                    "description": "Masked: surname and initials only.",
                },
                "address": {"$ref": "#/components/schemas/LocalizedText"},
                "currency": {"type": "string", "enum": ["RUB"]},
                "debt_total_minor": minor,
                "services": {"type": "array", "items": {"$ref": "#/components/schemas/Service"}},
                "catalog": {
                    "type": "object",
                    "description": "How fresh the local catalog answering this is.",
                    "required": ["version", "age_s", "stale"],
                    "additionalProperties": False,
                    "properties": {
                        "version": {"type": "integer"},
                        "age_s": {"type": "integer"},
                        "stale": {
                            "type": "boolean",
                            "description": "True: older than the gateway accepts payments for.",
                        },
                    },
                },
            },
        },
        "PaymentCreate": {
            "type": "object",
            "required": ["account", "amount_minor"],
            "additionalProperties": False,
            "properties": {
                "account": {
                    "type": "string",
                    "pattern": account_pattern,
                    "description": "Virtual number; its check digit is checked too (422).",
                },
                "amount_minor": {**minor, "minimum": 1, "maximum": 10**12},
                "currency": {"type": "string", "enum": ["RUB"], "default": "RUB"},
            },
        },
        "Payment": {
            "type": "object",
            "required": [
                "payment_id",
                "prv_txn",
                "agent",
                "txn_id",
                "txn_date",
                "account",
                "amount_minor",
                "currency",
                "protocol",
                "status",
                "accepted_at",
                "registry_date",
            ],
            "additionalProperties": False,
            "properties": {
                "payment_id": {"type": "string"},
                "prv_txn": {"type": "integer", "description": "The gateway's transaction number."},
                "agent": {"type": "string"},
                "txn_id": {
                    "type": "string",
                    "description": "The Idempotency-Key (or OSMP txn_id) it was created with.",
                },
                "txn_date": {"type": ["string", "null"]},
                "account": {"type": "string"},
                "amount_minor": minor,
                "currency": {"type": "string", "enum": ["RUB"]},
                "protocol": {"type": "string", "enum": ["osmp", "json"]},
                "status": {"type": "string", "enum": ["accepted"]},
                "accepted_at": {"type": "string", "format": "date-time"},
                "registry_date": {"type": "string", "format": "date"},
            },
        },
        "Registry": {
            "type": "object",
            "required": ["agent", "date", "timezone", "count", "total_minor", "payments"],
            "additionalProperties": False,
            "properties": {
                "agent": {"type": "string"},
                "date": {"type": "string", "format": "date"},
                "timezone": {"type": "string"},
                "count": {"type": "integer", "minimum": 0},
                "total_minor": {"type": "object", "additionalProperties": {"type": "integer"}},
                "payments": {"type": "array", "items": {"$ref": "#/components/schemas/Payment"}},
            },
        },
    }


_SIGNING: Final = """Every operation except this document and /health is signed with HMAC-SHA256
under the agent's key. Send X-LP-Key-Id, X-LP-Timestamp (Unix seconds, within the replay window),
X-LP-Nonce (16..64 of [A-Za-z0-9_-], fresh per request) and X-LP-Signature: lowercase hex
HMAC-SHA256 over these lines joined by LF: "LP1-HMAC-SHA256", the method, the path as sent, the
query string as sent (or empty), the timestamp, the nonce, the key id, the Idempotency-Key header
(or empty), and the lowercase hex SHA-256 of the body. Money is integer kopecks everywhere."""


def openapi_document(
    *, account_length_min: int = 6, account_length_max: int = 12
) -> dict[str, Any]:
    """The OpenAPI 3.1 document as a dict, for this deployment's account number lengths."""
    account_pattern = f"^[0-9]{{{account_length_min},{account_length_max}}}$"
    signed: list[dict[str, list[str]]] = [
        {"keyId": [], "timestamp": [], "nonce": [], "signature": []}
    ]
    idempotency_key = {
        "name": "Idempotency-Key",
        "in": "header",
        "required": True,
        "description": "The agent's transaction id: same key and body, same answer; same key, "
        "different body, 422; still in flight, 409. Shared with OSMP txn_id.",
        "schema": {
            "type": "string",
            "pattern": f"^{IDEMPOTENCY_KEY_PATTERN}$",
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "lobbypay gateway JSON API",
            "version": API_VERSION,
            "description": _SIGNING,
        },
        "paths": {
            "/v1/accounts/{account}": {
                "get": {
                    "operationId": "getAccount",
                    "summary": "An account's services and debts from the local catalog.",
                    "security": signed,
                    "parameters": [
                        {
                            "name": "account",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "pattern": account_pattern},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "The account.",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Account"}
                                }
                            },
                        },
                        **_errors("404", "422"),
                    },
                }
            },
            "/v1/payments": {
                "post": {
                    "operationId": "createPayment",
                    "summary": "Accept a payment; answered only once it is durable.",
                    "security": signed,
                    "parameters": [idempotency_key],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/PaymentCreate"}
                            }
                        },
                    },
                    "responses": {
                        "201": {
                            "description": "Accepted (or accepted before with this key and body).",
                            "headers": {
                                "Location": {"required": True, "schema": {"type": "string"}},
                                "Idempotent-Replayed": {
                                    "description": "Present on a repeat answered from storage.",
                                    "schema": {"type": "string", "enum": ["true"]},
                                },
                            },
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Payment"}
                                }
                            },
                        },
                        **_errors("404", "409", "422"),
                    },
                }
            },
            "/v1/payments/{payment_id}": {
                "get": {
                    "operationId": "getPayment",
                    "summary": "One of this agent's payments.",
                    "security": signed,
                    "parameters": [
                        {
                            "name": "payment_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "maxLength": 64},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "The payment.",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Payment"}
                                }
                            },
                        },
                        **_errors("404"),
                    },
                }
            },
            "/v1/registry/{date}": {
                "get": {
                    "operationId": "getRegistry",
                    "summary": "This agent's payments of one day (registry time zone).",
                    "security": signed,
                    "parameters": [
                        {
                            "name": "date",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "format": "date"},
                        },
                        {
                            "name": "format",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string", "enum": ["json", "csv"]},
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "The registry. CSV columns: " + ", ".join(CSV_COLUMNS),
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Registry"}
                                },
                                "text/csv": {"schema": {"type": "string"}},
                            },
                        },
                        **_errors("404"),
                    },
                }
            },
        },
        "components": {
            "schemas": _schemas(account_pattern),
            "securitySchemes": {
                "keyId": {"type": "apiKey", "in": "header", "name": "X-LP-Key-Id"},
                "timestamp": {"type": "apiKey", "in": "header", "name": "X-LP-Timestamp"},
                "nonce": {"type": "apiKey", "in": "header", "name": "X-LP-Nonce"},
                "signature": {"type": "apiKey", "in": "header", "name": "X-LP-Signature"},
            },
        },
    }


def openapi_document_bytes(*, account_length_min: int = 6, account_length_max: int = 12) -> bytes:
    document = openapi_document(
        account_length_min=account_length_min, account_length_max=account_length_max
    )
    return json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8")
