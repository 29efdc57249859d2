"""The project's proto/ must be wire-identical to upstream CRI v1 (tests/data/cri-v1-wire.json)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from google.protobuf import descriptor_pb2

TOP = Path(__file__).resolve().parents[2]
WIRE = json.loads((TOP / "tests/data/cri-v1-wire.json").read_text())
LABELS = {1: "optional", 2: "required", 3: "repeated"}
TYPES = {v: k[len("TYPE_"):].lower()
         for k, v in descriptor_pb2.FieldDescriptorProto.Type.items()}


def _compile(tmp_path: Path) -> descriptor_pb2.FileDescriptorSet:
    out = tmp_path / "api.pb"
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-Iproto", f"--descriptor_set_out={out}",
         "runtime/v1/api.proto"], cwd=TOP, check=True)
    fds = descriptor_pb2.FileDescriptorSet()
    fds.ParseFromString(out.read_bytes())
    return fds


def _tables(fd: descriptor_pb2.FileDescriptorProto) -> tuple[dict, dict, dict]:
    prefix = "." + fd.package
    messages: dict = {}
    enums: dict = {}

    def walk_enum(e: descriptor_pb2.EnumDescriptorProto, scope: str) -> None:
        enums[f"{scope}.{e.name}"] = {v.name: v.number for v in e.value}

    def walk(m: descriptor_pb2.DescriptorProto, scope: str) -> None:
        name = f"{scope}.{m.name}"
        fields = []
        for f in m.field:
            row = {"label": LABELS[f.label], "name": f.name, "number": f.number,
                   "type": TYPES[f.type]}
            if f.type_name:
                row["type_name"] = f.type_name
            fields.append(row)
        messages[name] = {"fields": fields, "map_entry": m.options.map_entry}
        for n in m.nested_type:
            walk(n, name)
        for e in m.enum_type:
            walk_enum(e, name)

    for m in fd.message_type:
        walk(m, prefix)
    for e in fd.enum_type:
        walk_enum(e, prefix)
    services = {
        s.name: [{"name": m.name, "input": m.input_type, "output": m.output_type,
                  "client_streaming": m.client_streaming,
                  "server_streaming": m.server_streaming} for m in s.method]
        for s in fd.service}
    return messages, enums, services


def test_package(tmp_path: Path) -> None:
    (fd,) = _compile(tmp_path).file
    assert fd.package == WIRE["package"]


def test_every_message_and_field_matches(tmp_path: Path) -> None:
    messages, _, _ = _tables(_compile(tmp_path).file[0])
    assert sorted(messages) == sorted(WIRE["messages"])
    for name, want in WIRE["messages"].items():
        got = messages[name]
        assert got["map_entry"] == want["map_entry"], name
        key = lambda f: f["number"]  # noqa: E731
        assert sorted(got["fields"], key=key) == sorted(want["fields"], key=key), name


def test_every_enum_matches(tmp_path: Path) -> None:
    _, enums, _ = _tables(_compile(tmp_path).file[0])
    assert enums == WIRE["enums"]


def test_every_service_and_method_matches(tmp_path: Path) -> None:
    _, _, services = _tables(_compile(tmp_path).file[0])
    assert sorted(services) == sorted(WIRE["services"])
    for name, want in WIRE["services"].items():
        key = lambda m: m["name"]  # noqa: E731
        assert sorted(services[name], key=key) == sorted(want, key=key), name


# The compiler's own version stamps change with every grpcio-tools patch release; what must not
# drift is the descriptor and the stubs (tests/unit/test_proto_pins.py guards the versions).
_STAMPS = (
    re.compile(r"^GRPC_GENERATED_VERSION = '[^']*'$", re.M),
    re.compile(r"^# Protobuf Python Version: .*$", re.M),
    re.compile(r"ValidateProtobufRuntimeVersion\([^)]*\)", re.S),
)


def _unstamped(path: Path) -> str:
    text = path.read_text()
    for stamp in _STAMPS:
        text = stamp.sub("<version>", text)
    return text


def test_generated_modules_are_fresh(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "tools/gen_proto.py", str(tmp_path)], cwd=TOP, check=True)
    for f in ("api_pb2.py", "api_pb2.pyi", "api_pb2_grpc.py"):
        assert _unstamped(tmp_path / "crid/api" / f) == _unstamped(TOP / "crid/api" / f), (
            f"crid/api/{f} is stale: run `make proto`")


def test_version_stamps_are_ignored_and_nothing_else(tmp_path: Path) -> None:
    committed = TOP / "crid/api/api_pb2_grpc.py"
    restamped = tmp_path / "restamped.py"
    restamped.write_text(committed.read_text().replace(
        "GRPC_GENERATED_VERSION = '", "GRPC_GENERATED_VERSION = '9"))
    assert _unstamped(restamped) == _unstamped(committed)
    changed = tmp_path / "changed.py"
    changed.write_text(committed.read_text().replace("/runtime.v1.RuntimeService/Version",
                                                     "/runtime.v1.RuntimeService/Versio"))
    assert _unstamped(changed) != _unstamped(committed)
