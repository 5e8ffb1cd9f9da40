"""Shared setup of the benchmarks: thread pinning and the workloads of the core issue."""

import os

import numpy as np
import pytest


def pytest_configure(config):
    # Two threads (this machine has two cores); the benchmark compares, it does not assert.
    try:
        from threadpoolctl import threadpool_limits
        config._fastlstm_limits = threadpool_limits(int(os.environ.get("FASTLSTM_THREADS", "2")))
    except ImportError:
        pass


@pytest.fixture(scope="session")
def seed_demo_data():
    """Notebook 001's demo workload: 200 samples, sequences of 10, the first 152 for training."""
    from fastlstm import reference

    np.random.seed(42)
    data = reference.generate_pattern_data(200, 12)
    X, y = reference.prepare_sequences(data, 10)
    return X[:152], y[:152]
