"""``python -m dfs_sim.export``: the trace-export command; the work is done by :mod:`dfs_sim.model.export`."""

import sys

from dfs_sim.model.export import main

if __name__ == "__main__":
    sys.exit(main())
