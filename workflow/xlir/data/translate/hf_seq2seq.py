"""Neural translation with any Hugging Face `AutoModelForSeq2SeqLM`.

* Many-to-many models (NLLB, M2M100, mBART-50) need `lang_codes`, mapping ISO
  codes to the model's language codes (NLLB: ``{"es": "spa_Latn"}``; M2M100:
  ``{"es": "es"}``; mBART-50: ``{"es": "es_XX"}``). The source code is set as
  `tokenizer.src_lang` and the target code is forced as the first generated
  token (`forced_bos_token_id`).
* One-direction models (Marian `Helsinki-NLP/opus-mt-en-es`, ...) need no codes.

The model is loaded on first use, from local files only unless
`allow_download` is set.
"""

from __future__ import annotations

import time
from typing import Any

from xlir.common.io import get_logger
from xlir.data.translate.apertium import normalise_text

log = get_logger(__name__)


class HFSeq2SeqTranslator:
    def __init__(
        self,
        model: str,
        lang_codes: dict[str, str] | None = None,
        batch_size: int = 16,
        max_new_tokens: int = 256,
        device: str = "cpu",
        num_beams: int = 1,
        allow_download: bool = False,
        prefix: str | None = None,
        max_input_length: int = 512,
        progress: bool | None = None,
    ):
        self.model_id = str(model)
        self.lang_codes = dict(lang_codes) if lang_codes else None
        self.batch_size = max(1, int(batch_size))
        self.max_new_tokens = int(max_new_tokens)
        self.device_name = device
        self.num_beams = max(1, int(num_beams))
        self.allow_download = bool(allow_download)
        self.prefix = prefix  # e.g. "translate English to German: " for T5; may use {src} and {tgt}
        self.max_input_length = int(max_input_length)
        self.progress = progress
        self.name = f"hf:{self.model_id}"
        self.cache_id = (
            f"hf:{self.model_id}|beams={self.num_beams}|max_new_tokens={self.max_new_tokens}"
            f"|max_input={self.max_input_length}|prefix={self.prefix or ''}"
        )
        self._model: Any = None
        self._tokenizer: Any = None
        self._device: Any = None

    # -- loading -------------------------------------------------------------------------
    def _load(self) -> None:
        if self._model is not None:
            return
        import torch
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        device = self.device_name
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self._device = torch.device(device)
        started = time.perf_counter()
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(self.model_id, local_files_only=not self.allow_download)
            self._model = AutoModelForSeq2SeqLM.from_pretrained(self.model_id, local_files_only=not self.allow_download)
        except (OSError, ValueError) as error:  # missing files; invalid repo id
            hint = (
                ""
                if self.allow_download
                else " (loading from local files only: put the model in the Hugging Face cache or a local "
                "folder, or set config key `translation.allow_download: true`)"
            )
            raise RuntimeError(f"huggingface translator: cannot load {self.model_id!r}{hint}: {error}") from error
        self._model.to(self._device)
        self._model.eval()
        log.info("loaded %s on %s in %.1f s", self.model_id, self._device, time.perf_counter() - started)

    # -- language codes ------------------------------------------------------------------
    def _code(self, lang: str) -> str:
        assert self.lang_codes is not None
        if lang not in self.lang_codes:
            raise ValueError(
                f"huggingface translator {self.model_id}: no language code for {lang!r} in config key "
                f"`translation.lang_codes` (known: {', '.join(sorted(self.lang_codes))})"
            )
        return self.lang_codes[lang]

    def _forced_bos(self, tgt_code: str) -> int:
        tokenizer = self._tokenizer
        token_id = None
        if hasattr(tokenizer, "get_lang_id"):  # M2M100: codes like "es" -> "__es__"
            try:
                token_id = tokenizer.get_lang_id(tgt_code)
            except (KeyError, ValueError, AttributeError):
                token_id = None
        if token_id is None:
            token_id = tokenizer.convert_tokens_to_ids(tgt_code)
        if token_id is None or (tokenizer.unk_token_id is not None and token_id == tokenizer.unk_token_id):
            raise ValueError(
                f"huggingface translator {self.model_id}: the language code {tgt_code!r} is not a token of "
                "the tokenizer; check config key `translation.lang_codes`"
            )
        return int(token_id)

    # -- translation ---------------------------------------------------------------------
    def translate(self, texts: list[str], src: str, tgt: str) -> list[str]:
        texts = [normalise_text(text) for text in texts]
        results = [""] * len(texts)
        todo = [index for index, text in enumerate(texts) if text]
        if not todo:
            return results
        if src == tgt:
            return texts
        self._load()
        import torch
        from tqdm.auto import tqdm

        tokenizer = self._tokenizer
        generate_kwargs: dict[str, Any] = {
            "max_new_tokens": self.max_new_tokens,
            "num_beams": self.num_beams,
            "do_sample": False,
        }
        if self.lang_codes:
            src_code, tgt_code = self._code(src), self._code(tgt)
            if hasattr(tokenizer, "src_lang"):
                tokenizer.src_lang = src_code
            if hasattr(tokenizer, "tgt_lang"):
                tokenizer.tgt_lang = tgt_code
            generate_kwargs["forced_bos_token_id"] = self._forced_bos(tgt_code)
        prefix = self.prefix.format(src=src, tgt=tgt) if self.prefix else ""

        # Longest first: less padding, and an out-of-memory error shows up at once.
        order = sorted(todo, key=lambda index: len(texts[index]), reverse=True)
        batches = [order[start : start + self.batch_size] for start in range(0, len(order), self.batch_size)]
        disable = None if self.progress is None else not self.progress  # None: only on a terminal
        bar = tqdm(batches, desc=f"{self.name} {src}->{tgt}", unit="batch", disable=disable, mininterval=5.0)
        for batch in bar:
            encoded = tokenizer(
                [prefix + texts[index] for index in batch],
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=self.max_input_length,
            )
            encoded = {
                key: value.to(self._device) for key, value in encoded.items() if key in ("input_ids", "attention_mask")
            }
            with torch.inference_mode():
                generated = self._model.generate(**encoded, **generate_kwargs)
            decoded = tokenizer.batch_decode(generated, skip_special_tokens=True)
            for index, output in zip(batch, decoded, strict=True):
                results[index] = " ".join(output.split())
        return results
