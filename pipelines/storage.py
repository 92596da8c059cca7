"""Dagster's SQLite event log, keeping one SQLAlchemy engine and one open connection per
database file for the process.

The stock storage builds an engine, opens a connection and closes it again for
every statement it runs; each asset event runs several, and a national batch
records thousands. Closing the last connection to a WAL database checkpoints
it, with its own disk flushes. Measured with 500 materialisations under a
profiler: 12.7 ms per event with a connection per statement, 6.9 ms with kept
connections. Commits are unchanged (each still syncs the WAL). An
idle connection holds no lock, so other processes (the UI, the daemon, other
runs) read and write the files as before.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool

KEPT_ENGINES = 16  # the index and the runs being written; the UI reads many runs, each once in a while

# A forked child must neither use nor close its parent's SQLite connections: they stay here, untouched.
_PARENTS_ENGINES: list[Engine] = []


class SqliteEventLogKeepingEngines(SqliteEventLogStorage):
    """Configured in deploy/dagster.sqlite.yaml; base_dir defaults to $DAGSTER_HOME/storage, as Dagster's own."""

    def __init__(self, base_dir: str, inst_data=None):
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._pid = os.getpid()
        super().__init__(base_dir, inst_data=inst_data)

    @classmethod
    def config_type(cls):
        return {"base_dir": dg.Field(dg.StringSource, is_required=False)}

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> SqliteEventLogKeepingEngines:
        base_dir = config_value.get("base_dir")
        if not base_dir:
            if not os.environ.get("DAGSTER_HOME"):
                raise dg.DagsterInvariantViolationError(
                    "SqliteEventLogKeepingEngines needs DAGSTER_HOME set (or base_dir in dagster.yaml)")
            base_dir = str(Path(os.environ["DAGSTER_HOME"]) / "storage")
        return cls(base_dir, inst_data=inst_data)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            if os.getpid() != self._pid:
                _PARENTS_ENGINES.extend(self._engines.values())
                self._engines, self._pid = OrderedDict(), os.getpid()
            # One kept connection; Dagster's first look at a new file opens a second, briefly.
            engine = self._engines.pop(shard, None) or create_engine(
                self.conn_string_for_shard(shard), poolclass=QueuePool, pool_size=1, max_overflow=2,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False})
            self._engines[shard] = engine  # most recently used last
            while len(self._engines) > KEPT_ENGINES:
                self._engines.popitem(last=False)[1].dispose()
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn
