"""A partition's local store: bytes to bytes, written only in whole batches
together with the offsets the batch brings it to.

Two backends behind one interface: :class:`RocksStore` (RocksDB, the default;
survives a restart, so a worker replays only what it missed) and
:class:`MemoryStore` (``SAVIN_STORE=memory``; rebuilt from the changelogs on
every start). A value of ``None`` in a write deletes the key.
"""

from __future__ import annotations

import abc
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path

__all__ = ["Store", "MemoryStore", "RocksStore", "open_store"]

_OFFSET = b"\x00offset:"  # + topic name -> next offset the store has applied


class Store(abc.ABC):
    @abc.abstractmethod
    def get(self, key: bytes) -> bytes | None: ...

    @abc.abstractmethod
    def get_many(self, keys: list[bytes]) -> list[bytes | None]: ...

    @abc.abstractmethod
    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Every key starting with ``prefix``, with its value."""

    @abc.abstractmethod
    def _apply(self, puts: Mapping[bytes, bytes | None]) -> None:
        """Write ``puts`` (``None`` deletes) atomically."""

    def close(self) -> None:
        """Release the store's files."""

    def offset(self, topic: str) -> int | None:
        raw = self.get(_OFFSET + topic.encode())
        return int(raw) if raw is not None else None

    def write(self, items: Mapping[bytes, bytes | None], offsets: Mapping[str, int] | None = None) -> None:
        """Write ``items`` and the topics' next offsets atomically."""
        puts = dict(items)
        for topic, offset in (offsets or {}).items():
            puts[_OFFSET + topic.encode()] = str(offset).encode()
        if puts:
            self._apply(puts)


class MemoryStore(Store):
    def __init__(self) -> None:
        self._data: dict[bytes, bytes] = {}

    def get(self, key: bytes) -> bytes | None:
        return self._data.get(key)

    def get_many(self, keys: list[bytes]) -> list[bytes | None]:
        return [self._data.get(k) for k in keys]

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        # In key order, as RocksDB gives them (the deliver stage's timers rely on it).
        return iter(sorted((k, v) for k, v in self._data.items() if k.startswith(prefix)))

    def _apply(self, puts: Mapping[bytes, bytes | None]) -> None:
        for key, value in puts.items():
            if value is None:
                self._data.pop(key, None)
            else:
                self._data[key] = value


class RocksStore(Store):
    """RocksDB with bounded memory: ``cache_mb`` of block cache and two write
    buffers of ``write_buffer_mb`` (RocksDB's defaults took a worker holding a
    million registrations past 600 MB)."""

    def __init__(self, path: Path, cache_mb: int = 16, write_buffer_mb: int = 4):
        from rocksdict import BlockBasedOptions, Cache, Options, Rdict

        mb = 1024 * 1024
        opts = Options(raw_mode=True)
        opts.create_if_missing(True)
        opts.set_write_buffer_size(write_buffer_mb * mb)
        opts.set_max_write_buffer_number(2)
        table = BlockBasedOptions()
        table.set_block_cache(Cache(cache_mb * mb))
        opts.set_block_based_table_factory(table)
        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = Rdict(str(path), opts)

    def get(self, key: bytes) -> bytes | None:
        return self._db.get(key)

    def get_many(self, keys: list[bytes]) -> list[bytes | None]:
        return self._db.get(keys) if keys else []  # one multi-get

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        for key, value in self._db.items(from_key=prefix):
            if not key.startswith(prefix):
                return
            yield key, value

    def _apply(self, puts: Mapping[bytes, bytes | None]) -> None:
        from rocksdict import WriteBatch

        batch = WriteBatch(raw_mode=True)
        for key, value in puts.items():
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        self._db.write(batch)

    def close(self) -> None:
        self._db.close()


def open_store(path: Path | None, cache_mb: int, write_buffer_mb: int, on_damage=None) -> Store:
    """The store at ``path`` (a :class:`MemoryStore` when None). A RocksDB that
    will not open is removed and started afresh: the changelogs rebuild it."""
    if path is None:
        return MemoryStore()
    try:
        return RocksStore(path, cache_mb, write_buffer_mb)
    except Exception as e:  # noqa: BLE001 - a damaged store is rebuilt from the topics
        if on_damage is not None:
            on_damage(e)
        shutil.rmtree(path, ignore_errors=True)
        return RocksStore(path, cache_mb, write_buffer_mb)
