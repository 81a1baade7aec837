"""Failed sign-in limits (wheelcave.auth.throttle), on a fake clock."""

from __future__ import annotations

from wheelcave.auth.throttle import FailureThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_per_address_limit_and_window() -> None:
    clock = Clock()
    t = FailureThrottle(per_address=3, per_user=100, window=60, clock=clock)
    for _ in range(3):
        assert t.blocked("10.0.0.1", "ann") is None
        t.failed("10.0.0.1", "ann")
    limit, wait = t.blocked("10.0.0.1", "ann")  # type: ignore[misc]
    assert limit == "address" and 59 <= wait <= 60
    assert t.blocked("10.0.0.2", "ann") is None  # another address is not held up
    clock.now += 61
    assert t.blocked("10.0.0.1", "ann") is None


def test_per_user_limit_spares_addresses_that_never_failed() -> None:
    clock = Clock()
    t = FailureThrottle(per_address=100, per_user=5, window=60, clock=clock)
    for i in range(5):
        t.failed(f"10.0.1.{i}", "ann")
    assert t.blocked("10.0.1.0", "ann") == ("user", 60.0)
    assert t.blocked("10.0.9.9", "ann") is None  # ann's own machine
    assert t.blocked("10.0.1.0", "bob") is None


def test_memory_stays_bounded() -> None:
    t = FailureThrottle(max_keys=100)
    for i in range(1000):
        t.failed(f"10.{i // 256}.{i % 256}.1", f"user{i}")
    assert len(t._by_address) + len(t._by_user) <= 102
