"""Time LeRobot's leader sync read + follower sync write on given ports.

Usage: bench_cycle.py LEADER_PORT FOLLOWER_PORT CYCLES   (prints cycle times in seconds)
"""

import sys
import time

from so101 import bus, emit

leader_port, follower_port, cycles = sys.argv[1], sys.argv[2], int(sys.argv[3])
leader, follower = bus(leader_port), bus(follower_port)
leader.connect()
follower.connect()
times = []
for _ in range(cycles):
    start = time.perf_counter()
    positions = leader.sync_read("Present_Position", normalize=False)
    follower.sync_write("Goal_Position", positions, normalize=False)
    times.append(time.perf_counter() - start)
leader.disconnect(disable_torque=False)
follower.disconnect(disable_torque=False)
emit(times=times)
