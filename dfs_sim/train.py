"""``python -m dfs_sim.train``: the training command; the work is done by :mod:`dfs_sim.model.training`."""

import sys

from dfs_sim.model.training import main

if __name__ == "__main__":
    sys.exit(main())
