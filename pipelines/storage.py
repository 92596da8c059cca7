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

A chunk of submissions is recorded as one batch of materialisations
(`log_materializations`): one transaction per database file instead of two per
event, 0.6 against 3.2-4.4 ms of CPU per event. PostgreSQL's storage batches
them in its own way.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from alembic.script import ScriptDirectory
from dagster._core.events import ASSET_EVENTS, DagsterEvent, DagsterEventBatchMetadata, generate_event_batch_id
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool

KEPT_ENGINES = 16  # the index and the runs being written; the UI reads many runs, each once in a while

# A forked child must neither use nor close its parent's SQLite connections: they stay here, untouched.
_PARENTS_ENGINES: list[Engine] = []

# Dagster stores events sent with batch metadata together only when this is set, writing up to
# this many at a time (more than an intake chunk's, unless FAZHI_BATCH_SIZE is raised past it).
os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", "1000")

# Opening or creating an instance, Dagster asks alembic for its migration scripts seven times,
# and alembic loads all of them (some 90 files) each time: creating one took 0.48-0.76 s of CPU
# (median 0.69), 0.40-0.50 s (median 0.44) with the scripts loaded once per process, six runs
# each. Nothing changes them while a process runs.
_BUILD_SCRIPT_DIRECTORY = ScriptDirectory.from_config.__func__
_script_directories: dict[tuple, ScriptDirectory] = {}


def _script_directory_once(cls, config) -> ScriptDirectory:
    # the run, event log and schedule storages each have their own alembic.ini (its folder is
    # `here`, already expanded in the other options), all naming the same scripts
    options = config.get_section(config.config_ini_section, {})
    key = (cls, tuple(sorted((k, v) for k, v in options.items() if k != "here")))
    if key not in _script_directories:
        _script_directories[key] = _BUILD_SCRIPT_DIRECTORY(cls, config)
    return _script_directories[key]


ScriptDirectory.from_config = classmethod(_script_directory_once)


def log_materializations(context: dg.AssetExecutionContext, materializations: list[dg.AssetMaterialization]) -> None:
    """Record materialisations as one batch, as `context.log_event` would one at a time."""
    step, batch = context.get_step_execution_context(), generate_event_batch_id()
    for i, m in enumerate(materializations):
        DagsterEvent.asset_materialization(step, m, DagsterEventBatchMetadata(batch, i == len(materializations) - 1))


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

    def store_event_batch(self, events) -> None:
        """A run's asset events in one transaction per database file. The asset's row of latest
        events is written once per asset and kind of event: each write would replace the one
        before. Anything else is stored one event at a time, as Dagster does."""
        run_id = events[0].run_id if events else None
        if not events or not all(e.is_dagster_event and e.dagster_event_type in ASSET_EVENTS
                                 and e.dagster_event.asset_key and e.run_id == run_id for e in events):
            super().store_event_batch(events)
            return
        rows = [self._event_to_row(e) for e in events]
        with self.run_connection(run_id) as conn:
            conn.execute(SqlEventLogStorageTable.insert(), rows)
        with self.index_transaction() as conn:
            # Multi-row INSERTs returning the new ids in the rows' order (SQLite 3.35 and later):
            # recording 300 materialisations took 0.24-0.31 s of CPU with a statement per row, 0.14-0.19 s so.
            ids = conn.execute(SqlEventLogStorageTable.insert().returning(
                SqlEventLogStorageTable.c.id, sort_by_parameter_order=True), rows).scalars().all()
            self._store_asset_event_tags(conn, events, ids)
            latest = {(e.dagster_event.asset_key, e.dagster_event_type): (e, i) for e, i in zip(events, ids)}
            for e, i in latest.values():
                self._store_asset_event(conn, e, i)
