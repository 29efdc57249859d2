from __future__ import annotations

import threading

import pytest

from crid.errors import ResourceExhausted
from crid.events import ContainerEvent, EventBus


def ev(i: int) -> ContainerEvent:
    return ContainerEvent(f"c{i}", "CREATED", i, "p")


def test_every_subscriber_sees_every_event() -> None:
    bus = EventBus()
    a, b = bus.subscribe(), bus.subscribe()
    for i in range(3):
        bus.publish(ev(i))
    bus.close()
    assert [e.container_id for e in a.events(poll=0.01)] == ["c0", "c1", "c2"]
    assert [e.container_id for e in b.events(poll=0.01)] == ["c0", "c1", "c2"]


def test_slow_subscriber_is_dropped_with_an_error_not_blocking() -> None:
    bus = EventBus(limit=4)
    slow, fast = bus.subscribe(), bus.subscribe()
    got: list[str] = []
    t = threading.Thread(target=lambda: got.extend(e.container_id for e in fast.events(0.01)))
    t.start()
    for i in range(10):
        bus.publish(ev(i))
        threading.Event().wait(0.01)
    with pytest.raises(ResourceExhausted):
        list(slow.events(poll=0.01))
    bus.close()
    t.join(5)
    assert got == [f"c{i}" for i in range(10)]
