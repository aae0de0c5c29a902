"""The read API: JSON over the published snapshot (``convo-warehouse api``; docs/serving.md)."""
