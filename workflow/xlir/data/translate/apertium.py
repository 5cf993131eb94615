"""Rule-based translation with the Apertium command line.

Batching: the texts of a chunk (500 at most) are normalised to one line each
(every whitespace run, newlines included, becomes one space) and joined with a
blank line between them, so Apertium's plain-text format sees one paragraph
per text; one `apertium -u MODE` process translates the whole chunk and its
output is split on blank lines again. (`-f line` would also keep one text per
line, but it drops a text's final full stop, so it is not used.) The number of
outputs is checked against the number of inputs; when they differ the chunk is
bisected and each half retried, down to single texts, so one awkward text can
never shift the alignment of the others. Empty texts are never sent and come
back as ``""``.

Caveat, measured on the chatterbot corpus: Apertium's transfer stages keep
some state across a stream, so a text translated inside a chunk can differ in
a word from the same text translated alone (about 2% of texts for eng-spa,
1% for en-gl, none for eng-cat; for en-eo about 20% differed only in the case
of the first letter). Outputs are deterministic for a given input file, and
the first letter of every translation takes the case of the source's first
letter, which removes the en-eo difference. `chunk_size=1` (config key
`translation.chunk_size`) translates every text in its own process: context
free, but about 100 times slower (~10 texts/s).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import unicodedata

from xlir.common.io import fingerprint, get_logger

log = get_logger(__name__)

DEFAULT_MODES: dict[str, str] = {
    "en-es": "eng-spa",
    "es-en": "spa-eng",
    "en-ca": "eng-cat",
    "ca-en": "cat-eng",
    "en-gl": "en-gl",
    "gl-en": "gl-en",
    "en-eo": "en-eo",
    "eo-en": "eo-en",
}

# Debian package that provides each language pair's modes.
_PACKAGES: dict[frozenset[str], str] = {
    frozenset({"eng", "spa"}): "apertium-eng-spa",
    frozenset({"eng", "cat"}): "apertium-eng-cat",
    frozenset({"en", "gl"}): "apertium-en-gl",
    frozenset({"en", "eo"}): "apertium-eo-en",
}

CHUNK_SIZE = 500
_SEPARATOR = "\n\n"
_SPLIT = re.compile(r"\n[ \t]*\n")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,;:!?])(?=\s|$)")
_GENERATION_MARK = re.compile(r"(?<!\S)[#@](?=\w)")
_LETTER = re.compile(r"[^\W\d_]")


def package_for_mode(mode: str) -> str:
    """The Debian package name that ships an Apertium mode such as 'eng-spa'."""
    parts = mode.split("_")[0].split("-")
    key = frozenset(parts[:2])
    if key in _PACKAGES:
        return _PACKAGES[key]
    return "apertium-" + "-".join(parts[:2])


def normalise_text(text: str) -> str:
    """One line: whitespace runs (newlines included) become one space; control characters go."""
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cc" or ch in "\t\n\r")
    return " ".join(text.split())


def _clean_output(translation: str, source: str) -> str:
    translation = " ".join(translation.split())
    translation = _SPACE_BEFORE_PUNCT.sub(r"\1", translation)
    if "#" not in source and "@" not in source:
        # Apertium marks generation/transfer problems with a leading '#'/'@'.
        translation = _GENERATION_MARK.sub("", translation)
    return _match_first_letter_case(translation.strip(), source)


def _match_first_letter_case(translation: str, source: str) -> str:
    """Give the translation's first letter the case of the source's first letter."""
    source_letter = _LETTER.search(source)
    target_letter = _LETTER.search(translation)
    if source_letter is None or target_letter is None:
        return translation
    letter = target_letter.group()
    letter = letter.upper() if source_letter.group().isupper() else letter.lower()
    return translation[: target_letter.start()] + letter + translation[target_letter.end() :]


class ApertiumTranslator:
    """Translate with `apertium -u MODE`; `modes` maps 'src-tgt' to an Apertium mode."""

    def __init__(
        self,
        modes: dict[str, str] | None = None,
        chunk_size: int = CHUNK_SIZE,
        binary: str = "apertium",
        timeout: float | None = 3600.0,
    ):
        self.modes = dict(DEFAULT_MODES if modes is None else modes)
        self.chunk_size = max(1, int(chunk_size))
        self.binary = binary
        self.timeout = timeout
        self.name = "apertium"
        self.cache_id = f"apertium:{fingerprint(sorted(self.modes.items()))}"
        self.calls = 0  # apertium processes started, for diagnostics

    def mode_for(self, src: str, tgt: str) -> str:
        key = f"{src}-{tgt}"
        if key not in self.modes:
            known = ", ".join(sorted(self.modes)) or "none"
            lang = tgt if src == "en" else src
            raise ValueError(
                f"apertium: no mode for {key} (config key translation.languages asks for {lang}); "
                f"name an installed mode in translation.modes ({key}: <mode>, see `apertium -l`) or use "
                f"translation.backend: huggingface (known directions: {known})"
            )
        return self.modes[key]

    def _run(self, mode: str, payload: str) -> str:
        if shutil.which(self.binary) is None:
            raise RuntimeError(
                f"apertium: the '{self.binary}' program was not found; install the Debian packages "
                f"'apertium' and '{package_for_mode(mode)}' (apt-get install apertium {package_for_mode(mode)})"
            )
        self.calls += 1
        try:
            result = subprocess.run(
                [self.binary, "-u", mode],
                input=payload,
                capture_output=True,
                text=True,
                encoding="utf-8",
                errors="replace",
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise RuntimeError(f"apertium {mode}: no answer within {self.timeout} s") from error
        if result.returncode != 0:
            stderr = result.stderr.strip()
            if "does not exist" in stderr or "mode" in stderr.lower():
                raise RuntimeError(
                    f"apertium: mode '{mode}' is not installed; install the Debian package "
                    f"'{package_for_mode(mode)}' (apt-get install {package_for_mode(mode)}). "
                    f"apertium said: {stderr.splitlines()[0] if stderr else '(nothing)'}"
                )
            raise RuntimeError(f"apertium {mode} failed (exit {result.returncode}): {stderr[:500]}")
        return result.stdout

    def _translate_aligned(self, mode: str, texts: list[str]) -> list[str]:
        """Translate normalised, non-empty texts; bisect on any misalignment."""
        output = self._run(mode, _SEPARATOR.join(texts) + "\n").strip("\n")
        if len(texts) == 1:
            return [" ".join(output.split())]
        parts = _SPLIT.split(output)
        if len(parts) == len(texts):
            return parts
        log.warning("apertium %s: %d outputs for %d inputs; retrying the chunk in halves", mode, len(parts), len(texts))
        middle = len(texts) // 2
        return self._translate_aligned(mode, texts[:middle]) + self._translate_aligned(mode, texts[middle:])

    def translate(self, texts: list[str], src: str, tgt: str) -> list[str]:
        texts = list(texts)
        if src == tgt:
            return [normalise_text(text) for text in texts]
        mode = self.mode_for(src, tgt)
        normalised = [normalise_text(text) for text in texts]
        results = [""] * len(texts)
        todo = [index for index, text in enumerate(normalised) if text]
        for start in range(0, len(todo), self.chunk_size):
            indices = todo[start : start + self.chunk_size]
            outputs = self._translate_aligned(mode, [normalised[index] for index in indices])
            for index, output in zip(indices, outputs, strict=True):
                results[index] = _clean_output(output, normalised[index])
        return results
