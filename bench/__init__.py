"""bench: what a workload loses in a container or a VM instead of on the bare host, measured.

    import bench
    df = bench.load("results/<run-id>")   # one row per sample, as a pandas DataFrame
"""

from .model import FORMAT_VERSION, Sample
from .store import load

__all__ = ["FORMAT_VERSION", "Sample", "load"]
