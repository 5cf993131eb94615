"""Atomic file output, JSON/JSONL/TSV helpers and per-rule logging.

Every output is written to a temporary file in the destination's folder and
renamed into place, so a failed job never leaves a half-written file. A writer
killed mid-write (SIGKILL, a node failure) leaves its temporary `.{name}.*.tmp`
sibling behind; the next writer that holds `exclusive(path)` removes it."""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import hashlib
import io
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class InputError(ValueError):
    """Bad input: the message names the file, the record and what was expected."""


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[TextIO]:
    """Open a temporary sibling of `path` for writing; rename it onto `path` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with open(tmp, mode, encoding=None if "b" in mode else encoding) as handle:
            yield handle
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; finished outputs follow the umask
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling folder of `path`; move it onto `path` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp creates 0700
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def stale_temps(path: str | Path) -> list[Path]:
    """The temporary siblings `.{name}.*.tmp` that `atomic_open` / `atomic_dir` make for `path`."""
    path = Path(path)
    return sorted(path.parent.glob(f".{path.name}.*.tmp")) if path.parent.is_dir() else []


def remove_stale_temps(path: str | Path) -> list[Path]:
    """Remove the temporary siblings a killed writer of `path` left; returns what was removed.
    Only safe while no other process writes `path`: call it under `exclusive(path)`."""
    removed = stale_temps(path)
    for tmp in removed:
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    return removed


class Busy(RuntimeError):
    """Another process holds the lock on an output (`exclusive`)."""


@contextlib.contextmanager
def exclusive(path: str | Path, what: str = "output") -> Iterator[Path]:
    """Hold the write lock of `path` for the block: an exclusive `flock` on `.{name}.lock` beside it.

    A second process asking for the same lock fails at once (`Busy`, naming the holder's pid) instead
    of writing the same output at the same time. The kernel releases the lock when the holder dies,
    SIGKILL included, so a killed run never blocks its rerun. On entry the temporary siblings a killed
    writer left are removed (`remove_stale_temps`); on exit, success or not, the lock file is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.parent / f".{path.name}.lock"
    handle = open(lock, "a+")  # noqa: SIM115 (held for the whole block)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                raise
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise Busy(
                f"{path}: another process (pid {holder}) is writing this {what}; wait for it or stop it"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        removed = remove_stale_temps(path)
        if removed:
            get_logger(__name__).warning(
                "removed %d temporary file(s) a killed writer of %s left: %s",
                len(removed),
                path,
                ", ".join(p.name for p in removed),
            )
        try:
            yield lock
        finally:
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()  # while still held: a process that opened it meanwhile fails to lock it
    finally:
        handle.close()


def write_json(path: str | Path, data: Any) -> None:
    with atomic_open(path) as handle:
        json.dump(data, handle, indent=2, ensure_ascii=False, sort_keys=False)
        handle.write("\n")


def decode_utf8(data: bytes, path: str | Path, offset: int = 0, where: str = "") -> str:
    """`data` (the bytes of `path` from byte `offset`) as text; bytes that are not UTF-8 raise an
    InputError naming the file and the byte offset of the first bad byte (`where`: e.g. the line)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        bad = data[error.start : error.start + 4]
        raise InputError(
            f"{path}: byte {offset + error.start}{where}: not UTF-8 ({error.reason}, bytes {bad!r}); "
            "save the file as UTF-8"
        ) from None


def read_text(path: str | Path) -> str:
    """A whole UTF-8 text file (InputError with the byte offset of a byte that is not UTF-8)."""
    path = Path(path)
    return decode_utf8(path.read_bytes(), path)


def iter_lines(path: str | Path, opener: Any = open) -> Iterator[tuple[int, str]]:
    """(line number, text) of each line of a UTF-8 file; `opener` e.g. gzip.open (binary mode).
    A byte that is not UTF-8 raises InputError with its byte offset (in the decompressed data
    for a compressed file) and line."""
    path = Path(path)
    offset = 0
    with opener(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            text = decode_utf8(raw, path, offset, f" (line {number})")
            yield number, text[:-2] + "\n" if text.endswith("\r\n") else text
            offset += len(raw)


def json_error(path: str | Path, text: str, error: json.JSONDecodeError, where: str = "") -> InputError:
    """An InputError locating a JSON syntax error: line and column, and the character offset (all
    that locates anything in a file of one long line), with the text around it."""
    around = text[max(0, error.pos - 30) : error.pos + 30]
    if "\n" not in text.rstrip("\n"):
        place = f"character {error.pos} (of a one-line file of {len(text)} characters)"
    else:
        place = f"line {error.lineno}, column {error.colno} (character {error.pos})"
    return InputError(f"{path}{where}: {place}: invalid JSON ({error.msg}) near {around!r}")


def read_json(path: str | Path) -> Any:
    path = Path(path)
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise json_error(path, text, error) from error


def write_jsonl(path: str | Path, records: Iterable[dict]) -> int:
    count = 0
    with atomic_open(path) as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def read_jsonl(path: str | Path) -> list[dict]:
    path = Path(path)
    records = []
    for line_number, line in iter_lines(path):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise InputError(f"{path}: line {line_number}: invalid JSON ({error.msg}, column {error.colno})") from error
    return records


def write_tsv(path: str | Path, rows: list[dict], columns: list[str] | None = None) -> None:
    columns = columns or (list(rows[0]) if rows else [])
    with atomic_open(path) as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def read_tsv(path: str | Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(read_text(path), newline=""), delimiter="\t"))


def fingerprint(*parts: Any) -> str:
    """Short, stable hash of JSON-serialisable parts (config values, file hashes)."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class WarningCollector(logging.Handler):
    """Keeps the warnings (and errors) a job logs, for its warnings file (`write_warnings`)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append({"level": record.levelname, "logger": record.name, "message": record.getMessage()})


def warnings_path(log_path: str | Path) -> Path:
    """The warnings file beside a rule's log: `results/logs/translate/es.log` ->
    `results/logs/translate/es.warnings.json` (the report lists every such file)."""
    log_path = Path(log_path)
    return log_path.with_name(f"{log_path.stem}.warnings.json")


def write_warnings(log_path: str | Path, command: str, collector: WarningCollector) -> None:
    """Rewrite the job's warnings file from this run's warnings (removed when there are none, so a
    rerun that no longer warns leaves no stale file; the log itself is appended to)."""
    path = warnings_path(log_path)
    warnings = [r for r in collector.records if r["level"] == "WARNING"]
    if warnings:
        write_json(path, {"command": command, "log": str(log_path), "warnings": warnings})
    else:
        path.unlink(missing_ok=True)


def read_warnings(logs_dir: str | Path) -> list[dict]:
    """Every job's warnings under `logs_dir`: {job (the log below logs_dir), command, logger, message}."""
    logs_dir = Path(logs_dir)
    rows = []
    for path in sorted(logs_dir.rglob("*.warnings.json")) if logs_dir.is_dir() else []:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # a damaged side file must not stop the report; the log still holds the lines
        job = str(path.relative_to(logs_dir)).removesuffix(".warnings.json")
        for warning in document.get("warnings", []):
            rows.append({"job": job, "command": document.get("command", ""), **warning})
    return rows


def setup_logging(log_path: str | Path | None) -> logging.Logger:
    """Log to stderr and, when given, to the rule's log file (appending); every warning is also
    kept by a `WarningCollector` (`collector_of(logger)`) for the job's warnings file."""
    logger = logging.getLogger("xlir")
    logger.setLevel(logging.INFO)
    logger.handlers.clear()
    logger.propagate = False
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(formatter)
    logger.addHandler(stream)
    logger.addHandler(WarningCollector())
    if log_path and not _stderr_is(log_path):
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(log_path, encoding="utf-8")
        file_handler.setFormatter(formatter)
        logger.addHandler(file_handler)
    return logger


def collector_of(logger: logging.Logger) -> WarningCollector | None:
    return next((h for h in logger.handlers if isinstance(h, WarningCollector)), None)


def _stderr_is(path: str | Path) -> bool:
    """True when stderr already goes to `path` (a rule's `2>> {log}`): log there once."""
    try:
        err, target = os.fstat(sys.stderr.fileno()), os.stat(path)
    except (OSError, ValueError, AttributeError):
        return False
    return (err.st_dev, err.st_ino) == (target.st_dev, target.st_ino)


def get_logger(name: str) -> logging.Logger:
    """A module's logger: pass `__name__` (`xlir.train.train` logs as `xlir.train.train`); a short
    name is put under `xlir.`. Every logger below `xlir` writes to the rule's log (`setup_logging`)."""
    return logging.getLogger(name if name == "xlir" or name.startswith("xlir.") else f"xlir.{name}")
