"""The inbox sensor: cheap per tick, archives ready files, launches one batch run."""

import json

import dagster as dg

from assets import intake
from pipelines.resources import FazhiSettings

ACTIVE = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED,
          dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]
MAX_FILES_PER_TICK = 1000  # keeps a tick well inside the sensor time-out; the rest go next tick


def build_inbox_sensor(job, interval: int = 2) -> dg.SensorDefinition:
    @dg.sensor(
        name="inbox_sensor",
        job=job,
        minimum_interval_seconds=interval,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="每隔几秒查看 inbox/：文件大小和修改时间连续两次不变（或有 .done 标记）即归档并移出收件箱，"
                    "然后为所有待处理文件启动一次批量运行。",
    )
    def inbox_sensor(context: dg.SensorEvaluationContext, fazhi: FazhiSettings):
        paths = fazhi.paths
        previous = json.loads(context.cursor) if context.cursor else {}
        taken, seen, failed = intake.take_ready_files(paths, previous, limit=MAX_FILES_PER_TICK)
        context.update_cursor(json.dumps(seen))
        for f in failed:
            context.log.warning(f"暂未能归档，下次再试：{f}")
        waiting = intake.pending(paths)
        if not waiting:
            return dg.SkipReason(f"收件箱中没有就绪的新文件（等待稳定：{len(seen)} 个）")
        # One batch run at a time: a run takes every pending file, so a new one
        # is only needed once the active one has finished.
        active = context.instance.get_run_records(
            dg.RunsFilter(job_name=job.name, statuses=ACTIVE), limit=1)
        if active:
            return dg.SkipReason(f"{len(waiting)} 个文件待处理，等待当前运行结束")
        tags = {"fazhi/files": str(len(waiting))}
        return dg.RunRequest(tags=tags)

    return inbox_sensor
