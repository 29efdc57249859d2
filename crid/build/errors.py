"""The builder's errors: each ends the build with its message in the build output."""

from __future__ import annotations

from crid.errors import InvalidArgument


class BuildError(InvalidArgument):
    """The build cannot go on: a bad Dockerfile, context or instruction. `code` is the failing
    RUN's exit status, where one failed."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class BuildCancelled(BuildError):
    """The client went away: the build stops where it is and leaves nothing behind."""
