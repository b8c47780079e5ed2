"""``python -m dfs_sim.mixed``: per-layer mixed precision searched on a preset's cost; the work is done by
:mod:`dfs_sim.model.mixed`."""

import sys

from dfs_sim.model.mixed import main

if __name__ == "__main__":
    sys.exit(main())
