"""otwatch application: sources, pipeline, observations, sinks, inventory, CLI."""
__version__ = "0.1.0"
