"""Which queues a sync visits: the ones that changed since their last sync, not every queue."""

from __future__ import annotations

from pathlib import Path

import trio

from trinsq.broker.config._options import BrokerOptions
from trinsq.broker.core._message import Message
from trinsq.broker.storage._diskqueue import DiskQueue
from trinsq.broker.storage._storage import Storage


def message(index: int) -> Message:
    return Message(b"%016d" % index, b"body %d" % index, 1_700_000_000_000_000_000)


def storage(tmp_path: Path, **options: float) -> Storage:
    return Storage(BrokerOptions(node_id=1, data_path=str(tmp_path), **options))  # type: ignore[arg-type]


def synced(queue: DiskQueue) -> bool:
    return not queue.dirty()


async def test_a_sync_writes_only_what_changed_and_forgets_it(tmp_path: Path) -> None:
    store = storage(tmp_path)
    backends = [store.backend(f"t{i}:c") for i in range(50)]
    await store.sync()  # the new queues had nothing to sync
    assert store.changed_count == 0
    backends[7].put(message(1))
    assert store.commit(keep_failed=False)
    assert store.changed_count == 1
    await store.sync()
    assert synced(store.queues["t7:c"])
    assert (tmp_path / "t7:c.diskqueue.meta.dat").exists()
    assert not (tmp_path / "t8:c.diskqueue.meta.dat").exists()
    assert store.changed_count == 0


async def test_a_pop_by_a_consumer_is_synced_on_the_next_sync(tmp_path: Path) -> None:
    store = storage(tmp_path)
    backend = store.backend("t:c")
    backend.put_many([message(1), message(2)])
    store.commit(keep_failed=False)
    await store.sync()
    popped = backend.pop()
    assert popped is not None
    assert popped.id == message(1).id  # the read position moved: to be synced
    assert not synced(store.queues["t:c"])
    await store.sync()
    assert synced(store.queues["t:c"])


async def test_the_tick_leaves_a_queue_below_sync_every_noted_until_it_syncs(
    tmp_path: Path,
) -> None:
    store = storage(tmp_path, sync_every=3)
    small, large = store.backend("small:c"), store.backend("large:c")
    small.put(message(1))
    large.put_many([message(i) for i in range(3)])
    store.commit(keep_failed=False)
    # Asked for by the commit (not the tick): only the queue at --sync-every is synced.
    await store.sync([q for q in store.queues.values() if q.needs_sync()])
    assert synced(store.queues["large:c"])
    assert not synced(store.queues["small:c"])
    await store.sync()
    assert synced(store.queues["small:c"])


async def test_a_deleted_queue_is_not_synced(tmp_path: Path) -> None:
    store = storage(tmp_path)
    backend = store.backend("gone:c")
    backend.put(message(1))
    store.commit(keep_failed=False)
    store.delete("gone:c")
    await store.sync()  # would raise on the closed queue if it were visited
    assert store.changed_count == 0
    assert not (tmp_path / "gone:c.diskqueue.meta.dat").exists()


async def test_deferred_due_times_are_saved_for_the_backends_that_changed(
    tmp_path: Path,
) -> None:
    store = storage(tmp_path, sync_every=1)  # crash-safe: due times go with every sync
    backend = store.backend("t:c")
    backend.defer_until(b"%016d" % 1, 2_000_000_000_000_000_000)
    await store.sync()
    assert (tmp_path / "t:c.diskqueue.deferred.json").exists()
    assert not backend.due_changed


async def test_the_storage_task_syncs_a_changed_queue_on_its_tick(tmp_path: Path) -> None:
    store = storage(tmp_path, sync_timeout=1)
    backend = store.backend("t:c")
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run, lambda name: None)
        backend.put(message(1))
        store.commit(keep_failed=False)
        with trio.fail_after(5):
            while not synced(store.queues["t:c"]):
                await trio.sleep(0.05)
        nursery.cancel_scope.cancel()
