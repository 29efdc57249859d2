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
