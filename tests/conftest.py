"""Shared fixtures: tiny models and data that the tests build themselves (no network)."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY_TEXTS = [
    "what is the capital of france",
    "paris is the capital of france",
    "how do plants make food",
    "plants use photosynthesis",
    "cuál es la capital de francia",
    "parís es la capital de francia",
    "quina és la capital de frança",
    "com fan menjar les plantes",
    "las plantas usan la fotosíntesis",
    "who wrote hamlet",
    "shakespeare wrote hamlet",
    "what is water made of",
    "hydrogen and oxygen",
] * 3


def build_tiny_model(path: Path, num_layers: int = 2, hidden: int = 32) -> Path:
    """A randomly initialised BERT with a WordPiece tokenizer trained on TINY_TEXTS."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=300, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    tokenizer.train_from_iterator(TINY_TEXTS + ["query: passage:"], trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=fast.vocab_size,
        hidden_size=hidden,
        num_hidden_layers=num_layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=64,
    )
    BertModel(config, add_pooling_layer=False).save_pretrained(str(path), safe_serialization=True)
    fast.save_pretrained(str(path))
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny_bert") / "model")


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models: one thread is faster than two on a shared 2-core machine (modules opt in
    with `pytestmark = pytest.mark.usefixtures("one_torch_thread")`)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ------------------------------------------------------------------ test tiers (make test-fast)
#: modules whose tests start Snakemake, torchrun, Pyserini / Lucene or the whole tiny study
SLOW_MODULES = {
    "test_workflow",
    "test_lr_sweep",
    "test_large_cluster",
    "test_readme_commands",
    "test_config_injection",
    "test_fault_injection",
    "test_distributed",
    "test_plan_time",
    "test_retrieval",
    "test_real_benchmarks",
    "test_evaluate",
    "test_paper_plan",
    "test_report_html",
}
#: a test elsewhere is slow when its own code starts one of these
SLOW_CALLS = ("snakemake", "dry_run", "torchrun", "subprocess", "pyserini", "chromium", "assert_renders")


def _is_slow(item: pytest.Item) -> bool:
    import inspect

    module = item.module.__name__.rsplit(".", 1)[-1] if getattr(item, "module", None) else ""
    if module in SLOW_MODULES or item.get_closest_marker("integration"):
        return True
    try:
        source = inspect.getsource(item.function)
    except (OSError, TypeError, AttributeError):
        return False
    return any(call in source for call in SLOW_CALLS)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the slow tests (`make test-fast` runs the others: -m "not slow")."""
    for item in items:
        if _is_slow(item):
            item.add_marker(pytest.mark.slow)
