"""Frames shared by the synthetic-data tests (simulated once per session; a frame takes about 0.1 s)."""

import pytest

from ada3d.datasets.synthetic import simulate_frame

SEED = 7
NUM_FRAMES = 8


@pytest.fixture(scope="session")
def frames():
    return [simulate_frame(SEED, index, render=False) for index in range(NUM_FRAMES)]
