"""The Dagster code location of the pipeline."""
from __future__ import annotations

import dagster as dg

from pipelines import assets
from pipelines.resources import FazhiSettings
from pipelines.sensors import build_inbox_sensor

PIPELINE_JOB = "fazhi_pipeline"


def make_definitions(settings: FazhiSettings | None = None, sensor_interval: int = 1) -> dg.Definitions:
    job = dg.define_asset_job(
        PIPELINE_JOB,
        selection=dg.AssetSelection.assets(assets.intake_batch, assets.reporting_status_table, assets.year_results,
                                           assets.exports),
        description="收件 → 校验与回执 → 年度结果 → 评分工作簿与回头看检查包",
        # One process for the whole run by default: a subprocess per step pays
        # the imports again for every stage. Run config may choose
        # {"execution": {"config": {"multiprocess": {...}}}} on a bigger machine.
        executor_def=dg.multi_or_in_process_executor,
        config={"execution": {"config": {"in_process": {}}}},
    )
    return dg.Definitions(
        assets=[assets.submission, assets.intake_batch, assets.reporting_status_table, assets.year_results,
                assets.exports],
        asset_checks=[assets.great_expectations],
        jobs=[job],
        sensors=[build_inbox_sensor(job, sensor_interval)],
        resources={"fazhi": settings or FazhiSettings()},
    )


defs = make_definitions()
