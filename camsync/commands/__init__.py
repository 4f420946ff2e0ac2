"""One Typer app per command group; each command reads options, makes one call and renders the result."""
