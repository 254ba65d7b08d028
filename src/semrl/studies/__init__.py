"""Studies built on whole runs: few-shot transfer from trained checkpoints, and reward models
across languages (`semrl rm`)."""
