"""camsync: keeps a business's own apps in sync with the outside systems they depend on."""

__version__ = "0.1.0"
