"""What the PyTorch baselines share: the timing statistic, as the C++ benchmarks compute it."""
import statistics
import time


def time_runs(function, runs):
    """Calls `function` once to warm up, then `runs` times; returns (median seconds, every run's seconds)."""
    function()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times
