"""Regenerates crid/api/ from proto/ (`make proto`).

The include path is mapped onto the output package (`-Icrid/api=proto/runtime/v1`) so the
generated gRPC module imports `crid.api.api_pb2`, not `runtime.v1.api_pb2`, which would
resolve into this project's own `runtime/` package.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from grpc_tools import protoc

TOP = Path(__file__).resolve().parent.parent
PROTO = "proto/runtime/v1"


def generate(out_dir: Path) -> None:
    """Writes api_pb2.py, api_pb2.pyi and api_pb2_grpc.py into out_dir (the package root)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        f"-Icrid/api={PROTO}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        "crid/api/api.proto",
    ]

    cwd = os.getcwd()
    os.chdir(TOP)
    try:
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
    finally:
        os.chdir(cwd)


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else TOP)
