"""The orchestrator: `semrl run` / `semrl train` / `semrl eval` / `semrl export` end to end, and the
stage cache that trains each distinct stage once. The checks before anything is written are
semrl.checks; the run folder is semrl.run_folder."""
