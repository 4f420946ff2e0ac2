"""Local simulators of SmartUp and LUNA OASYS, served on loopback for tests, the demo and rehearsals."""
