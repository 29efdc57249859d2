"""The `crid` command: serve (default), `crid config`, `crid version`."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from crid import config as configmod
from crid import logs
from crid.version import CRI_API_VERSION, __version__

EXIT_CONFIG = 2
EXIT_STARTUP = 1

_FLAGS = {  # flag -> config key; every other option is set in the TOML file
    "root": "persistent state directory (default /var/lib/crid)",
    "run_root": "volatile state directory (default /run/crid)",
    "listen": "CRI socket: PATH or unix://PATH (default <run-root>/crid.sock)",
    "log_level": "debug, info, warning or error",
    "log_format": "auto, text or json",
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="crid", description="Kubernetes container engine (CRI v1)")
    p.add_argument("--config", type=Path, help="config file (default /etc/crid/crid.toml); "
                   "drop-ins are read from crid.d/ beside it")
    for key, help_text in _FLAGS.items():
        p.add_argument("--" + key.replace("_", "-"), dest=key, help=help_text)
    p.add_argument("--version", action="version",
                   version=f"crid {__version__} (CRI {CRI_API_VERSION})")
    p.add_argument("command", nargs="?", default="serve", choices=("serve", "config", "version"))
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    overrides: dict[str, Any] = {k: getattr(args, k) for k in _FLAGS if getattr(args, k)}
    try:
        cfg = configmod.load(args.config, overrides)
    except configmod.ConfigError as e:
        print(f"crid: configuration error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    if args.command == "version":
        print(f"crid {__version__} (CRI {CRI_API_VERSION})")
        return 0
    if args.command == "config":
        sys.stdout.write(configmod.render_toml(cfg))
        return 0
    return _serve(cfg, lambda: configmod.load(args.config, overrides))


def _serve(cfg: configmod.Config, loader: Callable[[], configmod.Config]) -> int:
    from crid.daemon import Daemon, StartupError  # grpc is imported only to serve
    from crid.sd_notify import Notifier

    logs.setup(cfg.log_level, cfg.log_format)
    daemon = Daemon(cfg, Notifier.from_env(os.environ), loader)
    daemon.install_signal_handlers()
    try:
        daemon.start()
    except StartupError as e:
        logs.get().error("cannot start", error=str(e))
        return EXIT_STARTUP
    except Exception as e:  # noqa: BLE001 - an operator gets one line, not a traceback
        logs.get().error("cannot start", error=f"{type(e).__name__}: {e}")
        return EXIT_STARTUP
    print(f"crid serving on unix://{cfg.socket_path}", file=sys.stderr, flush=True)
    try:
        daemon.wait()
    finally:
        daemon.stop()
    return 0
