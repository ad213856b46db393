"""FairQueue: round-robin across clients, FIFO within a client, removal, and order() matching pop()."""

from __future__ import annotations

import pytest

from lib.job_queue import FairQueue


def drain(queue: FairQueue) -> list[str]:
    return [queue.pop() for _ in range(len(queue))]


def filled(jobs: list[tuple[str, str]]) -> FairQueue:
    queue = FairQueue()
    for job_id, client in jobs:
        queue.push(job_id, client)
    return queue


def test_round_robin_across_clients_in_order_of_arrival():
    queue = filled([("a1", "A"), ("a2", "A"), ("a3", "A"), ("b1", "B"), ("b2", "B"), ("c1", "C")])

    assert drain(queue) == ["a1", "b1", "c1", "a2", "b2", "a3"]


def test_jobs_of_one_client_stay_first_in_first_out():
    queue = filled([(f"a{i}", "A") for i in range(5)])

    assert drain(queue) == [f"a{i}" for i in range(5)]


def test_one_client_with_ten_sessions_delays_another_client_by_at_most_one_job():
    queue = filled([(f"crowd-{i}", "10.0.0.9") for i in range(10)])
    first = queue.pop()  # the crowd's first job starts before anyone else asked
    queue.push("mine", "10.0.0.7")

    assert first == "crowd-0"
    assert queue.order().index("mine") <= 1
    assert queue.pop() == "mine"


def test_a_client_that_comes_back_waits_behind_those_served_before_it():
    queue = filled([("a1", "A"), ("b1", "B")])
    assert queue.pop() == "a1"
    queue.push("a2", "A")  # A was just served: B's waiting job goes first
    assert drain(queue) == ["b1", "a2"]


def test_order_is_the_serving_order_and_does_not_change_the_queue():
    queue = filled([("a1", "A"), ("a2", "A"), ("b1", "B"), ("c1", "C"), ("c2", "C")])
    queue.pop()
    queue.push("b2", "B")

    expected = queue.order()

    assert queue.order() == expected and len(queue) == 5
    assert drain(queue) == expected


def test_remove_takes_a_job_out_and_keeps_the_rest_in_order():
    queue = filled([("a1", "A"), ("b1", "B"), ("a2", "A"), ("b2", "B")])

    queue.remove("b1")

    assert "b1" not in queue and "b2" in queue and len(queue) == 3
    assert drain(queue) == ["a1", "b2", "a2"]
    with pytest.raises(KeyError):
        queue.remove("b1")


def test_removing_a_clients_last_job_leaves_no_empty_line():
    queue = filled([("a1", "A"), ("b1", "B")])
    queue.remove("a1")

    assert queue.order() == ["b1"] and queue.client_of("b1") == "B"


def test_push_of_a_queued_job_and_pop_of_an_empty_queue_are_refused():
    queue = filled([("a1", "A")])
    with pytest.raises(ValueError, match="already queued"):
        queue.push("a1", "B")
    queue.pop()
    with pytest.raises(IndexError):
        queue.pop()


def test_a_copy_shows_where_one_more_job_would_go_without_changing_the_queue():
    queue = filled([("a1", "A"), ("a2", "A")])
    queue.pop()

    twin = queue.copy()
    twin.push("b1", "B")

    assert twin.order() == ["b1", "a2"]
    assert queue.order() == ["a2"] and "b1" not in queue
