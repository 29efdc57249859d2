"""RPCs a servicer lacks answer UNIMPLEMENTED by name, unary and streaming alike."""

from __future__ import annotations

import grpc
import pytest

from crid.server.unimplemented import fill_unimplemented


class Aborted(Exception):
    pass


class Context:
    def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise Aborted(code, details)


def test_unary_and_streaming_fillers() -> None:
    class Empty:
        pass

    fill_unimplemented(Empty, "RuntimeService")
    with pytest.raises(Aborted) as e:
        Empty().Version(None, Context())  # type: ignore[attr-defined]
    assert e.value.args == (grpc.StatusCode.UNIMPLEMENTED, "Version is not implemented by crid yet")
    with pytest.raises(Aborted) as e:
        list(Empty().GetContainerEvents(None, Context()))  # type: ignore[attr-defined]
    assert e.value.args[1] == "GetContainerEvents is not implemented by crid yet"
