"""Obtain one input file: copy it from a local mirror folder, else download it when the
config allows the network (`data.mirror`, `data.download`); and pin the SHA-256 of files
that have no official checksum (`pin_checksums`: recorded at the first fetch, verified at
every later one).

Shared by the benchmark fetcher (`xlir.benchmarks.fetch_benchmark`) and the training-data
fetcher (`xlir.data.fetch_qa`), which may not import each other."""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import shutil
import time
import urllib.request
from pathlib import Path

from xlir.common.io import InputError, get_logger, write_json

log = get_logger(__name__)


def download(url: str, target: Path, timeout: float = 120.0) -> None:
    """Download `url` to `target` (atomically: a partial download never stays)."""
    log.info("downloading %s", url)
    partial = target.with_name(f".{target.name}.part")
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(partial, "wb") as handle:
            shutil.copyfileobj(response, handle, length=1 << 20)
        os.replace(partial, target)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise InputError(f"could not download {url}: {error}") from error
    log.info(
        "downloaded %s (%.1f MB) in %.1fs", target.name, target.stat().st_size / 1e6, time.perf_counter() - started
    )


def obtain(
    relative: str, url: str | None, target: Path, mirror: Path | None, allow_download: bool, config_hint: str
) -> str:
    """Copy `{mirror}/{relative}` to `target`, else download `url`; return the source used.

    Neither possible: InputError naming `config_hint` (what is being fetched), the missing
    mirror file and the config keys that would make it possible."""
    if mirror is not None and (mirror / relative).is_file():
        shutil.copyfile(mirror / relative, target)
        return str(mirror / relative)
    if allow_download and url:
        download(url, target)
        return url
    where = f"{mirror / relative} is missing" if mirror is not None else "no mirror is configured (data.mirror)"
    raise InputError(
        f"{config_hint}: {where} and data.download is false; set data.mirror to a folder "
        f"holding '{relative}' or allow data.download"
    )


def pin_checksums(pins: str | Path, files: dict[str, dict], verify: bool = True) -> dict[str, str]:
    """Check fetched files against the SHA-256 recorded in the JSON file `pins` at their first
    fetch, and record the files fetched for the first time (trust on first use).

    `files` maps a source-independent key (the file's path under the mirror root, the same
    whether it was copied or downloaded) to `{"sha256", "bytes", "source"}`. Returns each key's
    status: "recorded" (first fetch), "verified" or, with `verify` false, "differs". A digest
    that differs from the recorded one fails naming the file, unless `verify` is false (then
    it is logged, and the record is kept). Safe for concurrent jobs sharing `pins` (a lock)."""
    pins = Path(pins)
    pins.parent.mkdir(parents=True, exist_ok=True)
    with open(pins.with_name(f".{pins.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        recorded = {}
        if pins.exists():
            try:
                recorded = json.loads(pins.read_text(encoding="utf-8")).get("files", {})
            except (ValueError, AttributeError) as error:
                raise InputError(f"{pins}: not a checksum record ({error}); remove it to record anew") from None
        status, mismatches = {}, []
        for key, record in sorted(files.items()):
            pinned = recorded.get(key)
            if pinned is None:
                recorded[key] = {
                    "sha256": record["sha256"],
                    "bytes": record["bytes"],
                    "first_source": record["source"],
                    "recorded": datetime.date.today().isoformat(),
                }
                status[key] = "recorded"
            elif pinned["sha256"] == record["sha256"]:
                status[key] = "verified"
            else:
                mismatches.append(
                    f"{record['source']} ({key}): SHA-256 {record['sha256']} differs from {pinned['sha256']}, "
                    f"recorded in {pins} on {pinned.get('recorded', '?')} from {pinned.get('first_source', '?')}"
                )
                status[key] = "differs"
        if mismatches and verify:
            raise InputError(
                f"{mismatches[0]}"
                + (f" (and {len(mismatches) - 1} more files)" if len(mismatches) > 1 else "")
                + f"; if the new file is the right one, remove its entry from {pins} "
                "(or set data.verify_checksums: false to accept it once)"
            )
        for line in mismatches:
            log.warning("checksum not verified (data.verify_checksums is false): %s", line)
        if "recorded" in status.values():
            write_json(
                pins, {"description": "SHA-256 of fetched files, recorded at their first fetch", "files": recorded}
            )
    return status
