"""The jobs: SmartUp pull, LUNA push, run-all. This is where the logic lives."""
