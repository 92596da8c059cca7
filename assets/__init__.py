"""Pipeline stages as plain functions; Dagster wrappers live in `pipelines/`."""
