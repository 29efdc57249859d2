"""KeyedLocks: one lock per id, gone once nobody holds or waits for it."""

from __future__ import annotations

import threading

from crid.locks import KeyedLocks


def test_same_key_is_exclusive_other_keys_are_not() -> None:
    locks = KeyedLocks()
    order: list[str] = []
    with locks.held("a"):
        waiter = threading.Thread(target=lambda: _hold(locks, "a", order))
        waiter.start()
        waiter.join(0.1)
        assert waiter.is_alive() and len(locks) == 1
        with locks.held("b"):  # another key does not wait
            order.append("b")
        order.append("a-first")
    waiter.join(5)
    assert order == ["b", "a-first", "a-second"]
    assert len(locks) == 0


def test_an_entry_is_dropped_even_when_the_block_raises() -> None:
    locks = KeyedLocks()
    try:
        with locks.held("x"):
            raise ValueError("boom")
    except ValueError:
        pass
    assert len(locks) == 0
    with locks.held("x"):
        assert len(locks) == 1


def _hold(locks: KeyedLocks, key: str, order: list[str]) -> None:
    with locks.held(key):
        order.append("a-second")
