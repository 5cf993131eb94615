"""Obtain one input file: copy it from a local mirror folder, else download it when the
config allows the network (`data.mirror`, `data.download`).

Shared by the benchmark fetcher (`xlir.benchmarks.fetch_benchmark`) and the training-data
fetcher (`xlir.data.fetch_qa`), which may not import each other."""

from __future__ import annotations

import os
import shutil
import time
import urllib.request
from pathlib import Path

from xlir.common.io import InputError, get_logger

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
