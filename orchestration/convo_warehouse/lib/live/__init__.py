"""The collector's live state: conversations in progress, their stages, interventions (docs/capture.md)."""
