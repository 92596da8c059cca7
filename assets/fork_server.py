"""Imported first by the workers' fork server (see `workers.process_pool`), before the stages.

The cyclic garbage collector stays off while the server imports them: each collection
walks every object made so far, and importing intake and validation (Great Expectations
above all) took 2.2 s of CPU with it, 1.8 s without. A worker turns it back on when it
starts (`workers._start`); the server itself only forks.
"""
import gc

gc.disable()
