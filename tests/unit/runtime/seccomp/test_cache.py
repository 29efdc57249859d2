from __future__ import annotations

import pytest

from runtime.errors import SpecError
from runtime.seccomp import prepare_filter
from runtime.seccomp.cache import FilterCache


def _profile(*names: str) -> dict:
    return {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": list(names), "action": "SCMP_ACT_ALLOW"}]}


def test_equal_profiles_compile_once_whatever_the_key_order():
    cache = FilterCache()
    first = cache.get(_profile("read", "write"))
    reordered = dict(reversed(list(_profile("read", "write").items())))
    assert cache.get(reordered) is first
    assert first.encode() == prepare_filter(_profile("read", "write")).encode()
    assert cache.get(_profile("read")) is not first


def test_least_recently_used_is_dropped():
    cache = FilterCache(size=2)
    a = cache.get(_profile("read"))
    cache.get(_profile("write"))
    assert cache.get(_profile("read")) is a  # now the most recent
    cache.get(_profile("close"))  # drops "write"
    assert cache.get(_profile("read")) is a
    assert len(cache._filters) == 2


def test_invalid_profile_is_a_spec_error_and_not_kept():
    cache = FilterCache()
    with pytest.raises(SpecError):
        cache.get({"defaultAction": "SCMP_ACT_NOPE"})
    assert not cache._filters
