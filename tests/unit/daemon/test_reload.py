"""crid.reload: which changed options a reload applies and which need a restart."""

from __future__ import annotations

import dataclasses

from crid import config as c
from crid.reload import RELOADABLE, changed_keys, plan


def test_reloadable_keys_take_the_new_value_the_rest_keep_the_old() -> None:
    old = c.Config()
    new = dataclasses.replace(
        old, log_level="debug", root="/elsewhere",
        images=dataclasses.replace(old.images, pinned=["x:1"], parallel_downloads=9,
                                   registries={"docker.io": c.RegistryConfig(mirrors=["m"])}),
        metrics=c.MetricsConfig(enable=True))
    p = plan(old, new)
    assert p.applied == ("log_level", "images.pinned", "images.registries", "metrics.enable")
    assert p.restart == ("root", "images.parallel_downloads")
    e = p.effective
    assert (e.log_level, e.root, e.images.pinned, e.images.parallel_downloads) == \
        ("debug", "/var/lib/crid", ["x:1"], 4)
    assert e.images.registries["docker.io"].mirrors == ["m"] and e.metrics.enable


def test_nothing_changed_is_an_empty_plan() -> None:
    p = plan(c.Config(), c.Config())
    assert (p.applied, p.restart, p.effective) == ((), (), c.Config())


def test_every_reloadable_key_is_an_option() -> None:
    everything = set(changed_keys(c.Config(), _all_different(c.Config())))
    assert RELOADABLE <= everything, RELOADABLE - everything


def _all_different(obj: object) -> object:
    changes = {}
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        v = getattr(obj, f.name)
        if dataclasses.is_dataclass(v):
            changes[f.name] = _all_different(v)
        elif isinstance(v, bool):
            changes[f.name] = not v
        elif isinstance(v, int):
            changes[f.name] = v + 1
        elif isinstance(v, dict):
            changes[f.name] = {"x": c.RegistryConfig()}
        else:
            changes[f.name] = type(v)() if v else type(v)("x") if isinstance(v, str) else ["x"]
    return dataclasses.replace(obj, **changes)  # type: ignore[type-var]
