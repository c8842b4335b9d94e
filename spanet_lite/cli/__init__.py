"""The console scripts (``spanet-*``): each a thin ``main(argv) -> int`` over the Python API."""
