"""The commands, one module each: a thin typer function over the run pipeline (``runs``)
or the module that does the work; each registers itself on the app (``register``).
Nothing here imports ``cli``."""
