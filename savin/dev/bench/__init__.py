"""The benchmark: savin's stages on a real broker, with the worker as its own
process, side by side with a raw aiokafka passthrough on the same broker."""

from savin.dev.bench.runner import QUICK, STAGES, STANDARD, Sizes, run_bench

__all__ = ["Sizes", "STANDARD", "QUICK", "STAGES", "run_bench"]
