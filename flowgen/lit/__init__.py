"""Lightning wiring: modules, callbacks."""
