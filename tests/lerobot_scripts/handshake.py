"""FeetechMotorsBus.connect() with its full handshake, then the reads LeRobot does."""

import sys

from so101 import bus, emit

motors_bus = bus(sys.argv[1])
motors_bus.connect()  # handshake: ping + model number + firmware of every motor
positions = motors_bus.sync_read("Present_Position", normalize=False)
calibration = motors_bus.read_calibration()
voltages = {name: motors_bus.read("Present_Voltage", name) for name in positions}
motors_bus.disconnect()
emit(
    positions=positions,
    voltages=voltages,
    calibration={name: vars(cal) for name, cal in calibration.items()},
)
