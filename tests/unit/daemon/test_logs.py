from __future__ import annotations

import io
import json

from crid import logs


def test_credentials_never_reach_the_log() -> None:
    out = io.StringIO()
    logs.setup("debug", "json", stream=out)
    logs.get("t").info("pulling", request={"username": "u", "password": "hunter2"},
                       header="Authorization: Bearer abc.def.ghi", registry_token="tok123")
    line = out.getvalue()
    assert "hunter2" not in line and "abc.def.ghi" not in line and "tok123" not in line
    rec = json.loads(line)
    assert rec["request"] == {"username": "u", "password": "<redacted>"}
    assert rec["header"] == "Authorization: Bearer <redacted>"


def test_text_format_is_human_readable() -> None:
    out = io.StringIO()
    logs.setup("info", "text", stream=out)
    logs.get("t").info("hello", x=1)
    logs.get("t").debug("hidden")
    assert "hello" in out.getvalue() and "x=1" in out.getvalue()
    assert "hidden" not in out.getvalue()


def test_reconfigure_reaches_loggers_already_used() -> None:
    out = io.StringIO()
    logs.setup("info", "json", stream=out)
    log = logs.get("t")
    log.debug("before")
    logs.reconfigure("debug", "text")
    log.debug("after", x=1)
    logs.reconfigure("error", "json")
    log.warning("dropped")
    log.error("kept")
    lines = out.getvalue().splitlines()
    assert "before" not in out.getvalue() and "dropped" not in out.getvalue()
    assert "after" in lines[0] and "x=1" in lines[0] and not lines[0].startswith("{")
    assert json.loads(lines[1])["event"] == "kept"


def test_text_format_renders_an_exception_as_a_plain_traceback() -> None:
    out = io.StringIO()
    logs.setup("info", "text", stream=out)
    try:
        raise ValueError("boom")
    except ValueError:
        logs.get("t").exception("failed")
    text = out.getvalue()
    assert "Traceback (most recent call last)" in text and "ValueError: boom" in text
    assert "\x1b[" not in text  # no colour codes: a log file is read with less and grep
