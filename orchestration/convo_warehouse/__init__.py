"""convo-warehouse: conversation analytics on dbt + DuckDB + Dagster."""
