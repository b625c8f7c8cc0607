"""so101d: a headless teleoperation daemon for LeRobot SO-101 arms."""

__version__ = "0.1.0"
