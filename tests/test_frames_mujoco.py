"""The MuJoCo frames against the models themselves, loaded with ``mujoco``: joint ranges, the
so101_old_calib offsets (by forward kinematics), and the gripper's mapping."""

from __future__ import annotations

import math

import mujoco
import numpy as np
import pytest

from so101d.calibration.model import GRIPPER, JOINTS
from so101d.frames import (
    MUJOCO_OLD_RANGES,
    MUJOCO_RANGES,
    Frame,
    convert,
    convert_joint,
    limits,
)
from tests.mujoco_models import NEW_CALIB, OLD_CALIB, model_path

NEW = mujoco.MjModel.from_xml_path(str(model_path(NEW_CALIB)))
OLD = mujoco.MjModel.from_xml_path(str(model_path(OLD_CALIB)))


@pytest.mark.parametrize(("model", "table"), [(NEW, MUJOCO_RANGES), (OLD, MUJOCO_OLD_RANGES)])
def test_the_tables_are_the_models_joint_ranges(model: mujoco.MjModel, table: object) -> None:
    assert {joint: tuple(model.joint(joint).range) for joint in JOINTS} == table


@pytest.mark.parametrize(("frame", "model"), [(Frame.MUJOCO, NEW), (Frame.MUJOCO_OLD, OLD)])
def test_without_a_calibration_the_limits_are_the_models(
    frame: Frame, model: mujoco.MjModel
) -> None:
    travel = limits(frame)
    for joint in JOINTS:
        assert travel[joint] == pytest.approx(tuple(model.joint(joint).range), abs=1e-12)


def link_rotation(model: mujoco.MjModel, joint: str, angle: float) -> np.ndarray:
    """The rotation of the part a joint moves relative to the part it is mounted on, with
    every other joint at zero: body frames differ between the two models, the parts do not."""
    data = mujoco.MjData(model)
    data.qpos[model.joint(joint).qposadr[0]] = angle
    mujoco.mj_kinematics(model, data)
    child = model.joint(joint).bodyid[0]
    parent, moved = (_first_mesh(model, body) for body in (model.body_parentid[child], child))
    return data.geom_xmat[parent].reshape(3, 3).T @ data.geom_xmat[moved].reshape(3, 3)


def _first_mesh(model: mujoco.MjModel, body: int) -> int:
    return next(
        g
        for g in range(model.ngeom)
        if model.geom_bodyid[g] == body and model.geom_type[g] == mujoco.mjtGeom.mjGEOM_MESH
    )


@pytest.mark.parametrize("joint", JOINTS)
@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.8])
def test_mujoco_old_puts_the_links_where_mujoco_does(joint: str, fraction: float) -> None:
    low, high = MUJOCO_RANGES[joint]
    angle = low + fraction * (high - low)
    old_angle = convert_joint(joint, angle, Frame.MUJOCO, Frame.MUJOCO_OLD)
    assert np.allclose(link_rotation(NEW, joint, angle), link_rotation(OLD, joint, old_angle))
    wrong = link_rotation(OLD, joint, old_angle + math.radians(1))
    assert not np.allclose(link_rotation(NEW, joint, angle), wrong, atol=1e-3)


def test_the_gripper_spans_the_models_jaw_range() -> None:
    low, high = NEW.joint(GRIPPER).range
    assert convert({GRIPPER: 0.0}, Frame.LEROBOT, Frame.MUJOCO)[GRIPPER] == pytest.approx(low)
    assert convert({GRIPPER: 100.0}, Frame.LEROBOT, Frame.MUJOCO)[GRIPPER] == pytest.approx(high)
    old_low, old_high = OLD.joint(GRIPPER).range
    assert convert({GRIPPER: 100.0}, Frame.LEROBOT, Frame.MUJOCO_OLD)[GRIPPER] == pytest.approx(
        old_high
    )
    assert convert({GRIPPER: 0.0}, Frame.LEROBOT, Frame.MUJOCO_OLD)[GRIPPER] == pytest.approx(
        old_low
    )


def test_lerobot_degrees_are_the_models_radians() -> None:
    """LeRobot's kinematics (lerobot/model/kinematics.py) feeds deg2rad of its degrees to
    so101_new_calib: the frames do the same."""
    pose = {joint: 12.5 for joint in JOINTS if joint != GRIPPER}
    assert convert(pose, Frame.LEROBOT, Frame.MUJOCO) == pytest.approx(
        {joint: math.radians(12.5) for joint in pose}
    )
