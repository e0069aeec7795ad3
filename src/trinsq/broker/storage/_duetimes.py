"""The due times of deferred messages kept in a disk queue, by message id, kept compact.

A deferred publish that goes to disk (a topic without channels, crash-safe mode, shutdown)
gives every message of a step the same due time, and nsqd-style ids that increase: such a
batch is kept as one sorted array of the ids' numbers (8 bytes a message) and a byte a message
marking the ones gone, instead of a dict entry, a bytes key and an int per message (~150
bytes). Anything else (REQ with a delay, ids not in nsqd's form) is kept in a plain dict.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Mapping, Sequence
from typing import Final

__all__ = ["DueTimes"]

# Fewer ids than this are kept one by one.
_BATCH_MIN: Final = 16


def _id_number(message_id: bytes) -> int | None:
    """The number an nsqd id (16 lowercase hex digits) writes; None for any other id."""
    if len(message_id) != 16:
        return None
    try:
        number = int(message_id, 16)
    except ValueError:
        return None
    return number if b"%016x" % number == message_id else None


class _Batch:
    """Ids (as numbers, increasing) that share one due time; ``gone`` marks those taken."""

    __slots__ = ("due", "gone", "ids", "remaining")

    def __init__(self, ids: array[int], due: int) -> None:
        self.ids = ids
        self.due = due
        self.gone = bytearray(len(ids))
        self.remaining = len(ids)

    def index(self, number: int) -> int:
        """Where ``number`` is among the live ids, or -1."""
        ids = self.ids
        at = bisect_left(ids, number)
        if at < len(ids) and ids[at] == number and not self.gone[at]:
            return at
        return -1

    def copy(self) -> _Batch:
        batch = _Batch(self.ids, self.due)  # the ids never change once made
        batch.gone[:] = self.gone
        batch.remaining = self.remaining
        return batch

    def items(self) -> Iterator[tuple[bytes, int]]:
        due, gone = self.due, self.gone
        for at, number in enumerate(self.ids):
            if not gone[at]:
                yield b"%016x" % number, due


class DueTimes:
    """Unix ns due times by message id: the dict operations a disk backend uses.

    Args:
        entries: what to start with (e.g. read back from the side file).
    """

    def __init__(self, entries: Mapping[bytes, int] | None = None) -> None:
        self._singles: dict[bytes, int] = {}
        self._batches: list[_Batch] = []  # by first id; their ranges never overlap
        self._firsts: list[int] = []
        if entries:
            by_due: dict[int, list[bytes]] = {}
            for message_id, due in entries.items():
                by_due.setdefault(due, []).append(message_id)
            for due, ids in by_due.items():
                self.add_many(sorted(ids), due)

    def __len__(self) -> int:
        return len(self._singles) + sum(batch.remaining for batch in self._batches)

    def __bool__(self) -> bool:
        return bool(self._singles or self._batches)

    def _find(self, message_id: bytes) -> tuple[int, int]:
        """(batch, index) of a live id kept in a batch, or (-1, -1)."""
        if not self._batches:
            return -1, -1
        number = _id_number(message_id)
        if number is None:
            return -1, -1
        which = bisect_right(self._firsts, number) - 1
        if which < 0:
            return -1, -1
        return which, self._batches[which].index(number)

    def get(self, message_id: bytes) -> int | None:
        due = self._singles.get(message_id)
        if due is not None:
            return due
        which, at = self._find(message_id)
        return self._batches[which].due if at >= 0 else None

    def pop(self, message_id: bytes, default: None = None) -> int | None:
        due = self._singles.pop(message_id, None)
        if due is not None:
            return due
        which, at = self._find(message_id)
        if at < 0:
            return None
        batch = self._batches[which]
        batch.gone[at] = 1
        batch.remaining -= 1
        if not batch.remaining:
            del self._batches[which]
            del self._firsts[which]
        return batch.due

    def __setitem__(self, message_id: bytes, due: int) -> None:
        self.pop(message_id)
        self._singles[message_id] = due

    def add_many(self, message_ids: Sequence[bytes], due: int) -> None:
        """Set the due time of each of ``message_ids``: kept as one batch when they are nsqd
        ids in increasing order and no other batch's range overlaps theirs."""
        numbers = array("Q")
        for message_id in message_ids:
            number = _id_number(message_id)
            if number is None or (numbers and number <= numbers[-1]):
                break
            numbers.append(number)
        else:
            if len(numbers) >= _BATCH_MIN and self._insert(numbers, due):
                if self._singles:
                    for message_id in message_ids:
                        self._singles.pop(message_id, None)
                return
        for message_id in message_ids:
            self[message_id] = due

    def _insert(self, numbers: array[int], due: int) -> bool:
        first, last = numbers[0], numbers[-1]
        at = bisect_right(self._firsts, first)
        if at > 0 and self._batches[at - 1].ids[-1] >= first:
            return False
        if at < len(self._firsts) and self._firsts[at] <= last:
            return False
        self._batches.insert(at, _Batch(numbers, due))
        self._firsts.insert(at, first)
        return True

    def clear(self) -> None:
        self._singles.clear()
        self._batches.clear()
        self._firsts.clear()

    def items(self) -> Iterator[tuple[bytes, int]]:
        yield from self._singles.items()
        for batch in self._batches:
            yield from batch.items()

    def snapshot(self) -> DueTimes:
        """A copy to write out while this one goes on changing (cheap: ids are shared)."""
        copy = DueTimes()
        copy._singles = dict(self._singles)
        copy._batches = [batch.copy() for batch in self._batches]
        copy._firsts = list(self._firsts)
        return copy
