"""Image references: the Docker/OCI grammar (distribution/reference) and its normalisation.

`busybox` → `docker.io/library/busybox:latest`; `host:port/ns/name:tag@sha256:...` keeps all
parts. An unqualified name (no registry host in front) is resolved against the configured
short-name registries, in order (`candidates`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from imagestore.digest import Digest
from imagestore.errors import InvalidImage, InvalidReference

DOCKER_HUB = "docker.io"
DEFAULT_TAG = "latest"
_MAX_NAME = 255

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
_DOMAIN = re.compile(rf"^{_HOST}(?::[0-9]+)?$")
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH = re.compile(rf"^{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_HEX64 = re.compile(r"^[a-f0-9]{64}$")


@dataclass(frozen=True)
class Reference:
    """A fully qualified image reference. `tag` or `digest` (or both) is set."""

    domain: str
    path: str
    tag: str | None = None
    digest: Digest | None = None

    @property
    def name(self) -> str:
        """`domain/path`, the repository name used in repo tags and digests."""
        return f"{self.domain}/{self.path}"

    @property
    def lookup(self) -> str:
        """What to ask the registry's manifests endpoint for: the digest if any, else the tag."""
        return str(self.digest) if self.digest else (self.tag or DEFAULT_TAG)

    def with_digest(self, digest: Digest) -> Reference:
        """This repository at `digest`, without tag: a repo digest."""
        return Reference(self.domain, self.path, None, digest)

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def is_qualified(text: str) -> bool:
    """Whether `text` names its registry (its first component looks like a host)."""
    first, sep, _ = text.partition("/")
    return bool(sep) and ("." in first or ":" in first or first == "localhost")


def parse(text: str, default_domain: str = DOCKER_HUB) -> Reference:
    """Parse and normalise `text`; unqualified names go to `default_domain`.

    Raises:
        InvalidReference: the text does not follow the grammar.
    """
    if not isinstance(text, str) or not text or len(text) > 1024:
        raise InvalidReference(f"invalid image reference {text!r:.80}: empty or too long")
    rest, digest = _split_digest(text)
    rest, tag = _split_tag(rest, text)
    domain, path = _split_domain(rest, default_domain)
    _check_name(domain, path, text)
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)


def candidates(text: str, short_name_registries: list[str] | tuple[str, ...]) -> list[Reference]:
    """The references to try for `text`: itself if qualified, else one per search registry.

    Raises:
        InvalidReference: malformed text, or an unqualified name with no search registry.
    """
    if is_qualified(text.partition("@")[0]):
        return [parse(text)]
    if not short_name_registries:
        raise InvalidReference(f"image name {text!r:.80} is unqualified and no "
                               "short-name registries are configured")
    return [parse(text, domain) for domain in short_name_registries]


def _split_digest(text: str) -> tuple[str, Digest | None]:
    rest, at, digest_text = text.partition("@")
    if not at:
        return text, None
    try:
        return rest, Digest.parse(digest_text)
    except InvalidImage:
        raise InvalidReference(f"invalid image reference {text!r:.80}: bad digest") from None


def _split_tag(rest: str, text: str) -> tuple[str, str | None]:
    colon = rest.rfind(":")
    if colon <= rest.rfind("/"):  # a colon before the last slash is a port
        return rest, None
    tag = rest[colon + 1:]
    if not _TAG.match(tag):
        raise InvalidReference(f"invalid image reference {text!r:.80}: bad tag {tag!r:.80}")
    return rest[:colon], tag


def _split_domain(rest: str, default_domain: str) -> tuple[str, str]:
    if is_qualified(rest):
        domain, _, path = rest.partition("/")
    else:
        domain, path = default_domain, rest
    if domain == "index.docker.io":
        domain = DOCKER_HUB
    if domain == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    return domain, path


def _check_name(domain: str, path: str, text: str) -> None:
    if not _DOMAIN.match(domain):
        raise InvalidReference(f"invalid image reference {text!r:.80}: bad registry {domain!r}")
    if not _PATH.match(path):
        why = "must be lowercase" if path.lower() != path else "bad repository name"
        raise InvalidReference(f"invalid image reference {text!r:.80}: {why}")
    if _HEX64.match(text):
        raise InvalidReference(f"invalid image reference {text!r:.80}: a 64-hex name is an id")
    if len(domain) + 1 + len(path) > _MAX_NAME:
        raise InvalidReference(f"invalid image reference {text!r:.80}: name longer than 255")
