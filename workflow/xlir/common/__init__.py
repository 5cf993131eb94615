"""What every stage shares and that belongs to none: atomic file I/O and logging (`io.py`),
the CLI's argument types (`cli_args.py`), and the Java runtime for Pyserini (`java_env.py`,
`pyserini_run.py`). Imports no stage."""
