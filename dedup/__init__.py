"""dedup: find copies of the same news story. Public API: Document, cluster, Options, ClusterResult."""

from dedup.document import Document
from dedup.errors import DedupError, InputError, OptionError
from dedup.pipeline import Cluster, ClusterResult, Options, Pair, cluster

__all__ = [
    "Cluster",
    "ClusterResult",
    "DedupError",
    "Document",
    "InputError",
    "OptionError",
    "Options",
    "Pair",
    "cluster",
]
__version__ = "0.1.0"
