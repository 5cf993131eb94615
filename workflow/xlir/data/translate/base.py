"""The translator interface and the factory that builds one from the config.

A translator turns a list of texts from language `src` into language `tgt`
(ISO 639-1 codes) and returns a list of the same length and order. Backends:

* ``{"backend": "apertium", "modes": {"en-es": "eng-spa", ...}}``: rule-based
  Apertium through its command line (`xlir.data.translate.apertium`).
* ``{"backend": "huggingface", "model": "<hub id or local dir>",
  "lang_codes": {"es": "spa_Latn", ...}, "batch_size": 16, "max_new_tokens": 256,
  "device": "cpu", "num_beams": 1, "allow_download": false}``: any
  `AutoModelForSeq2SeqLM` (Marian, NLLB, M2M100, mBART-50, ...;
  `xlir.data.translate.hf_seq2seq`).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from xlir.common.config_files import schema_defaults

BACKENDS = ("apertium", "huggingface")


@runtime_checkable
class Translator(Protocol):
    """Anything with a `name` and a batch `translate` method."""

    name: str

    def translate(self, texts: list[str], src: str, tgt: str) -> list[str]:
        """Translate `texts` from `src` to `tgt`; same length and order as `texts`."""
        ...


def cache_id(translator: Any) -> str:
    """The identity under which a translator's outputs are cached: its `cache_id`
    attribute when it has one (it includes decoding settings), else its `name`."""
    return str(getattr(translator, "cache_id", None) or translator.name)


def _parse_modes(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
        isinstance(key, str) and isinstance(mode, str) for key, mode in value.items()
    ):
        raise ValueError(
            "config key `translation.modes` must map 'src-tgt' (e.g. 'en-es') to an Apertium mode "
            f"(e.g. 'eng-spa'); got {value!r}"
        )
    for key in value:
        if len(key.split("-")) != 2:
            raise ValueError(f"config key `translation.modes`: {key!r} is not of the form 'src-tgt' (e.g. 'en-es')")
    return dict(value)


def make_translator(backend: dict) -> Translator:
    """Build a translator from the `translation` section of the config."""
    if not isinstance(backend, dict):
        raise ValueError(f"config key `translation` must be a mapping; got {type(backend).__name__}")
    kind = backend.get("backend")
    if kind == "apertium":
        from xlir.data.translate.apertium import ApertiumTranslator

        return ApertiumTranslator(
            modes=_parse_modes(backend.get("modes")), chunk_size=int(backend.get("chunk_size", 500))
        )
    if kind in ("huggingface", "hf"):
        from xlir.data.translate.hf_seq2seq import HFSeq2SeqTranslator

        backend = {**schema_defaults("translation", "hf"), **backend}  # the one place: config/schema.yaml
        model = backend.get("model")
        if not isinstance(model, str) or not model:
            raise ValueError(
                "config key `translation.model` is required for the huggingface backend "
                "(a hub id such as 'facebook/nllb-200-distilled-600M' or a local folder)"
            )
        lang_codes = backend.get("lang_codes")
        if lang_codes is not None and not isinstance(lang_codes, dict):
            raise ValueError(
                f"config key `translation.lang_codes` must map ISO codes to model codes; got {lang_codes!r}"
            )
        return HFSeq2SeqTranslator(
            model=model,
            lang_codes=lang_codes,
            batch_size=int(backend["batch_size"]),
            max_new_tokens=int(backend["max_new_tokens"]),
            device=str(backend["device"]),
            num_beams=int(backend["num_beams"]),
            allow_download=bool(backend["allow_download"]),
            prefix=backend.get("prefix"),
        )
    raise ValueError(
        f"config key `translation.backend`: unknown backend {kind!r}; expected one of {', '.join(BACKENDS)}"
    )
