"""Everything a run checks before its first step, so a mistake ends in one line (exit 2) before the
run folder is written, not as a traceback in the middle of training: the config against the installed
libraries (settings.py: loss type, scheduler, optimizer, logger, dtype, attention), every data row
and the sizes they imply (sizes.py), model paths, kinds and weights (models.py), names that are only
looked up late (lookups.py), and the memory a stage will need (memory.py); preflight.py runs them all."""
