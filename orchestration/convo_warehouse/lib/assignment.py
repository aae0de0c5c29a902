"""The applications' A/B assignment rule, as the event contract writes it.

The rule has one Python implementation, in the capture SDK
(``convo_capture.assignment``, a dependency of the warehouse) because
applications assign variants with it; the generator and the experiment
statistics use it from here. The SQL side is the ``hash_bucket`` macro
(``ab_test_exposures.expected_variant``); ``tests/experiments/test_assignment.py`` proves
the two agree.
"""

from convo_capture.assignment import assign_variant, assignment_bucket

__all__ = ["assign_variant", "assignment_bucket"]
