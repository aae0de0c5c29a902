"""Independent Python reference implementation of the data contract.

Written from ``/work/shared/contract/events.md`` and ``marts.md`` only (no code
shared with the warehouse), so the end-to-end test can compare the dbt marts
value by value against a second reading of the same rules.
"""
