"""Data-quality checks: Great Expectations suites as code and asset checks."""
