"""What the metadata instructions do to an image's runtime config (Docker's `config` object):
ENV, LABEL, USER, EXPOSE, VOLUME, STOPSIGNAL, CMD, ENTRYPOINT, SHELL, HEALTHCHECK, ONBUILD.

Each function takes the config and the instruction's arguments (with the environment for
expansion) and changes the config in place; none touches the file system.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from crid.build.dockerfile import Instruction, exec_form, flags, parse
from crid.build.errors import BuildError
from crid.build.words import expand_word, key_values, split_words
from crid.config import parse_duration

DEFAULT_SHELL = ("/bin/sh", "-c")
_PORT = re.compile(r"^(\d{1,5})(?:-(\d{1,5}))?(?:/(tcp|udp|sctp))?$", re.IGNORECASE)
_NO_ONBUILD = {"ONBUILD", "FROM", "MAINTAINER"}


def env_map(config: Mapping[str, Any]) -> dict[str, str]:
    """The config's `Env` list as a mapping."""
    out = {}
    for item in config.get("Env") or ():
        key, _, value = item.partition("=")
        out[key] = value
    return out


def set_env(config: dict[str, Any], pairs: list[tuple[str, str]]) -> None:
    env = env_map(config)
    env.update(pairs)
    config["Env"] = [f"{k}={v}" for k, v in env.items()]


def do_env(config: dict[str, Any], ins: Instruction, env: Mapping[str, str]) -> None:
    set_env(config, key_values(ins.args, env, "ENV"))


def do_label(config: dict[str, Any], ins: Instruction, env: Mapping[str, str]) -> None:
    labels = dict(config.get("Labels") or {})
    labels.update(key_values(ins.args, env, "LABEL"))
    config["Labels"] = labels


def do_user(config: dict[str, Any], ins: Instruction, env: Mapping[str, str]) -> None:
    user = expand_word(ins.args, env).strip()
    if not user:
        raise BuildError("USER requires exactly one argument")
    config["User"] = user


def do_expose(config: dict[str, Any], ins: Instruction, env: Mapping[str, str]) -> None:
    ports = dict(config.get("ExposedPorts") or {})
    for word in split_words(ins.args, env):
        m = _PORT.match(word)
        if not m or int(m.group(1)) > 65535 or (m.group(2) and int(m.group(2)) > 65535):
            raise BuildError(f"invalid containerPort: {word!r:.40}")
        proto = (m.group(3) or "tcp").lower()
        first, last = int(m.group(1)), int(m.group(2) or m.group(1))
        for port in range(first, last + 1):
            ports[f"{port}/{proto}"] = {}
    config["ExposedPorts"] = ports


def do_volume(config: dict[str, Any], ins: Instruction, env: Mapping[str, str]) -> None:
    paths = exec_form(ins.args) or split_words(ins.args, env)
    volumes = dict(config.get("Volumes") or {})
    for path in paths:
        if not path.strip():
            raise BuildError("VOLUME specified can not be an empty string")
        volumes[path] = {}
    config["Volumes"] = volumes


def do_stopsignal(config: dict[str, Any], ins: Instruction, env: Mapping[str, str]) -> None:
    config["StopSignal"] = expand_word(ins.args, env).strip()


def command(ins: Instruction, shell: tuple[str, ...]) -> list[str]:
    """The argv of a RUN/CMD/ENTRYPOINT: its exec form, or its text under the shell."""
    argv = exec_form(ins.args)
    return argv if argv is not None else [*shell, ins.args]


def do_cmd(config: dict[str, Any], ins: Instruction, shell: tuple[str, ...]) -> None:
    config["Cmd"] = command(ins, shell)


def do_entrypoint(config: dict[str, Any], ins: Instruction, shell: tuple[str, ...],
                  cmd_set_here: bool) -> None:
    config["Entrypoint"] = command(ins, shell)
    if not cmd_set_here:  # an inherited CMD does not outlive a new ENTRYPOINT
        config["Cmd"] = None


def do_shell(config: dict[str, Any], ins: Instruction) -> tuple[str, ...]:
    argv = exec_form(ins.args)
    if not argv:
        raise BuildError("SHELL requires the arguments to be in JSON form")
    config["Shell"] = argv
    return tuple(argv)


def do_healthcheck(config: dict[str, Any], ins: Instruction, shell: tuple[str, ...]) -> None:
    found, rest = flags(ins.args, ("interval", "timeout", "start-period", "start-interval",
                                   "retries"), ins)
    kind, _, cmd = rest.partition(" ")
    if kind.upper() == "NONE":
        config["Healthcheck"] = {"Test": ["NONE"]}
        return
    if kind.upper() != "CMD" or not cmd.strip():
        raise BuildError("HEALTHCHECK requires CMD <command> or NONE")
    argv = exec_form(cmd)
    check: dict[str, Any] = {"Test": ["CMD", *argv] if argv is not None else ["CMD-SHELL", cmd]}
    for flag, key in (("interval", "Interval"), ("timeout", "Timeout"),
                      ("start-period", "StartPeriod"), ("start-interval", "StartInterval")):
        if flag in found:
            check[key] = _duration_ns(found[flag], flag)
    if "retries" in found:
        if not found["retries"].isdigit() or int(found["retries"]) < 1:
            raise BuildError(f"--retries must be a positive integer, got {found['retries']!r}")
        check["Retries"] = int(found["retries"])
    config["Healthcheck"] = check


def do_onbuild(config: dict[str, Any], ins: Instruction) -> None:
    keyword = ins.args.split(None, 1)[0].upper() if ins.args.strip() else ""
    if not keyword:
        raise BuildError("ONBUILD requires an instruction")
    if keyword in _NO_ONBUILD:
        raise BuildError(f"{keyword} isn't allowed as an ONBUILD trigger")
    config["OnBuild"] = [*(config.get("OnBuild") or []), ins.args]


def _duration_ns(text: str, flag: str) -> int:
    try:
        return int(parse_duration(text) * 1_000_000_000)
    except ValueError as e:
        raise BuildError(f"--{flag}: {e}") from None


METADATA = frozenset({"ENV", "LABEL", "USER", "EXPOSE", "VOLUME", "STOPSIGNAL", "CMD",
                      "ENTRYPOINT", "SHELL", "HEALTHCHECK", "ONBUILD"})
COMMIT_CHANGES = frozenset({"CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "USER",
                            "VOLUME", "WORKDIR", "STOPSIGNAL", "HEALTHCHECK", "SHELL"})


def apply(config: dict[str, Any], ins: Instruction, env: Mapping[str, str],
          shell: tuple[str, ...], cmd_set: bool) -> tuple[str, ...]:
    """Apply one metadata instruction (METADATA) to `config`; returns the shell in force.

    Raises:
        BuildError: a malformed instruction, or one that is not a metadata instruction.
    """
    kw = ins.keyword
    if kw in ("ENV", "LABEL", "USER", "EXPOSE", "VOLUME", "STOPSIGNAL"):
        _SIMPLE[kw](config, ins, env)
    elif kw == "CMD":
        do_cmd(config, ins, shell)
    elif kw == "ENTRYPOINT":
        do_entrypoint(config, ins, shell, cmd_set)
    elif kw == "SHELL":
        return do_shell(config, ins)
    elif kw == "HEALTHCHECK":
        do_healthcheck(config, ins, shell)
    elif kw == "ONBUILD":
        do_onbuild(config, ins)
    else:
        raise BuildError(f"{kw} is not a metadata instruction")
    return shell


_SIMPLE = {"ENV": do_env, "LABEL": do_label, "USER": do_user, "EXPOSE": do_expose,
           "VOLUME": do_volume, "STOPSIGNAL": do_stopsignal}


def apply_changes(config: dict[str, Any], lines: list[str]) -> None:
    """Apply `docker commit --change` / `docker import --change` lines (Dockerfile
    instructions of COMMIT_CHANGES) to an image's runtime config, as a build would;
    WORKDIR only sets the config here (there is no file system to make it in).

    Raises:
        BuildError: an instruction that does not parse or is not allowed.
    """
    shell = tuple(config.get("Shell") or DEFAULT_SHELL)
    cmd_set = False
    for line in lines:
        if not line.strip():
            continue
        df = parse(f"FROM scratch\n{line}\n".encode())
        if len(df.stages) != 1:  # the line was a FROM
            raise BuildError("FROM is not a valid change command")
        for ins in df.stages[0].instructions:
            if ins.keyword not in COMMIT_CHANGES:
                raise BuildError(f"{ins.keyword} is not a valid change command")
            env = env_map(config)
            if ins.keyword == "WORKDIR":
                path = expand_word(ins.args, env).strip()
                if not path:
                    raise BuildError("WORKDIR requires exactly one argument")
                config["WorkingDir"] = os.path.normpath(
                    path if path.startswith("/") else os.path.join(
                        config.get("WorkingDir") or "/", path))
                continue
            shell = apply(config, ins, env, shell, cmd_set)
            cmd_set = cmd_set or ins.keyword == "CMD"
