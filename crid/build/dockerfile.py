"""A Dockerfile as stages of instructions, parsed by dockerfile-parse (continuations,
comments, the escape directive) and checked here: known instructions, FROM first (ARG
excepted), exec forms recognised."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field

from dockerfile_parse import DockerfileParser

from crid.build.errors import BuildError

INSTRUCTIONS = frozenset({
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
    "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"})
MAX_DOCKERFILE = 4 << 20


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case
    args: str  # continuations joined, not yet expanded
    line: int  # 1-based, where it starts

    def __str__(self) -> str:
        return f"{self.keyword} {self.args}".rstrip()


@dataclass
class Stage:
    index: int
    base: str  # unexpanded
    name: str  # lower case; "" when unnamed
    platform: str
    line: int
    instructions: list[Instruction] = field(default_factory=list)


@dataclass(frozen=True)
class Dockerfile:
    global_args: tuple[Instruction, ...]
    stages: tuple[Stage, ...]


def parse(text: bytes) -> Dockerfile:
    """The stages of a Dockerfile.

    Raises:
        BuildError: too large, not UTF-8, an unknown instruction, no FROM, an instruction
            other than ARG before the first FROM, or a malformed FROM.
    """
    if len(text) > MAX_DOCKERFILE:
        raise BuildError(f"the Dockerfile is larger than {MAX_DOCKERFILE} bytes")
    try:
        text.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BuildError(f"the Dockerfile is not UTF-8: {e}") from None
    parser = DockerfileParser(fileobj=io.BytesIO(text))
    global_args: list[Instruction] = []
    stages: list[Stage] = []
    for item in parser.structure:
        keyword = item["instruction"].upper()
        if keyword == "COMMENT":
            continue
        ins = Instruction(keyword, item["value"].strip(), item["startline"] + 1)
        if keyword not in INSTRUCTIONS:
            raise BuildError(f"dockerfile parse error line {ins.line}: unknown instruction: "
                             f"{item['instruction']}")
        if keyword == "FROM":
            stages.append(_stage(ins, len(stages)))
        elif not stages:
            if keyword != "ARG":
                raise BuildError(f"dockerfile parse error line {ins.line}: {keyword} before "
                                 "the first FROM (only ARG may come first)")
            global_args.append(ins)
        else:
            stages[-1].instructions.append(ins)
    if not stages:
        raise BuildError("the Dockerfile has no FROM: no build stage in current context")
    return Dockerfile(tuple(global_args), tuple(stages))


def _stage(ins: Instruction, index: int) -> Stage:
    words = ins.args.split()
    platform = ""
    while words and words[0].startswith("--"):
        flag, _, value = words.pop(0)[2:].partition("=")
        if flag != "platform":
            raise BuildError(f"dockerfile parse error line {ins.line}: unknown flag for FROM: "
                             f"--{flag}")
        platform = value
    if len(words) == 1:
        return Stage(index, words[0], "", platform, ins.line)
    if len(words) == 3 and words[1].lower() == "as":
        return Stage(index, words[0], words[2].lower(), platform, ins.line)
    raise BuildError(f"dockerfile parse error line {ins.line}: FROM requires either one or "
                     f"three arguments (FROM <image> [AS <name>]), got {ins.args!r:.120}")


def exec_form(args: str) -> list[str] | None:
    """The JSON array of an exec-form RUN/CMD/ENTRYPOINT/SHELL, None for the shell form."""
    text = args.strip()
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def flags(args: str, allowed: tuple[str, ...], ins: Instruction) -> tuple[dict[str, str], str]:
    """Leading `--name=value` flags of an instruction and the rest of its arguments.

    Raises:
        BuildError: a flag not in `allowed`.
    """
    found: dict[str, str] = {}
    rest = args.strip()
    while rest.startswith("--"):
        word, _, rest = rest.partition(" ")
        name, eq, value = word[2:].partition("=")
        if name not in allowed:
            raise BuildError(f"dockerfile parse error line {ins.line}: unknown flag: --{name}")
        found[name] = value if eq else "true"
        rest = rest.strip()
    return found, rest
