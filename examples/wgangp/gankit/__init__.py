"""Run support: start-up checks, training bookkeeping, checkpoints, files, processes, CPU, monitoring, plots."""
