"""Local simulators of the upstream APIs, served on loopback for tests, the demo and rehearsals.

The shared parts name no API: `server` (HTTP on loopback), `auth`, `faults` (seeded draws and counters) and
`control` (the `/_sandbox/` endpoints). Each simulated API has its own modules, named after it.
"""
