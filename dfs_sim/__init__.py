"""dfs-sim: per-input costs of dynamic fractional skipping on precision-scalable accelerators.

This package stays light: importing it never imports torch. The model side lives in its own modules.
"""

__version__ = "0.1.0"
