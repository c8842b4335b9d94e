"""Training a run: planning, hardware, the Lightning module, losses, schedules, the run directory."""
