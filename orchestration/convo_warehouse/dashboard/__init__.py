"""The dashboard: Streamlit pages over the published snapshot (never the warehouse).

``app.py`` is the Streamlit script; ``views/`` holds one module per page, each
with data functions (plain DuckDB queries, unit-tested) apart from its
``render`` function; ``format.py`` writes numbers as people read them.
"""

# The sign-in password(s), comma-separated; required to listen beyond loopback.
PASSWORD_ENV = "CONVO_DASHBOARD_PASSWORD"
