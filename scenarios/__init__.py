"""scenarios: couples :mod:`netsim` and :mod:`learning`; scenario files, the run loop, the CLI."""
