"""The Runtime's view of the host's cgroups, handed to the container's creator."""

from __future__ import annotations

import json

import pytest

from runtime.cgroup_seam import host_view, open_cgroups
from runtime.cgroups import CgroupError
from runtime.spec import parse_spec
from tests.integration.runtime.bundle import default_config


def _spec(cgroups_path: str | None = None):  # type: ignore[no-untyped-def]
    doc = default_config(["true"])
    if cgroups_path is not None:
        doc["linux"]["cgroupsPath"] = cgroups_path
    return parse_spec(doc)


@pytest.mark.parametrize("cgroups_path", [None, "/crt-seam/abs", "rel/x"])
def test_view_resolves_as_proc_does(cgroups_path: str | None) -> None:
    view = json.loads(json.dumps(host_view()))  # it crosses the zygote socket as JSON
    spec = _spec(cgroups_path)
    assert open_cgroups(spec, "crt-seam", view).dirs() == open_cgroups(spec, "crt-seam").dirs()


@pytest.mark.parametrize("view", [{}, {"mounts": [["/x"]], "own": {}},
                                  {"mounts": [["/x", "/", "one", []]], "own": {}},
                                  {"mounts": [], "own": []}])
def test_malformed_view_is_refused(view: dict) -> None:
    with pytest.raises(CgroupError, match="malformed"):
        open_cgroups(_spec(), "crt-seam", view)
