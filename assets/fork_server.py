"""Imported first by the workers' fork server (see `workers.process_pool`), before the stages.

The cyclic garbage collector stays off while the server imports them: each collection
walks every object made so far, and importing intake and validation (Great Expectations
above all) took 2.2 s of CPU with it, 1.8 s without. A worker turns it back on when it
starts (`workers._start`); the server itself only forks.

SQLAlchemy is marked absent. Great Expectations imports it, when installed (Dagster
needs it), for its SQL datasources and metrics; the workers check pandas frames only,
and without it Great Expectations leaves its SQL side out. The server's imports took
0.3-0.8 s less (five runs each, alternating), and the workers start when they are done.
"""
import gc
import sys

gc.disable()
sys.modules.setdefault("sqlalchemy", None)  # `import sqlalchemy` raises ImportError here
