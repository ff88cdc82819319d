"""Calls made side by side, each thread with a client of its own."""
from __future__ import annotations

import threading
import time

import pytest

from connect.host_client import side_by_side


class Client:
    """Counts the calls in flight; a client must never be in two threads at once."""

    lock = threading.Lock()
    flying = most = 0

    def __init__(self) -> None:
        self.busy = threading.Lock()

    def call(self, each: int) -> int:
        assert self.busy.acquire(blocking=False), "a client shared by two threads at once"
        with Client.lock:
            Client.flying += 1
            Client.most = max(Client.most, Client.flying)
        try:
            time.sleep(0.05)
            return each * 10
        finally:
            with Client.lock:
                Client.flying -= 1
            self.busy.release()


def test_answers_come_in_order_with_at_most_bound_calls_at_once() -> None:
    made: list[Client] = []

    def another() -> Client:
        made.append(Client())
        return made[-1]

    Client.most = 0
    answers = side_by_side(list(range(12)), Client.call, Client(), another, 4, "test")
    assert answers == [n * 10 for n in range(12)]
    assert len(made) == 3  # the first client and three more
    assert 1 < Client.most <= 4


def test_the_first_failure_is_raised_and_calls_not_started_are_not_made() -> None:
    made: list[int] = []

    def call(_client: object, each: int) -> int:
        made.append(each)
        time.sleep(0.02)
        if each == 0:
            raise RuntimeError("refused")
        return each

    with pytest.raises(RuntimeError, match="refused"):
        side_by_side(list(range(40)), call, object(), object, 2, "test")
    assert len(made) < 40


def test_a_bound_of_one_calls_in_order_on_the_first_client() -> None:
    first = Client()
    seen: list[int] = []
    assert side_by_side([3, 1, 2], lambda c, n: seen.append(n) or c is first, first, Client, 1, "t") == [True] * 3
    assert seen == [3, 1, 2]
