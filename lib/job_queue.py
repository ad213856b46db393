"""A fair queue of job ids: round-robin across clients, first in first out within one client.

A client is whoever a browser session belongs to (the browser's address, else the session itself). The
next job served is the oldest job of the client that was served least recently among the clients with
jobs waiting; a client never served comes first, and ties go to the oldest job. So one person with ten
browser tabs delays every other person by at most one job, and each person's own jobs keep their order.

`FairQueue` is plain data with no lock: `lib.runner.JobRunner` calls it with its own lock held.
"""

from __future__ import annotations

from collections import deque

NEVER_SERVED = -1  # the serving turn of a client that has not been served yet: it goes first
FIRST_ARRIVAL = -1  # the arrival number of a job put back: older than every other waiting job
REMEMBERED_CLIENTS = 10_000  # idle clients whose last turn is remembered; the least recent are forgotten


class FairQueue:
    """Job ids waiting to run, served round-robin across clients.

    Example:
        >>> queue = FairQueue()
        >>> for job_id, client in [("a1", "A"), ("a2", "A"), ("b1", "B")]:
        ...     queue.push(job_id, client)
        >>> queue.order()
        ['a1', 'b1', 'a2']
    """

    def __init__(self) -> None:
        self._waiting: dict[str, deque[tuple[int, str]]] = {}  # client -> (arrival, job id), oldest first
        self._client_of: dict[str, str] = {}  # job id -> client
        self._last_turn: dict[str, int] = {}  # client -> the turn it was last served at
        self._arrived = 0  # jobs pushed so far
        self._turn = 0  # serving turns so far

    def push(self, job_id: str, client: str) -> None:
        """Adds a job at the end of its client's line.

        Raises:
            ValueError: The job is already queued.
        """
        if job_id in self._client_of:
            raise ValueError(f"Job {job_id} is already queued.")
        self._client_of[job_id] = client
        self._waiting.setdefault(client, deque()).append((self._arrived, job_id))
        self._arrived += 1

    def put_back(self, job_id: str, client: str) -> None:
        """Returns a job that was taken out but could not start to the front of the queue: it is served next.

        Raises:
            ValueError: The job is already queued.
        """
        if job_id in self._client_of:
            raise ValueError(f"Job {job_id} is already queued.")
        self._client_of[job_id] = client
        self._waiting.setdefault(client, deque()).appendleft((FIRST_ARRIVAL, job_id))
        self._last_turn[client] = NEVER_SERVED

    def remove(self, job_id: str) -> None:
        """Takes a queued job out (a cancel).

        Raises:
            KeyError: The job is not queued.
        """
        client = self._client_of.pop(job_id)
        line = self._waiting[client]
        line.remove(next(entry for entry in line if entry[1] == job_id))
        if not line:
            del self._waiting[client]

    def pop(self) -> str:
        """Takes the next job to serve out of the queue and returns its id.

        Raises:
            IndexError: The queue is empty.
        """
        if not self._waiting:
            raise IndexError("pop from an empty FairQueue")
        job_id = _serve(self._waiting, self._last_turn, self._turn)
        del self._client_of[job_id]
        self._turn += 1
        self._forget_idle_clients()
        return job_id

    def take(self, job_id: str) -> None:
        """Takes a job out to serve it now, though it may not be next (`pop` serves the next): its client's turn.

        Raises:
            KeyError: The job is not queued.
        """
        client = self._client_of[job_id]
        self.remove(job_id)
        self._last_turn[client] = self._turn
        self._turn += 1
        self._forget_idle_clients()

    def order(self) -> list[str]:
        """Returns the queued job ids in the order they will be served (for positions and waiting times)."""
        waiting = {client: deque(line) for client, line in self._waiting.items()}
        last_turn = dict(self._last_turn)
        return [_serve(waiting, last_turn, turn) for turn in range(self._turn, self._turn + len(self))]

    def copy(self) -> FairQueue:
        """Returns an independent copy, e.g. to see where one more job would be served."""
        twin = FairQueue()
        twin._waiting = {client: deque(line) for client, line in self._waiting.items()}
        twin._client_of = dict(self._client_of)
        twin._last_turn = dict(self._last_turn)
        twin._arrived = self._arrived
        twin._turn = self._turn
        return twin

    def client_of(self, job_id: str) -> str:
        """Returns the client a queued job belongs to.

        Raises:
            KeyError: The job is not queued.
        """
        return self._client_of[job_id]

    def __len__(self) -> int:
        return len(self._client_of)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._client_of

    def _forget_idle_clients(self) -> None:
        """Bounds the memory of turns: idle clients served longest ago are forgotten first."""
        excess = len(self._last_turn) - REMEMBERED_CLIENTS
        if excess <= 0:
            return
        idle = sorted((turn, client) for client, turn in self._last_turn.items() if client not in self._waiting)
        for _, client in idle[:excess]:
            del self._last_turn[client]


def _serve(waiting: dict[str, deque[tuple[int, str]]], last_turn: dict[str, int], turn: int) -> str:
    """Takes the next job out of `waiting` and records the turn of its client; returns the job id.

    The next client is the one served least recently among those waiting; the oldest waiting job breaks a tie.
    """
    client = min(waiting, key=lambda name: (last_turn.get(name, NEVER_SERVED), waiting[name][0][0]))
    _, job_id = waiting[client].popleft()
    if not waiting[client]:
        del waiting[client]
    last_turn[client] = turn
    return job_id
