"""What units learned: features of the input, correlations and probes, and the units a model card names.

code.py       features of Python source (in string, in comment, bracket depth, indent, line position)
correlate.py  Pearson r of every unit with a feature; the unit that tracks it best
store.py      the corpus index's layout and its reader, Index
index.py      build: a corpus through batched traces into a Zarr index, on Dask
corpus.py     reading corpora: files, folders, globs, JSON Lines, series
unitstats.py  exact per-unit statistics of float16 activations, mergeable across parts
units.py      the counter, memory, store, level and season units the bundled models' cards name
"""

from .code import code_features
from .correlate import DIGITS, best_units, correlate
from .store import Index, Stats
from .units import depth_unit, gate_unit, level_and_season, memory_unit, store_unit

__all__ = [
    "DIGITS",
    "Index",
    "Stats",
    "best_units",
    "code_features",
    "correlate",
    "depth_unit",
    "gate_unit",
    "level_and_season",
    "memory_unit",
    "store_unit",
]
