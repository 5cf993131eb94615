"""Tests of xlir.data.translate: Apertium (for real), the cache, tiny Hugging Face models
built on the spot (no network), and translate_qa_file."""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess

import pytest

from xlir.common.io import InputError, read_jsonl
from xlir.data.translate import (
    ApertiumTranslator,
    CachedTranslator,
    make_translator,
    normalise_text,
    translate_qa_file,
)
from xlir.data.translate.apertium import package_for_mode

# ---------------------------------------------------------------------------------------------
# helpers


class FakeTranslator:
    """Deterministic stand-in: '[tgt] text'; counts calls and texts; '' for texts in `empty_for`."""

    def __init__(self, name: str = "fake", empty_for: tuple[str, ...] = ()):
        self.name = name
        self.calls: list[tuple[list[str], str, str]] = []
        self.empty_for = set(empty_for)

    def translate(self, texts, src, tgt):
        texts = list(texts)
        self.calls.append((texts, src, tgt))
        return ["" if text in self.empty_for else f"[{tgt}] {text}" for text in texts]

    @property
    def n_texts(self) -> int:
        return sum(len(texts) for texts, _, _ in self.calls)


def _has_mode(mode: str) -> bool:
    if shutil.which("apertium") is None:
        return False
    result = subprocess.run(["apertium", "-l"], capture_output=True, text=True, check=False)
    return mode in result.stdout.split()


needs_apertium = pytest.mark.skipif(
    not all(_has_mode(mode) for mode in ("eng-spa", "eng-cat", "en-gl")),
    reason="apertium with eng-spa, eng-cat and en-gl is not installed",
)

SENTENCES = [
    "I have 3 cats and a dog.",
    "The weather is very good today,\nand the 7 children are playing in the garden.",
    "",
    "Where is the 12 train station?",
    "She wrote 45 letters to her mother.",
]

# ---------------------------------------------------------------------------------------------
# Apertium


@needs_apertium
@pytest.mark.parametrize("tgt", ["es", "ca", "gl"])
def test_apertium_translates_with_alignment(tgt):
    translator = ApertiumTranslator()
    outputs = translator.translate(SENTENCES, "en", tgt)
    assert len(outputs) == len(SENTENCES)
    assert translator.calls == 1  # one apertium process for the whole batch
    assert outputs[2] == ""
    for source, output in zip(SENTENCES, outputs):
        if not source:
            continue
        assert output and "\n" not in output and output == output.strip()
        assert output != normalise_text(source)
        # numbers pass through untranslated: each output carries its own source's number
        assert re.findall(r"\d+", output) == re.findall(r"\d+", source)
        assert "*" not in output  # -u: no unknown-word marks


@needs_apertium
def test_apertium_batch_matches_one_at_a_time():
    translator = ApertiumTranslator()
    batch = translator.translate(SENTENCES, "en", "es")
    singles = [translator.translate([text], "en", "es")[0] for text in SENTENCES]
    assert batch == singles
    assert "gato" in batch[0].lower()


@needs_apertium
def test_apertium_back_translation_and_identity():
    translator = ApertiumTranslator()
    spanish = translator.translate(["The cat is black."], "en", "es")
    assert translator.translate(spanish, "es", "en")[0].lower().startswith("the cat")
    assert translator.translate(["  a\nb "], "en", "en") == ["a b"]
    assert translator.translate([], "en", "es") == []


def test_apertium_bisects_a_misaligned_chunk(caplog):
    """A stage that swallows/adds paragraphs only breaks its own text, never the others."""

    class Flaky(ApertiumTranslator):
        def _run(self, mode, payload):
            self.calls += 1
            paragraphs = payload.strip("\n").split("\n\n")
            out = []
            for paragraph in paragraphs:
                out.append(paragraph + "-es")
                if paragraph == "two":
                    out.append("EXTRA")  # misalignment whenever "two" is in a multi-text chunk
            return "\n\n".join(out) + "\n"

    translator = Flaky(chunk_size=3)
    texts = ["one", "two", "three", "four", "", "five"]
    with caplog.at_level(logging.WARNING):
        outputs = translator.translate(texts, "en", "es")
    assert outputs == ["one-es", "two-es EXTRA", "three-es", "four-es", "", "five-es"]
    assert "retrying" in caplog.text


def test_apertium_chunking_counts_processes():
    class Echo(ApertiumTranslator):
        def _run(self, mode, payload):
            self.calls += 1
            return payload

    translator = Echo(chunk_size=2)
    texts = [f"text {i}" for i in range(5)]
    assert translator.translate(texts, "en", "es") == texts
    assert translator.calls == 3


def test_apertium_missing_binary_names_the_package():
    translator = ApertiumTranslator(binary="xlir-no-such-apertium-binary")
    with pytest.raises(RuntimeError, match=r"apertium-eng-spa"):
        translator.translate(["Hello."], "en", "es")


@pytest.mark.skipif(shutil.which("apertium") is None, reason="apertium not installed")
def test_apertium_missing_mode_names_the_package():
    translator = ApertiumTranslator(modes={"en-xx": "eng-xxx"})
    with pytest.raises(RuntimeError, match=r"apertium-eng-xxx"):
        translator.translate(["Hello."], "en", "xx")


def test_apertium_unknown_direction_names_config_key():
    with pytest.raises(ValueError, match=r"translation\.modes"):
        ApertiumTranslator().translate(["Hello."], "en", "zz")


def test_package_for_mode():
    assert package_for_mode("eng-spa") == "apertium-eng-spa"
    assert package_for_mode("cat-eng") == "apertium-eng-cat"
    assert package_for_mode("gl-en") == "apertium-en-gl"
    assert package_for_mode("en-eo") == "apertium-eo-en"
    assert package_for_mode("eng-cat_valencia") == "apertium-eng-cat"


# ---------------------------------------------------------------------------------------------
# factory


def test_make_translator_backends():
    apertium = make_translator({"backend": "apertium", "modes": {"en-es": "eng-spa"}})
    assert apertium.name == "apertium" and apertium.modes == {"en-es": "eng-spa"}
    assert make_translator({"backend": "apertium"}).modes["en-gl"] == "en-gl"
    hf = make_translator(
        {
            "backend": "huggingface",
            "model": "some/model",
            "lang_codes": {"es": "spa_Latn"},
            "batch_size": 4,
            "num_beams": 2,
        }
    )
    assert hf.name == "hf:some/model" and hf.batch_size == 4 and hf.num_beams == 2
    assert hf._model is None  # loaded lazily


@pytest.mark.parametrize("config", [{"backend": "moses"}, {}, {"backend": None}])
def test_make_translator_unknown_backend(config):
    with pytest.raises(ValueError, match=r"translation\.backend"):
        make_translator(config)


def test_make_translator_bad_values():
    with pytest.raises(ValueError, match=r"translation\.model"):
        make_translator({"backend": "huggingface"})
    with pytest.raises(ValueError, match=r"translation\.modes"):
        make_translator({"backend": "apertium", "modes": {"enes": "eng-spa"}})


# ---------------------------------------------------------------------------------------------
# cache


def test_cache_hits_on_second_call(tmp_path):
    inner = FakeTranslator()
    cached = CachedTranslator(inner, tmp_path / "cache.sqlite")
    texts = ["Hello", "World", "", "Hello"]
    first = cached.translate(texts, "en", "es")
    assert first == ["[es] Hello", "[es] World", "", "[es] Hello"]
    assert len(inner.calls) == 1 and inner.calls[0][0] == ["Hello", "World"]  # unique, non-empty
    assert cached.stats == {"hits": 1, "misses": 2}

    second = cached.translate(texts, "en", "es")
    assert second == first
    assert len(inner.calls) == 1  # no inner call at all
    assert cached.stats == {"hits": 4, "misses": 2}

    # a different direction is a different key
    assert cached.translate(["Hello"], "en", "ca") == ["[ca] Hello"]
    assert cached.translate(["Hello"], "es", "en") == ["[en] Hello"]
    assert len(inner.calls) == 3
    cached.close()

    # persistent: a new process (new wrapper) reuses the translations
    inner2 = FakeTranslator()
    with CachedTranslator(inner2, tmp_path / "cache.sqlite") as again:
        assert again.translate(["World", "Hello"], "en", "es") == ["[es] World", "[es] Hello"]
        assert inner2.calls == [] and again.stats == {"hits": 2, "misses": 0}
        # another backend name does not see the first backend's translations
    with CachedTranslator(FakeTranslator(name="other"), tmp_path / "cache.sqlite") as other:
        other.translate(["Hello"], "en", "es")
        assert other.stats == {"hits": 0, "misses": 1}


def test_cache_partial_hits_send_only_misses(tmp_path):
    inner = FakeTranslator()
    with CachedTranslator(inner, tmp_path / "c.sqlite", chunk_size=2) as cached:
        cached.translate(["a", "b"], "en", "es")
        out = cached.translate(["c", "a", "d", "b", "e"], "en", "es")
    assert out == ["[es] c", "[es] a", "[es] d", "[es] b", "[es] e"]
    assert [call[0] for call in inner.calls] == [["a", "b"], ["c", "d"], ["e"]]


# ---------------------------------------------------------------------------------------------
# Hugging Face: tiny random models built here


@pytest.fixture(scope="module")
def tiny_marian(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import MarianConfig, MarianMTModel, PreTrainedTokenizerFast

    words = "the cat sat on a mat hello world how are you what is dog el gato hola mundo".split()
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for word in words:
        vocab.setdefault(word, len(vocab))
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.decoder = decoders.WordPiece()
    backend.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A $B </s>", special_tokens=[("</s>", 1)]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
    config = MarianConfig(
        vocab_size=len(vocab),
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=64,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
        forced_eos_token_id=1,
    )
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny_marian")
    tokenizer.save_pretrained(path)
    MarianMTModel(config).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny_nllb(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from transformers import M2M100Config, M2M100ForConditionalGeneration
    from transformers.models.nllb.tokenization_nllb import NllbTokenizer

    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for char in "abcdefghijklmnopqrstuvwxyz▁":
        vocab[char] = len(vocab)
    tokenizer = NllbTokenizer(
        vocab=vocab, merges=[], extra_special_tokens=["eng_Latn", "spa_Latn", "cat_Latn"], src_lang="eng_Latn"
    )
    config = M2M100Config(
        vocab_size=len(tokenizer),
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=64,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
    )
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny_nllb")
    tokenizer.save_pretrained(path)
    M2M100ForConditionalGeneration(config).save_pretrained(path)
    return path


def test_hf_marian_translates(tiny_marian):
    translator = make_translator(
        {"backend": "huggingface", "model": str(tiny_marian), "batch_size": 2, "max_new_tokens": 8, "device": "cpu"}
    )
    texts = ["the cat sat on a mat", "hello world", "how are\nyou"]
    first = translator.translate(texts, "en", "es")
    assert len(first) == 3 and all(isinstance(text, str) for text in first)
    assert translator.translate(texts, "en", "es") == first  # deterministic
    with_empty = translator.translate(["hello world", "", "  "], "en", "es")
    assert with_empty[0] == first[1] and with_empty[1:] == ["", ""]
    assert translator.translate([], "en", "es") == []


def test_hf_nllb_forces_target_language(tiny_nllb):
    from xlir.data.translate.hf_seq2seq import HFSeq2SeqTranslator

    codes = {"en": "eng_Latn", "es": "spa_Latn", "ca": "cat_Latn", "xx": "xxx_Latn"}
    translator = HFSeq2SeqTranslator(str(tiny_nllb), lang_codes=codes, batch_size=2, max_new_tokens=5)
    translator._load()
    seen = []
    original = translator._model.generate

    def spy(**kwargs):
        seen.append((kwargs["input_ids"][:, 0].tolist(), kwargs.get("forced_bos_token_id")))
        output = original(**kwargs)
        seen.append(output[:, 1].tolist())
        return output

    translator._model.generate = spy
    tokenizer = translator._tokenizer
    out = translator.translate(["the cat", "hello", "dog"], "en", "es")
    assert len(out) == 3 and all(isinstance(text, str) for text in out)
    spa, eng = tokenizer.convert_tokens_to_ids("spa_Latn"), tokenizer.convert_tokens_to_ids("eng_Latn")
    first_tokens, forced = seen[0]
    assert forced == spa and set(first_tokens) == {eng}  # source code leads the input
    assert set(seen[1]) == {spa}  # first generated token is the target code
    translator.translate(["the cat"], "ca", "en")
    assert seen[-2][1] == eng and set(seen[-2][0]) == {tokenizer.convert_tokens_to_ids("cat_Latn")}
    assert translator.translate(["the cat"], "en", "es") == out[:1]

    with pytest.raises(ValueError, match=r"translation\.lang_codes"):
        translator.translate(["the cat"], "en", "de")  # no code for 'de'
    with pytest.raises(ValueError, match=r"translation\.lang_codes"):
        translator.translate(["the cat"], "en", "xx")  # code not in the vocabulary


def test_hf_missing_model_is_a_clear_error(tmp_path):
    translator = make_translator({"backend": "huggingface", "model": str(tmp_path / "no-model")})
    with pytest.raises(RuntimeError, match=r"allow_download"):
        translator.translate(["hello"], "en", "es")


# ---------------------------------------------------------------------------------------------
# translate_qa_file


def _write_qa(path, records):
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")


QA = [
    {"pair_id": "science-0000", "category": "science", "question": "What is a cell?", "answer": "The unit of life."},
    {"pair_id": "science-0001", "category": "science", "question": "What is DNA?", "answer": "A molecule."},
    {"pair_id": "food-0000", "category": "food", "question": "Do you eat?", "answer": "No."},
]


def test_translate_qa_file(tmp_path, caplog):
    qa = tmp_path / "en.jsonl"
    _write_qa(qa, QA)
    inner = FakeTranslator(empty_for=("No.",))
    cached = CachedTranslator(inner, tmp_path / "cache.sqlite")
    out = tmp_path / "mt" / "es.jsonl"
    with caplog.at_level(logging.WARNING):
        stats = translate_qa_file(qa, "es", out, cached)
    records = read_jsonl(out)
    assert [record["pair_id"] for record in records] == [pair["pair_id"] for pair in QA]
    assert set(records[0]) == {"pair_id", "question", "answer"}
    assert records[0] == {
        "pair_id": "science-0000",
        "question": "[es] What is a cell?",
        "answer": "[es] The unit of life.",
    }
    assert records[2]["answer"] == ""
    assert stats["n"] == 3 and stats["n_segments"] == 6 and stats["empty_translations"] == 1
    assert stats["cache_misses"] == 6 and stats["cache_hits"] == 0 and stats["seconds"] >= 0
    assert "empty" in caplog.text and "food-0000" in caplog.text

    again = translate_qa_file(qa, "es", out, cached)
    assert again["cache_hits"] == 6 and again["cache_misses"] == 0
    assert len(inner.calls) == 1
    assert read_jsonl(out) == records


def test_translate_qa_file_without_cache_and_identity(tmp_path):
    qa = tmp_path / "en.jsonl"
    _write_qa(qa, QA)
    inner = FakeTranslator()
    stats = translate_qa_file(qa, "ca", tmp_path / "ca.jsonl", inner)
    assert stats["cache_hits"] is None and stats["n"] == 3
    assert read_jsonl(tmp_path / "ca.jsonl")[1]["question"] == "[ca] What is DNA?"
    translate_qa_file(qa, "en", tmp_path / "en_copy.jsonl", inner)
    assert read_jsonl(tmp_path / "en_copy.jsonl")[1]["question"] == "What is DNA?"
    assert len(inner.calls) == 1


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ('{"pair_id": "x-0001", "question": "Hi?"', r"line 2: invalid JSON"),
        ('{"pair_id": "x-0001", "question": "Hi?"}', r"line 2: .*'answer'"),
        ('{"question": "Hi?", "answer": "Yes."}', r"line 2: .*pair_id"),
        ('["not", "an", "object"]', r"line 2: expected a JSON object"),
        ('{"pair_id": "x-0000", "question": "Hi?", "answer": "Yes."}', r"line 2: duplicate pair_id"),
    ],
)
def test_translate_qa_file_malformed(tmp_path, bad_line, message):
    qa = tmp_path / "broken.jsonl"
    qa.write_text(
        json.dumps({"pair_id": "x-0000", "category": "x", "question": "Q?", "answer": "A."}) + "\n" + bad_line + "\n",
        encoding="utf-8",
    )
    out = tmp_path / "es.jsonl"
    with pytest.raises(InputError, match=message) as info:
        translate_qa_file(qa, "es", out, FakeTranslator())
    assert str(qa) in str(info.value)
    assert not out.exists()


@needs_apertium
def test_translate_qa_file_with_apertium(tmp_path):
    qa = tmp_path / "en.jsonl"
    _write_qa(qa, QA)
    translator = CachedTranslator(ApertiumTranslator(), tmp_path / "cache.sqlite")
    stats = translate_qa_file(qa, "gl", tmp_path / "gl.jsonl", translator)
    records = read_jsonl(tmp_path / "gl.jsonl")
    assert len(records) == 3 and stats["empty_translations"] == 0
    assert all(record["question"] != pair["question"] for record, pair in zip(records, QA))
