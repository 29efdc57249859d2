"""The classic builder: a Dockerfile's stages run step by step over the image store.

Every step ends in an image (Docker's intermediate images): metadata steps change only the
config, COPY/ADD/WORKDIR add a layer staged in a directory, RUN adds its container's writable
layer. A step whose key (parent image, expanded instruction, copied content, build arguments)
is in the cache and whose image still exists is not run again (" ---> Using cache").

Output is what `docker build` prints for the classic builder (`Step n/N : ...`, ` ---> id`,
`Successfully built`, `Successfully tagged`), sent to a BuildOutput as it happens.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from crid.build import dockerignore, instructions
from crid.build.cache import BuildCache, step_key
from crid.build.copying import CopySpec, parse_chown, stage_copy, tree_digest
from crid.build.dockerfile import Dockerfile, Instruction, Stage, exec_form, flags, parse
from crid.build.errors import BuildCancelled, BuildError
from crid.build.runner import Cancelled, RunStep, StepRunner
from crid.build.view import merged_view, resolve_inside
from crid.build.words import expand_word, split_words
from crid.containers.users import UserDB
from imagestore import (
    ImageRecord,
    ImageStore,
    ImageStoreError,
    LayerProgress,
    NewImage,
    host_platform,
    pack_layer,
)

# Build arguments every Dockerfile may use without declaring them (Docker's list).
PREDEFINED_ARGS = frozenset({
    "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
    "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"})


@dataclass(frozen=True)
class BuildRequest:
    """One `docker build`: the unpacked context and the query's options."""

    context: Path
    dockerfile: str = "Dockerfile"
    tags: tuple[str, ...] = ()
    build_args: Mapping[str, str | None] = field(default_factory=dict)
    target: str = ""
    no_cache: bool = False
    pull: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    remove_containers: bool = True  # False (rm=0): the runner keeps them, nothing is said


class BuildOutput(Protocol):
    def stream(self, text: str) -> None: ...

    def aux(self, image_id: str) -> None: ...

    def status(self, text: str, id: str = "") -> None:
        """A status message (a base image's pull: "Pulling from", "Digest:", "Status:")."""
        ...

    def pull_progress(self, event: LayerProgress) -> None:
        """A layer of a base image's pull advanced (called from download threads)."""
        ...


Puller = Callable[[str, Callable[[LayerProgress], None]], ImageRecord]


@dataclass
class _State:
    """A stage as far as it got: its image (None: scratch so far) and that image's config."""

    image_id: str | None
    config: dict[str, Any]  # the image config's `config` object (runtime defaults)
    history: list[dict[str, Any]]
    author: str = ""
    args: dict[str, str | None] = field(default_factory=dict)
    shell: tuple[str, ...] = instructions.DEFAULT_SHELL
    cmd_set: bool = False

    def env(self) -> dict[str, str]:
        """What `$VAR` expands to here: the build arguments in scope, then ENV over them."""
        out = {k: v for k, v in self.args.items() if v is not None}
        out.update(instructions.env_map(self.config))
        return out


class Builder:
    """Runs builds; thread-safe (each build has its own state and work directory)."""

    def __init__(self, images: ImageStore, runner: StepRunner, cache: BuildCache,
                 work_root: Path, pull: Puller | None = None) -> None:
        self._images = images
        self._runner = runner
        self._cache = cache
        self._work_root = work_root
        self._pull: Puller = pull or (lambda name, progress: images.pull(name, None, progress))
        self._platform = host_platform()

    def build(self, req: BuildRequest, out: BuildOutput,
              cancelled: Cancelled = lambda: False) -> str:
        """Build `req`; returns the final image id. Raises BuildError (and the image store's
        and managers' errors, with the message the output should end on); BuildCancelled
        once `cancelled()` turns true (checked between steps and while a RUN runs)."""
        df = parse(_read_dockerfile(req.context, req.dockerfile))
        _apply_dockerignore(req.context)
        stages = _stages_to_build(df, req.target)
        run = _Run(self, req, out, df, sum(1 + len(s.instructions) for s in stages), cancelled)
        built: dict[str, str | None] = {}
        final: str | None = None
        for stage in stages:
            final = run.stage(stage, built)
            built[str(stage.index)] = final
            if stage.name:
                built[stage.name] = final
        if req.labels:
            final = run.final_labels(final)
        if final is None:
            raise BuildError("No image was generated. Is your Dockerfile empty?")
        for tag in req.tags:
            self._images.tag(final, tag)
        unused = sorted(set(req.build_args) - run.consumed - PREDEFINED_ARGS)
        if unused:
            out.stream(f"[Warning] One or more build-args {unused} were not consumed\n")
        out.aux(final)
        out.stream(f"Successfully built {_short(final)}\n")
        for tag in req.tags:
            out.stream(f"Successfully tagged {_familiar(tag)}\n")
        return final


class _Run:
    """One build in progress."""

    def __init__(self, b: Builder, req: BuildRequest, out: BuildOutput, df: Dockerfile,
                 total: int, cancelled: Cancelled) -> None:
        self.b = b
        self.cancelled = cancelled
        self.req = req
        self.out = out
        self.total = total
        self.step_no = 0
        self.consumed: set[str] = set()
        self.global_args = self._global_args(df)

    # --- stages --------------------------------------------------------------------------

    def stage(self, stage: Stage, built: Mapping[str, str | None]) -> str | None:
        self._announce(Instruction("FROM", _from_text(stage), stage.line))
        st = self._from(stage, built)
        self.out.stream(f" ---> {_short(st.image_id) if st.image_id else 'scratch'}\n")
        triggers = list(st.config.get("OnBuild") or [])
        if triggers:
            self.out.stream(f"# Executing {len(triggers)} build trigger"
                            f"{'s' if len(triggers) > 1 else ''}\n")
            st.config["OnBuild"] = None
            for text in triggers:
                for ins in parse(f"FROM scratch\n{text}\n".encode()).stages[0].instructions:
                    self._dispatch(st, ins, built, announce=False)
        for ins in stage.instructions:
            self._dispatch(st, ins, built, announce=True)
        return st.image_id

    def _from(self, stage: Stage, built: Mapping[str, str | None]) -> _State:
        base = expand_word(stage.base, {k: v for k, v in self.global_args.items() if v})
        if not base:
            raise BuildError(f"line {stage.line}: base name ({stage.base}) should not be blank")
        if base.lower() in built:
            image_id = built[base.lower()]
        elif base.lower() == "scratch":
            image_id = None
        else:
            image_id = self._image(base).id
        if image_id is None:
            return _State(None, {}, [])
        config = self.b._images.config(image_id)
        st = _State(image_id, dict(config.get("config") or {}), list(config.get("history") or []),
                    config.get("author", ""))
        if st.config.get("Shell"):
            st.shell = tuple(st.config["Shell"])
        return st

    def _image(self, name: str) -> ImageRecord:
        record = None if self.req.pull else self.b._images.status(name)
        if record is None:
            self.out.status(f"Pulling from {_repository(name)}", _tag(name))
            before = self.b._images.status(name)
            record = self.b._pull(name, self.out.pull_progress)
            if record.repo_digests:
                self.out.status(f"Digest: {record.repo_digests[-1].rsplit('@', 1)[-1]}")
            fresh = before is None or before.id != record.id
            what = "Downloaded newer image" if fresh else "Image is up to date"
            self.out.status(f"Status: {what} for {name}")
        return record

    def _global_args(self, df: Dockerfile) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for ins in df.global_args:
            name, value = _arg(ins, out)
            if name in self.req.build_args and self.req.build_args[name] is not None:
                value = self.req.build_args[name]
                self.consumed.add(name)
            out[name] = value
        return out

    # --- steps ---------------------------------------------------------------------------

    def _announce(self, ins: Instruction) -> None:
        if self.cancelled():
            raise BuildCancelled("the build was cancelled")
        self.step_no += 1
        self.out.stream(f"Step {self.step_no}/{self.total} : {ins}\n")

    def _dispatch(self, st: _State, ins: Instruction, built: Mapping[str, str | None],
                  announce: bool) -> None:
        if announce:
            self._announce(ins)
        else:
            self.out.stream(f" ---> {ins}\n")
        kw = ins.keyword
        if kw == "RUN":
            self._run(st, ins)
        elif kw in ("COPY", "ADD"):
            self._copy(st, ins, built)
        elif kw == "WORKDIR":
            self._workdir(st, ins)
        else:
            self._meta(st, ins)

    def _meta(self, st: _State, ins: Instruction) -> None:
        env = st.env()
        kw, cfg = ins.keyword, st.config
        text = str(ins)
        if kw == "ARG":
            name, value = _arg(ins, env)
            if name in self.req.build_args and self.req.build_args[name] is not None:
                value = self.req.build_args[name]
            elif value is None and name in self.global_args:
                value = self.global_args[name]
            self.consumed.add(name)
            st.args[name] = value
            text = f"ARG {name}={value}" if value is not None else f"ARG {name}"
        elif kw == "MAINTAINER":
            st.author = expand_word(ins.args, env)
        else:
            st.shell = instructions.apply(cfg, ins, env, st.shell, st.cmd_set)
            st.cmd_set = st.cmd_set or kw == "CMD"
            if kw in ("ENV", "LABEL", "USER", "EXPOSE", "STOPSIGNAL"):
                text = f"{kw} {_expanded_args(ins, env)}"
        key = step_key(st.image_id, text, json.dumps(cfg, sort_keys=True), st.author)
        if not self._cached(st, key):
            self._commit(st, key, f"/bin/sh -c #(nop)  {text}", None)

    def _run(self, st: _State, ins: Instruction) -> None:
        argv = instructions.command(ins, st.shell)
        env_keys = instructions.env_map(st.config)
        args = sorted((k, v) for k, v in st.args.items() if v is not None and k not in env_keys)
        prefix = f"|{len(args)} {' '.join(f'{k}={v}' for k, v in args)} " if args else ""
        created_by = prefix + " ".join(argv)
        key = step_key(st.image_id, "RUN " + json.dumps(argv), json.dumps(args))
        if self._cached(st, key):
            return
        if st.image_id is None:
            raise BuildError("RUN needs a base image: a scratch stage has no shell to run")
        step = RunStep(st.image_id, tuple(argv), tuple(args), st.config.get("User") or "",
                       st.config.get("WorkingDir") or "")
        started: list[str] = []

        def on_start(cid: str) -> None:
            started.append(cid)
            self.out.stream(f" ---> Running in {_short(cid)}\n")

        def output(data: bytes) -> None:
            self.out.stream(data.decode("utf-8", "replace"))

        with self.b._runner.run(step, on_start, output, self.cancelled) as result:
            if result.exit_code != 0:
                raise BuildError(f"The command '{' '.join(argv)}' returned a non-zero code: "
                                 f"{result.exit_code}", result.exit_code)
            drop_mountpoints(result.upper, result.mountpoints)
            with self._layer_from(result.upper) as tar:
                self._commit(st, key, created_by, tar, announce_cached=False)
        if self.req.remove_containers:
            self.out.stream(f"Removing intermediate container {_short(started[0])}\n")
        self.out.stream(f" ---> {_short(st.image_id or '')}\n")

    def _copy(self, st: _State, ins: Instruction, built: Mapping[str, str | None]) -> None:
        env = st.env()
        allowed = ("from", "chown", "chmod", "link") if ins.keyword == "COPY" else \
            ("chown", "chmod", "link", "checksum")
        found, rest = flags(ins.args, allowed, ins)
        form = exec_form(rest)
        words = [expand_word(w, env) for w in form] if form is not None \
            else split_words(rest, env)
        if len(words) < 2:
            raise BuildError(f"{ins.keyword} requires at least two arguments, but only one "
                             "was provided. Destination could not be determined.")
        *sources, dest = words
        dest = _absolute(dest, st.config.get("WorkingDir") or "/", keep_slash=True)
        with contextlib.ExitStack() as stack:
            image_root = stack.enter_context(self._view(st.image_id))
            source_root = self.req.context
            if "from" in found:
                source_root = stack.enter_context(self._view(self._source_image(
                    expand_word(found["from"], env), built)))
            users = _user_db(image_root)
            owner = parse_chown(expand_word(found["chown"], env), users) \
                if "chown" in found else (0, 0)
            mode = _chmod(found.get("chmod"))
            spec = CopySpec(tuple(sources), dest, owner, mode, ins.keyword == "ADD")
            staging = Path(stack.enter_context(tempfile.TemporaryDirectory(
                prefix="copy-", dir=self.b._work_root)))
            stage_copy(spec, source_root, image_root, staging, ins.keyword)
            digest = tree_digest(staging)
            text = f"{ins.keyword} {json.dumps(found, sort_keys=True)} {digest} in {dest}"
            key = step_key(st.image_id, text, json.dumps(owner), str(mode))
            if self._cached(st, key):
                return
            created_by = f"/bin/sh -c #(nop) {ins.keyword} dir:{digest} in {dest} "
            with self._layer_from(staging) as tar:
                self._commit(st, key, created_by, tar)

    def _workdir(self, st: _State, ins: Instruction) -> None:
        path = _absolute(expand_word(ins.args, st.env()), st.config.get("WorkingDir") or "/")
        st.config["WorkingDir"] = path
        key = step_key(st.image_id, f"WORKDIR {path}")
        if self._cached(st, key):
            return
        with contextlib.ExitStack() as stack:
            image_root = stack.enter_context(self._view(st.image_id))
            if resolve_inside(image_root, path).is_dir():
                self._commit(st, key, f"/bin/sh -c #(nop) WORKDIR {path}", None)
                return
            staging = Path(stack.enter_context(tempfile.TemporaryDirectory(
                prefix="workdir-", dir=self.b._work_root)))
            target = resolve_inside(image_root, path).relative_to(image_root)
            os.makedirs(staging / target, mode=0o755)
            with self._layer_from(staging) as tar:
                self._commit(st, key, f"/bin/sh -c #(nop) WORKDIR {path}", tar)

    def final_labels(self, image_id: str | None) -> str | None:
        """The request's `--label`s, as a last LABEL step on the final image."""
        if image_id is None:
            return None
        config = self.b._images.config(image_id)
        st = _State(image_id, dict(config.get("config") or {}), list(config.get("history") or []),
                    config.get("author", ""))
        labels = dict(st.config.get("Labels") or {})
        labels.update(self.req.labels)
        st.config["Labels"] = labels
        text = "LABEL " + " ".join(f"{k}={v}" for k, v in sorted(self.req.labels.items()))
        key = step_key(image_id, text, json.dumps(st.config, sort_keys=True))
        if not self._cached(st, key, quiet=True):
            self._commit(st, key, f"/bin/sh -c #(nop)  {text}", None, quiet=True)
        return st.image_id

    # --- images --------------------------------------------------------------------------

    def _cached(self, st: _State, key: str, quiet: bool = False) -> bool:
        if self.req.no_cache:
            return False
        hit = self.b._cache.get(key)
        if hit is None or self.b._images.status(hit) is None:
            return False
        self._adopt(st, hit)
        if not quiet:
            self.out.stream(f" ---> Using cache\n ---> {_short(hit)}\n")
        return True

    def _commit(self, st: _State, key: str, created_by: str, tar: Path | None,
                announce_cached: bool = True, quiet: bool = False) -> None:
        now = datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")
        entry: dict[str, Any] = {"created": now, "created_by": created_by}
        if tar is None:
            entry["empty_layer"] = True
        config: dict[str, Any] = {
            "architecture": self.b._platform.architecture, "os": self.b._platform.os,
            "created": now, "config": st.config, "history": [*st.history, entry]}
        if self.b._platform.variant:
            config["variant"] = self.b._platform.variant
        if st.author:
            config["author"] = st.author
        try:
            record = self.b._images.create(
                NewImage(st.image_id, (tar,) if tar else (), config, ()))
        except ImageStoreError as e:
            raise BuildError(f"committing the step: {e}") from e
        self.b._cache.put(key, record.id)
        self._adopt(st, record.id)
        if announce_cached and not quiet:
            self.out.stream(f" ---> {_short(record.id)}\n")

    def _adopt(self, st: _State, image_id: str) -> None:
        config = self.b._images.config(image_id)
        st.image_id = image_id
        st.config = dict(config.get("config") or {})
        st.history = list(config.get("history") or [])
        st.author = config.get("author", "")

    @contextlib.contextmanager
    def _layer_from(self, tree: Path) -> Iterator[Path]:
        with tempfile.NamedTemporaryFile(prefix="layer-", suffix=".tar",
                                         dir=self.b._work_root) as f:
            pack_layer(tree, f)  # type: ignore[arg-type]
            f.flush()
            yield Path(f.name)

    @contextlib.contextmanager
    def _view(self, image_id: str | None) -> Iterator[Path]:
        if image_id is None:
            with tempfile.TemporaryDirectory(prefix="scratch-", dir=self.b._work_root) as d:
                yield Path(d)
            return
        with merged_view(self.b._images.layer_dirs(image_id), self.b._work_root) as root:
            yield root

    def _source_image(self, name: str, built: Mapping[str, str | None]) -> str | None:
        if name.lower() in built:
            return built[name.lower()]
        return self._image(name).id


def drop_mountpoints(upper: Path, mountpoints: tuple[str, ...]) -> None:
    """Take out of a RUN step's layer the empty files and directories the runtime made only
    to mount over (/etc/hosts, /dev, /proc ...), and parents left empty by that."""
    for point in sorted(mountpoints, key=len, reverse=True):
        path = upper / point.strip("/")
        while path != upper and not path.is_symlink() and _empty(path):
            if path.is_dir():
                path.rmdir()
            else:
                path.unlink()
            path = path.parent


def _empty(path: Path) -> bool:
    try:
        if path.is_dir():
            return not any(path.iterdir())
        return path.is_file() and path.stat().st_size == 0
    except OSError:
        return False


def _read_dockerfile(context: Path, name: str) -> bytes:
    path = resolve_inside(context, name)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise BuildError(f"Cannot locate specified Dockerfile: {name}") from None
    except OSError as e:
        raise BuildError(f"reading the Dockerfile {name!r:.120}: {e}") from None


def _apply_dockerignore(context: Path) -> None:
    path = context / ".dockerignore"
    if not path.is_file() or path.is_symlink():
        return
    try:
        patterns = dockerignore.parse(path.read_text(errors="replace"))
    except ValueError as e:
        raise BuildError(str(e)) from None
    dockerignore.prune(str(context), patterns)


def _stages_to_build(df: Dockerfile, target: str) -> list[Stage]:
    if not target:
        return list(df.stages)
    for i, stage in enumerate(df.stages):
        if stage.name == target.lower():
            return list(df.stages[:i + 1])
    raise BuildError(f"failed to reach build target {target} in Dockerfile")


def _arg(ins: Instruction, env: Mapping[str, str | None]) -> tuple[str, str | None]:
    words = split_words(ins.args, {k: v for k, v in env.items() if v is not None})
    if len(words) != 1:
        raise BuildError(f"ARG requires exactly one argument, got {ins.args!r:.120}")
    name, eq, value = words[0].partition("=")
    if not name:
        raise BuildError(f"ARG has no name: {ins.args!r:.120}")
    return name, value if eq else None


def _expanded_args(ins: Instruction, env: Mapping[str, str]) -> str:
    return " ".join(split_words(ins.args, env)) if ins.keyword != "VOLUME" else ins.args


def _absolute(path: str, workdir: str, keep_slash: bool = False) -> str:
    joined = path if path.startswith("/") else os.path.join(workdir, path)
    clean = os.path.normpath(joined)
    if keep_slash and (path.endswith("/") or path in (".", "./")) and clean != "/":
        clean += "/"
    return clean


def _chmod(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        mode = int(text, 8)
    except ValueError:
        raise BuildError(f"invalid --chmod value {text!r:.40}: use an octal mode") from None
    if mode > 0o7777:
        raise BuildError(f"invalid --chmod value {text!r:.40}")
    return mode


def _user_db(root: Path) -> UserDB:
    def read(rel: str) -> str:
        try:
            return resolve_inside(root, rel).read_text(errors="replace")[:1 << 20]
        except OSError:
            return ""
    return UserDB.parse(read("/etc/passwd"), read("/etc/group"))


def _from_text(stage: Stage) -> str:
    text = stage.base
    if stage.platform:
        text = f"--platform={stage.platform} {text}"
    return f"{text} AS {stage.name}" if stage.name else text


def _repository(name: str) -> str:
    """`name` without its tag or digest."""
    name = name.partition("@")[0]
    head, _, last = name.rpartition("/")
    return f"{head}/{last.partition(':')[0]}" if head else last.partition(":")[0]


def _tag(name: str) -> str:
    """`name`'s tag as the pull progress names it ("latest" when implied, "" by digest)."""
    if "@" in name:
        return ""
    last = name.rpartition("/")[2]
    return last.partition(":")[2] or "latest"


def _familiar(tag: str) -> str:
    """The tag as Docker prints it: with its implied ":latest"."""
    name = tag.rpartition("/")[2]
    return tag if ":" in name or "@" in name else f"{tag}:latest"


def _short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]
