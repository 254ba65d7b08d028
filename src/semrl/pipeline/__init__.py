"""The orchestrator: checks before anything is written (preflight), the run directory, which
stages run where (scheduler), and `semrl run` / `semrl train` / `semrl eval` end to end."""
