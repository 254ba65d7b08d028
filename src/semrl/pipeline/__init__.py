"""The orchestrator: the run directory, which stages run where (scheduler), and `semrl run` /
`semrl train` / `semrl eval` end to end. The checks before anything is written are semrl.checks."""
