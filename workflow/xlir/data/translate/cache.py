"""A persistent translation cache in front of any translator.

Keyed by (translator cache id, src, tgt, normalised source text); only misses
reach the inner translator, in chunks committed as they finish, so a rerun, or
a run resumed after a crash, translates nothing twice."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from xlir.common.io import get_logger
from xlir.data.translate.apertium import normalise_text
from xlir.data.translate.base import Translator, cache_id

log = get_logger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS translations (
    backend TEXT NOT NULL,
    src TEXT NOT NULL,
    tgt TEXT NOT NULL,
    text TEXT NOT NULL,
    translation TEXT NOT NULL,
    PRIMARY KEY (backend, src, tgt, text)
)
"""


class CachedTranslator:
    """Wrap `inner`; `stats` counts texts, not calls: `misses` are the distinct texts sent to
    `inner`, `hits` every other non-empty text (a repeat within one call is a hit); empty
    texts are neither and come back as ""."""

    def __init__(self, inner: Translator, cache_path: str | Path, chunk_size: int = 2000):
        self.inner = inner
        self.name = inner.name
        self.cache_id = cache_id(inner)
        self.cache_path = Path(cache_path)
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        self.chunk_size = max(1, int(chunk_size))
        self.stats = {"hits": 0, "misses": 0}
        # Several jobs (one per language) may share the file: wait for locks, and let readers
        # and the one writer work side by side (write-ahead log).
        self._connection = sqlite3.connect(str(self.cache_path), timeout=120.0)
        try:
            self._connection.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError:
            pass
        self._connection.execute(_SCHEMA)
        self._connection.commit()

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> CachedTranslator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _lookup(self, keys: list[str], src: str, tgt: str) -> dict[str, str]:
        found: dict[str, str] = {}
        for start in range(0, len(keys), 500):
            part = keys[start : start + 500]
            rows = self._connection.execute(
                f"SELECT text, translation FROM translations WHERE backend = ? AND src = ? AND tgt = ? "
                f"AND text IN ({','.join('?' * len(part))})",
                [self.cache_id, src, tgt, *part],
            ).fetchall()
            found.update(rows)
        return found

    def translate(self, texts: list[str], src: str, tgt: str) -> list[str]:
        keys = [normalise_text(text) for text in texts]
        unique = list(dict.fromkeys(key for key in keys if key))
        found = self._lookup(unique, src, tgt)
        missing = [key for key in unique if key not in found]
        for start in range(0, len(missing), self.chunk_size):
            part = missing[start : start + self.chunk_size]
            outputs = self.inner.translate(part, src, tgt)
            if len(outputs) != len(part):
                raise RuntimeError(f"{self.name}: {len(outputs)} translations for {len(part)} texts")
            with self._connection:
                self._connection.executemany(
                    "INSERT OR REPLACE INTO translations (backend, src, tgt, text, translation) VALUES (?, ?, ?, ?, ?)",
                    [(self.cache_id, src, tgt, key, output) for key, output in zip(part, outputs)],
                )
            found.update(zip(part, outputs))
        # A miss is a distinct text sent to the inner translator; every other non-empty text is a hit.
        n_nonempty = sum(1 for key in keys if key)
        n_misses = len(missing)
        self.stats["misses"] += n_misses
        self.stats["hits"] += n_nonempty - n_misses
        if missing:
            log.info(
                "%s %s->%s: %d cached, %d new texts translated",
                self.name,
                src,
                tgt,
                n_nonempty - n_misses,
                len(missing),
            )
        return [found[key] if key else "" for key in keys]
