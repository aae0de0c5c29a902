"""Dagster assets: ingest (Python), dbt models, classification (Python)."""
