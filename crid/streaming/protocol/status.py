"""The exit status as the remotecommand error stream carries it (metav1.Status JSON)."""

from __future__ import annotations

import json
from typing import Any

from crid.streaming.protocol.errors import ProtocolError


def success_status() -> dict[str, Any]:
    return {"metadata": {}, "status": "Success"}


def exit_status(code: int) -> dict[str, Any]:
    """The Status the kubelet writes for an exit code (v4+: JSON; the code in details.causes)."""
    if code == 0:
        return success_status()
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: exit status {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def internal_error_status(message: str) -> dict[str, Any]:
    return {"metadata": {}, "status": "Failure", "message": message,
            "reason": "InternalError", "code": 500}


def encode_status(status: dict[str, Any], json_status: bool) -> bytes:
    """Bytes for the error stream: JSON for v4+, the bare message (or nothing) before v4."""
    if json_status:
        return json.dumps(status, separators=(",", ":")).encode()
    if status.get("status") == "Success":
        return b""
    return str(status.get("message", "error")).encode()


def decode_exit_code(payload: bytes) -> tuple[int, dict[str, Any] | None]:
    """Exit code and Status from an error-stream payload (empty = success, as in v1-v3).

    Raises:
        ProtocolError: a JSON Status without a usable exit code.
    """
    if not payload.strip():
        return 0, None
    try:
        status = json.loads(payload)
    except ValueError:
        return 1, {"status": "Failure", "message": payload.decode(errors="replace")}
    if not isinstance(status, dict):
        raise ProtocolError(f"error stream carried {payload[:80]!r}, not a Status")
    if status.get("status") == "Success":
        return 0, status
    if status.get("reason") == "NonZeroExitCode":
        for cause in (status.get("details") or {}).get("causes") or []:
            if cause.get("reason") == "ExitCode":
                try:
                    return int(cause.get("message", "")), status
                except ValueError as e:
                    raise ProtocolError(f"exit code cause {cause!r} is not a number") from e
    return 1, status
