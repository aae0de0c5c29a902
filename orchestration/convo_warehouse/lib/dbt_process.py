"""``convo-dbt``: dbt's own command line, as every dbt process the pipeline starts runs it.

The same arguments, output and exit codes as ``dbt`` (it is dbt's click command,
run with one event callback). What differs is Python's cyclic garbage collector.
Once dbt has loaded the manifest and the adapter, their objects (every node,
macro and config of the project) live until the process ends, yet each full
collection walks them all again, and the interpreter's last collection at exit
walks them once more, while nothing is left to free. They are moved out of the
collector's sight (``gc.freeze``) when the first node starts, and everything is
at the end; what the nodes allocate in between is collected as usual.
"""

from __future__ import annotations

import gc
import sys

NODE_START = "NodeStart"


class _FreezeAtFirstNode:
    """An event callback: ``gc.freeze()`` once, at the first node's start."""

    def __init__(self) -> None:
        self.frozen = False

    def __call__(self, event) -> None:
        if not self.frozen and event.info.name == NODE_START:
            self.frozen = True
            gc.freeze()


def main() -> None:
    from dbt.cli.main import cli

    try:
        # click's standalone main, as the `dbt` script runs it (it ends the
        # process with dbt's exit code); `obj` is where dbt's own programmatic
        # runner passes its callbacks
        cli.main(args=sys.argv[1:], prog_name="dbt", obj={"callbacks": [_FreezeAtFirstNode()]})
    finally:
        gc.freeze()


if __name__ == "__main__":
    main()
