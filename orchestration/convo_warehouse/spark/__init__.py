"""Spark, the scale-out engine: the same dbt project and landing folder on Spark.

Used from the Spark virtualenv (``make spark-venv``), which has PySpark and
dbt-spark but not Dagster. Nothing here is imported by the DuckDB path.
"""
