import logging

import pytest
from mmengine.logging import MMLogger

from ada3d.datasets.kitti_converter import prepare_kitti
from tests.ada3d.datasets.kitti_copy import copy_demo_kitti

TRAIN, VAL = ["000076", "000001"], ["000008"]


@pytest.fixture(scope="session")
def prepared_kitti(tmp_path_factory):
    """The demo frames prepared once: infos, velodyne_reduced and GT database (train 000076, 000001; val 000008)."""
    root = copy_demo_kitti(tmp_path_factory.mktemp("kitti"), TRAIN, VAL)
    prepare_kitti(root)
    return root


@pytest.fixture
def logged():
    """Messages logged through mmengine's current logger during the test."""
    messages: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    yield messages
    logger.removeHandler(handler)
