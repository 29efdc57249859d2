"""The reservation store both managers use for names (crid/reservations.py): what a kubelet's
retry of a create gets while the first create is in flight, after it finished, and after it
failed."""

from __future__ import annotations

import threading

import pytest

from crid.errors import AlreadyExists
from crid.reservations import ReservationStore

NAME = "web_pod1_0"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _retry(store: ReservationStore[str], wait: float, out: list[object]) -> threading.Thread:
    def run() -> None:
        try:
            out.append(store.reserve(NAME, lambda: "second", wait))
        except AlreadyExists as e:
            out.append(e)
    t = threading.Thread(target=run)
    t.start()
    return t


def test_a_held_name_is_refused_naming_its_holder_until_released() -> None:
    store: ReservationStore[str] = ReservationStore()
    store.hold(NAME, "first")
    with pytest.raises(AlreadyExists, match="first"):
        store.reserve(NAME, lambda: "second", wait=0)
    store.release(NAME, "someone-else")  # not the holder: nothing changes
    with pytest.raises(AlreadyExists):
        store.reserve(NAME, lambda: "second", wait=0)
    store.release(NAME, "first")
    assert store.reserve(NAME, lambda: "second", wait=0)[1]


def test_a_retry_waits_for_the_create_in_flight_and_gets_its_result() -> None:
    store: ReservationStore[str] = ReservationStore()
    res, mine = store.reserve(NAME, lambda: "first", wait=0)
    assert mine
    got: list[object] = []
    t = _retry(store, 10, got)
    t.join(0.2)
    assert t.is_alive()  # still waiting: the first create has not finished
    store.finish(NAME, res, ok=True, abandoned=True)  # its caller's deadline had passed
    t.join(5)
    assert got == [(res, False)] and res.holder == "first"
    with pytest.raises(AlreadyExists):  # handed back once only
        store.reserve(NAME, lambda: "third", wait=0)


def test_a_retry_takes_the_name_when_the_create_in_flight_fails() -> None:
    store: ReservationStore[str] = ReservationStore()
    res, _ = store.reserve(NAME, lambda: "first", wait=0)
    got: list[object] = []
    t = _retry(store, 10, got)
    store.finish(NAME, res, ok=False, abandoned=False)
    t.join(5)
    (mine_res, mine), = got  # type: ignore[misc]
    assert mine and mine_res.holder == "second"


def test_a_create_whose_caller_stayed_is_not_handed_to_another() -> None:
    store: ReservationStore[str] = ReservationStore()
    res, _ = store.reserve(NAME, lambda: "first", wait=0)
    store.finish(NAME, res, ok=True, abandoned=False)
    with pytest.raises(AlreadyExists, match="first .in use"):
        store.reserve(NAME, lambda: "second", wait=1)


def test_a_retry_that_outwaits_its_budget_is_refused_as_being_created() -> None:
    store: ReservationStore[str] = ReservationStore()
    store.reserve(NAME, lambda: "first", wait=0)
    with pytest.raises(AlreadyExists, match="being created"):
        store.reserve(NAME, lambda: "second", wait=0.05)


def test_an_abandoned_create_nobody_claims_goes_stale() -> None:
    clock = Clock()
    store: ReservationStore[str] = ReservationStore(stale_after=60, clock=clock)
    res, _ = store.reserve(NAME, lambda: "first", wait=0)
    store.finish(NAME, res, ok=True, abandoned=True)
    clock.now += 61
    with pytest.raises(AlreadyExists, match="first"):
        store.reserve(NAME, lambda: "second", wait=0)
