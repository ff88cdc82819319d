"""Who worked on each indexed item, kept beside the term index so expert finding needs no query.

Each slot of the index owns a run of entries, one per person: their best role on the item, when
they last worked on it and how often. Per person it also counts the items they appear on and
the items they did the work on (the ownership prior of expert ranking).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

ROLES = ("assignee", "resolver", "answerer", "creator", "editor", "kudos", "commenter", "reporter")
# How strongly a role ties a person to an item.
ROLE_WEIGHTS = {"assignee": 1.0, "resolver": 1.0, "answerer": 0.9, "creator": 0.6, "editor": 0.5,
                "kudos": 0.6, "commenter": 0.45, "reporter": 0.3}
# Roles that mean someone did the work, rather than talked about it or asked for it.
OWNING = frozenset({"assignee", "resolver", "answerer", "creator", "editor", "kudos"})


class _RoleIds(dict[str, int]):
    """Role -> role id; an unknown role counts as a report."""

    def __missing__(self, role: str) -> int:
        return self["reporter"]


_ROLE_ID = _RoleIds((role, n) for n, role in enumerate(ROLES))
_WEIGHT = np.array([ROLE_WEIGHTS[r] for r in ROLES], dtype=np.float32)
_OWNS = np.array([r in OWNING for r in ROLES], dtype=np.float32)
MAX_TIMES = 1000  # contributions per person and item counted (the ranking uses three)


def role_weight(role: str) -> float:
    """Association strength of a role (unknown roles count like a report)."""
    return ROLE_WEIGHTS.get(role, ROLE_WEIGHTS["reporter"])


def _grown(array: np.ndarray, size: int) -> np.ndarray:
    """A copy of the array with room for `size` entries (the tail uninitialised)."""
    out = np.empty(size, dtype=array.dtype)
    out[:len(array)] = array
    return out


class SlotPeople:
    """Per-slot contributor entries in flat arrays (appends buffered until read)."""

    def __init__(self) -> None:
        self.accounts: list[str] = []
        self.pid_of: dict[str, int] = {}
        self.start = np.zeros(16, dtype=np.int64)
        self.count = np.zeros(16, dtype=np.int32)
        self.pid = np.empty(0, dtype=np.int32)
        self.role = np.empty(0, dtype=np.int8)
        self.at = np.empty(0, dtype=np.float64)
        self.times = np.empty(0, dtype=np.int16)
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self.size = 0  # flat entries, pending included (the arrays may hold room for more)
        self.owned = np.zeros(16, dtype=np.float32)  # items a person did the work on
        self.touched = np.zeros(16, dtype=np.float32)  # items a person appears on at all
        self._share: float | None = None  # owning_share, until the counts change

    def _person(self, account: str) -> int:
        pid = self.pid_of.get(account)
        if pid is None:
            pid = self.pid_of[account] = len(self.accounts)
            self.accounts.append(account)
            if pid >= len(self.owned):
                old = len(self.owned)
                self.owned, self.touched = np.resize(self.owned, 2 * old), np.resize(self.touched, 2 * old)
                self.owned[old:] = self.touched[old:] = 0
        return pid

    def owning_share(self) -> float:
        """The tenant-wide share of appearances on an item that were doing the work on it."""
        if self._share is None:
            size = len(self.accounts)
            touched = float(self.touched[:size].sum())
            self._share = float(self.owned[:size].sum()) / touched if touched else 0.5
        return self._share

    def grow(self, capacity: int) -> None:
        """Make room for `capacity` slots."""
        if capacity > len(self.start):
            old = len(self.start)
            self.start, self.count = np.resize(self.start, capacity), np.resize(self.count, capacity)
            self.count[old:] = 0

    def put_many(self, slots: Sequence[int], accounts: Sequence[str], roles: Sequence[str], at: Sequence[float],
                 new_slots: Iterable[int]) -> None:
        """Record who worked on many new slots from flat contribution columns (epoch seconds).

        Every slot in `new_slots` gets its entries (none if it has no rows): per person, their
        best role (the first row of the highest weight), latest time and number of rows.
        """
        for account in dict.fromkeys(accounts):  # new people get ids in order of first appearance
            if account not in self.pid_of:
                self._person(account)
        # Lookups by map: the per-row work stays in C (rows are every contribution of a full load).
        pid = np.fromiter(map(self.pid_of.__getitem__, accounts), dtype=np.int64, count=len(accounts))
        rid = np.fromiter(map(_ROLE_ID.__getitem__, roles), dtype=np.int8, count=len(roles))
        slot = np.array(slots, dtype=np.int64)
        when = np.array(at, dtype=np.float64)
        key = slot * (len(self.accounts) + 1) + pid
        order = np.lexsort((-_WEIGHT[rid], key))  # stable: ties keep their row order
        key, first = key[order], np.ones(len(order), dtype=bool)
        first[1:] = key[1:] != key[:-1]
        starts = np.flatnonzero(first)
        g_slot, g_pid, g_rid = slot[order][starts], pid[order][starts].astype(np.int32), rid[order][starts]
        g_at = np.maximum.reduceat(when[order], starts) if len(starts) else when
        g_times = np.minimum(np.diff(np.append(starts, len(order))), MAX_TIMES).astype(np.int16)
        # Each slot lists its people in the order they first appear in the rows.
        seen = np.lexsort((np.minimum.reduceat(order, starts), g_slot)) if len(starts) else starts
        g_slot, g_pid, g_rid, g_at, g_times = (a[seen] for a in (g_slot, g_pid, g_rid, g_at, g_times))
        for s in new_slots:
            self.count[s] = 0
        # Groups are in slot order, so each slot's entries are one run.
        runs, run_len = np.unique(g_slot, return_counts=True)
        self.start[runs] = self.size + np.cumsum(run_len) - run_len
        self.count[runs] = run_len
        self._pending.append((g_pid, g_rid, g_at, g_times))
        np.add.at(self.owned, g_pid, _OWNS[g_rid])
        np.add.at(self.touched, g_pid, 1.0)
        self.size += len(starts)
        self._share = None

    def remove(self, slot: int) -> None:
        """Take a dead slot's entries out of the per-person counts."""
        pids, roles, _, _ = self.entries(slot)
        np.subtract.at(self.owned, pids, _OWNS[roles])
        np.subtract.at(self.touched, pids, 1.0)
        self.count[slot] = 0
        self._share = None

    def _flush(self) -> None:
        if not self._pending:
            return
        if len(self.pid) < self.size:
            # Room to spare: an item's update then appends a few entries instead of copying all.
            room = max(self.size, 2 * len(self.pid))
            self.pid, self.role, self.at, self.times = (
                _grown(a, room) for a in (self.pid, self.role, self.at, self.times))
        at = self.size - sum(len(entry[0]) for entry in self._pending)
        for pid, role, when, times in self._pending:
            end = at + len(pid)
            self.pid[at:end], self.role[at:end], self.at[at:end], self.times[at:end] = pid, role, when, times
            at = end
        self._pending = []

    def entries(self, slot: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(person ids, role ids, last times, contribution counts) of one slot."""
        self._flush()
        a, n = int(self.start[slot]), int(self.count[slot])
        return self.pid[a:a + n], self.role[a:a + n], self.at[a:a + n], self.times[a:a + n]

    def compact(self, keep: np.ndarray) -> None:
        """Keep only the given slots' entries (in order), the slots renumbered from 0."""
        kept = self.export(keep)
        self.count = kept["people_count"]
        self.start = np.cumsum(self.count, dtype=np.int64) - self.count
        self.pid, self.role = kept["people_pid"], kept["people_role"]
        self.at, self.times = kept["people_at"], kept["people_times"]
        self.size = len(self.pid)

    def export(self, keep: np.ndarray) -> dict[str, np.ndarray]:
        """The given slots' entries as arrays (slots renumbered from 0), for a snapshot."""
        self._flush()
        counts = self.count[keep].astype(np.int64)
        offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        flat = np.repeat(self.start[keep], counts) + offsets
        return {"people_count": counts.astype(np.int32), "people_pid": self.pid[flat],
                "people_role": self.role[flat], "people_at": self.at[flat], "people_times": self.times[flat]}

    @classmethod
    def restore(cls, accounts: list[str], arrays: dict[str, np.ndarray]) -> SlotPeople:
        """Rebuild from `export` output and the account list it refers to."""
        people = cls()
        people.accounts = list(accounts)
        people.pid_of = {account: pid for pid, account in enumerate(accounts)}
        people.count = arrays["people_count"].astype(np.int32)
        people.start = np.cumsum(people.count, dtype=np.int64) - people.count
        people.pid, people.role = arrays["people_pid"], arrays["people_role"]
        people.at, people.times = arrays["people_at"], arrays["people_times"]
        people.size = len(people.pid)
        size = max(len(accounts), 16)
        people.touched = np.bincount(people.pid, minlength=size).astype(np.float32)
        people.owned = np.bincount(people.pid, weights=_OWNS[people.role], minlength=size).astype(np.float32)
        return people
