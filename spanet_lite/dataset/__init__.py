"""From HDF5 files to batches: the file layout, its validation, reading, statistics and loaders."""
