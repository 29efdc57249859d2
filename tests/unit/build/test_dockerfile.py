"""Dockerfile parsing, word expansion, .dockerignore matching and the metadata instructions."""

from __future__ import annotations

import pytest

from crid.build import dockerignore, instructions
from crid.build.dockerfile import Instruction, exec_form, parse
from crid.build.errors import BuildError
from crid.build.words import expand_word, key_values, split_words

ENV = {"NAME": "world", "EMPTY": "", "DIR": "/srv/app"}


def test_stages_args_and_instructions() -> None:
    df = parse(b"""# comment
ARG BASE=busybox
FROM ${BASE} AS build
ENV A=1 \\
    B="two words"
RUN echo hi && \\
    echo there
FROM --platform=linux/amd64 build
COPY --from=build /a /b
""")
    assert [str(i) for i in df.global_args] == ["ARG BASE=busybox"]
    first, second = df.stages
    assert (first.base, first.name, first.line) == ("${BASE}", "build", 3)
    assert [i.keyword for i in first.instructions] == ["ENV", "RUN"]
    assert first.instructions[1].line == 6
    assert (second.base, second.name, second.platform) == ("build", "", "linux/amd64")


@pytest.mark.parametrize("text, message", [
    (b"FROM busybox\nFROB x\n", "line 2: unknown instruction: FROB"),
    (b"RUN true\nFROM busybox\n", "RUN before the first FROM"),
    (b"# nothing\n", "no FROM"),
    (b"FROM a b\n", "FROM requires either one or three arguments"),
    (b"FROM --flavour=x a\n", "unknown flag for FROM"),
    (b"\xff\xfe", "not UTF-8"),
])
def test_bad_dockerfiles_say_what_is_wrong(text: bytes, message: str) -> None:
    with pytest.raises(BuildError, match=message):
        parse(text)


def test_word_expansion() -> None:
    assert split_words('a "b c" \'$NAME\' $NAME ${NAME}s \\$NAME', ENV) == [
        "a", "b c", "$NAME", "world", "worlds", "$NAME"]
    assert expand_word("${MISSING:-fallback} ${NAME:+set} ${EMPTY:-e}", ENV) == \
        "fallback set e"
    assert expand_word("${DIR}/bin", ENV) == "/srv/app/bin"
    with pytest.raises(BuildError, match="matching"):
        split_words('"open', ENV)
    with pytest.raises(BuildError, match="unsupported modifier"):
        expand_word("${NAME%x}", ENV)


def test_key_values_both_forms() -> None:
    assert key_values('A=1 B="two words" C=$NAME', ENV, "ENV") == [
        ("A", "1"), ("B", "two words"), ("C", "world")]
    assert key_values("LEGACY value with spaces", ENV, "ENV") == [
        ("LEGACY", "value with spaces")]
    with pytest.raises(BuildError, match="can't find ="):
        key_values("A=1 B", ENV, "ENV")


def test_exec_form() -> None:
    assert exec_form('["sh", "-c", "echo x"]') == ["sh", "-c", "echo x"]
    assert exec_form("[not json") is None
    assert exec_form("echo [x]") is None


@pytest.mark.parametrize("path, excluded", [
    ("node_modules/x/y.js", True), ("src/main.py", False), ("src/main.pyc", True),
    ("deep/a/b/c.log", True), ("keep.log", False), ("secret", True), ("docs", True),
    ("docs/keep.md", False), ("docs/other.md", True),
])
def test_dockerignore_matches_as_moby(path: str, excluded: bool) -> None:
    patterns = dockerignore.parse("""
# comment
node_modules
**/*.pyc
**/*.log
!keep.log
/secret
docs
!docs/keep.md
""")
    assert dockerignore.excluded(path, patterns) is excluded


def test_dockerignore_prune_keeps_reincluded_children(tmp_path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/keep.md").write_text("k")
    (tmp_path / "docs/other.md").write_text("o")
    (tmp_path / "a.log").write_text("l")
    dockerignore.prune(str(tmp_path), dockerignore.parse("docs\n!docs/keep.md\n*.log\n"))
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "docs", "docs/keep.md"]


def _ins(keyword: str, args: str) -> Instruction:
    return Instruction(keyword, args, 1)


def test_metadata_instructions_change_the_config() -> None:
    cfg: dict = {"Env": ["PATH=/bin"], "Cmd": ["sh"]}
    instructions.do_env(cfg, _ins("ENV", "PATH=/usr/bin:$PATH X=1"), {"PATH": "/bin"})
    assert cfg["Env"] == ["PATH=/usr/bin:/bin", "X=1"]
    instructions.do_expose(cfg, _ins("EXPOSE", "80 53/udp 8000-8001"), {})
    assert sorted(cfg["ExposedPorts"]) == ["53/udp", "80/tcp", "8000/tcp", "8001/tcp"]
    instructions.do_volume(cfg, _ins("VOLUME", '["/data", "/logs"]'), {})
    assert cfg["Volumes"] == {"/data": {}, "/logs": {}}
    instructions.do_entrypoint(cfg, _ins("ENTRYPOINT", "exec app"), ("/bin/sh", "-c"), False)
    assert (cfg["Entrypoint"], cfg["Cmd"]) == (["/bin/sh", "-c", "exec app"], None)
    instructions.do_healthcheck(cfg, _ins("HEALTHCHECK", "--interval=5s --retries=3 CMD true"),
                                ("/bin/sh", "-c"))
    assert cfg["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000,
                                  "Retries": 3}
    instructions.do_onbuild(cfg, _ins("ONBUILD", "RUN echo later"))
    assert cfg["OnBuild"] == ["RUN echo later"]
    with pytest.raises(BuildError, match="isn't allowed"):
        instructions.do_onbuild(cfg, _ins("ONBUILD", "FROM x"))
    with pytest.raises(BuildError, match="invalid containerPort"):
        instructions.do_expose(cfg, _ins("EXPOSE", "99999"), {})
