"""The inbox sensor: watches the inbox through its tick, archives ready files, launches one batch run."""

import importlib
import json
import time

import dagster as dg

from assets import archive, intake
from assets.indicators import load_indicators
from pipelines.resources import FazhiSettings

ACTIVE = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED,
          dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]
MAX_FILES_PER_TICK = 1000  # keeps a tick well inside the sensor time-out; the rest go next tick
QUICK_FILES = 8            # this few files get their receipts in the tick itself
# Dagster's sensor daemon starts a tick at most every 5 s, whatever minimum_interval_seconds says
# (MIN_INTERVAL_LOOP_TIME in dagster/_daemon/sensor.py), so a tick keeps looking at the inbox for
# most of that time: a clerk's file is then taken some 1-2 s after it lands, not up to 6 s.
WATCH_SECONDS = 4.0
LOOK_EVERY = 0.5


def build_inbox_sensor(job, interval: int = 1) -> dg.SensorDefinition:
    @dg.sensor(
        name="inbox_sensor",
        job=job,
        minimum_interval_seconds=interval,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Dagster 约每 5 秒运行一次本传感器，每次持续查看 inbox/ 约 {WATCH_SECONDS:g} 秒（每 {LOOK_EVERY:g} 秒一次）："
                    "文件大小和修改时间两次查看（间隔约1秒）都不变，或有同名 .done 标记，即归档并移出收件箱。"
                    "少量文件当即校验并出回执；随后启动一次批量运行，在 Dagster 中记录分区与校验结果并更新评分和导出。",
    )
    def inbox_sensor(context: dg.SensorEvaluationContext, fazhi: FazhiSettings):
        # What checking a file needs (Great Expectations above all, some 3 s) is loaded by the code
        # server's first tick, not when the first file arrives.
        importlib.import_module("assets.validation")
        paths = fazhi.paths
        state = json.loads(context.cursor) if context.cursor else {}
        taken, failures, new = 0, set(), set()
        end, waiting = time.monotonic() + WATCH_SECONDS, None
        while True:
            # A file is taken once two looks STABLE_GAP apart agree, both within this call: the looks of
            # a tick are only LOOK_EVERY apart, and the last tick's last look may be as recent.
            got, seen, failed = archive.take_stable_files(paths, {}, limit=MAX_FILES_PER_TICK - taken)
            taken += len(got)
            failures.update(failed)
            # Listing the records takes some 20 ms of CPU with 3,000 of them: only at the first look, and
            # when this look took files or the last one left some waiting.
            if waiting is None or waiting or got:
                waiting = intake.pending(paths)
            new.update(r.record_id for r in waiting)  # outcomes Dagster has not yet been told of
            if 0 < len(waiting) <= QUICK_FILES:
                # The clerk's receipt waits neither for a run to start nor for an active one to end
                # (unless that run is checking files itself: the intake lock is busy, and these wait
                # for a later look); a run then records these outcomes in Dagster and updates the exports.
                for _ in intake.process_pending(paths, fazhi.registry(), load_indicators(), block=False):
                    pass
            # More files than a tick checks are the run's to check, at once.
            if len(waiting) > QUICK_FILES or taken >= MAX_FILES_PER_TICK or time.monotonic() >= end:
                break
            time.sleep(LOOK_EVERY)
        for f in sorted(failures):
            context.log.warning(f"暂未能归档，下次再试：{f}")
        if not (new or state.get("owed")):
            context.update_cursor(json.dumps({}))
            return dg.SkipReason(f"收件箱中没有就绪的新文件（等待稳定：{len(seen)} 个）")
        # One batch run at a time: a run takes every pending file and reports what the sensor
        # checked before it, so a new one is only needed once the active one has finished.
        if context.instance.get_run_records(dg.RunsFilter(job_name=job.name, statuses=ACTIVE), limit=1):
            context.update_cursor(json.dumps({"owed": True}))
            return dg.SkipReason(f"{len(new)} 个新文件，等待当前运行结束后再启动运行记录")
        context.update_cursor(json.dumps({}))
        return dg.RunRequest(tags={"fazhi/files": str(len(new))})

    return inbox_sensor
