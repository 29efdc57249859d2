from __future__ import annotations

import pytest

from runtime import caps


def test_table_matches_kernel_numbers():
    assert caps.cap_number("CAP_CHOWN") == 0
    assert caps.cap_number("CAP_SYS_ADMIN") == 21
    assert caps.cap_number("CAP_AUDIT_READ") == 37
    assert caps.cap_number("CAP_CHECKPOINT_RESTORE") == 40
    assert len(caps.CAP_NAMES) == 41


def test_names_are_case_and_prefix_insensitive():
    assert caps.cap_number("net_admin") == caps.cap_number("CAP_NET_ADMIN") == 12
    with pytest.raises(KeyError):
        caps.cap_number("CAP_FLY")


def test_masks_drop_caps_unknown_to_the_kernel():
    assert caps.to_mask(["CAP_CHOWN", "CAP_KILL"], 40) == 0b100001
    assert caps.to_mask(["CAP_BPF", "CAP_CHOWN"], 38) == 1  # kernel without CAP_BPF


def test_mask_names_round_trip():
    names = ["CAP_CHOWN", "CAP_SETUID", "CAP_CHECKPOINT_RESTORE"]
    assert caps.mask_names(caps.to_mask(names, 40)) == names


def test_last_cap_reads_proc(tmp_path):
    f = tmp_path / "cap_last_cap"
    f.write_text("38\n")
    assert caps.last_cap(str(f)) == 38
    f.write_text("99\n")
    assert caps.last_cap(str(f)) == 40
    assert caps.last_cap(str(tmp_path / "missing")) == 40


def _m(**sets: list[str]) -> caps.CapMasks:
    names = {k: sets.get(k, []) for k in ("bounding", "effective", "permitted", "inheritable",
                                          "ambient")}
    return caps.masks(**names)


ROOT_NO_SYS_RESOURCE = caps.Held(
    effective=caps.to_mask(caps.CAP_NAMES, 40) & ~(1 << 24),
    permitted=caps.to_mask(caps.CAP_NAMES, 40) & ~(1 << 24), inheritable=0,
    bounding=caps.to_mask(caps.CAP_NAMES, 40) & ~(1 << 24))


def test_grantable_leaves_out_what_the_runtime_does_not_hold():
    want = ["CAP_SYS_RESOURCE", "CAP_SYS_ADMIN", "CAP_KILL"]
    g = caps.grantable(_m(bounding=want, effective=want, permitted=want, inheritable=want,
                          ambient=want), ROOT_NO_SYS_RESOURCE)
    held = ["CAP_KILL", "CAP_SYS_ADMIN"]
    assert caps.mask_names(g.permitted) == caps.mask_names(g.effective) == held
    assert caps.mask_names(g.inheritable) == caps.mask_names(g.ambient) == held
    assert caps.mask_names(g.bounding) == sorted(want, key=caps.cap_number)  # drops never fail


def test_ambient_without_inheritable_is_skipped_as_runc_does():
    # runc 1.1's `runc spec`: ambient listed, no inheritable set
    runc = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    g = caps.grantable(_m(bounding=runc, effective=runc, permitted=runc, ambient=runc),
                       ROOT_NO_SYS_RESOURCE)
    assert (g.ambient, g.inheritable) == (0, 0)
    assert caps.mask_names(g.effective) == sorted(runc, key=caps.cap_number)


def test_inheritable_without_setpcap_stays_within_inheritable_and_permitted():
    h = caps.Held(effective=0, permitted=caps.to_mask(["CAP_KILL"], 40), inheritable=0,
                  bounding=ROOT_NO_SYS_RESOURCE.bounding)
    g = caps.grantable(_m(inheritable=["CAP_KILL", "CAP_CHOWN"], permitted=["CAP_KILL"],
                          ambient=["CAP_KILL", "CAP_CHOWN"]), h)
    assert caps.mask_names(g.inheritable) == caps.mask_names(g.ambient) == ["CAP_KILL"]


def test_log_ungranted_names_the_left_out_caps(caplog):
    want = ["CAP_SYS_RESOURCE", "CAP_KILL"]
    with caplog.at_level("DEBUG", logger="runtime.caps"):
        caps.log_ungranted("container c1", _m(effective=want, permitted=want, ambient=want),
                           ROOT_NO_SYS_RESOURCE)
    assert [r.getMessage() for r in caplog.records] == [
        "container c1: capabilities the runtime does not hold, not granted: CAP_SYS_RESOURCE",
        "container c1: ambient capabilities not in the permitted and inheritable sets, "
        "not raised: CAP_KILL, CAP_SYS_RESOURCE"]
