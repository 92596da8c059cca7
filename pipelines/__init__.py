"""The Dagster code location: definitions, sensor, resources and the `fazhi` CLI."""
