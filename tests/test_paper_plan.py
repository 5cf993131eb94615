"""config/paper.yaml's batch plans: every sampling x seed of its grid plans on a training set
shaped like its own (SQuAD v1.1 train, ReQA-style, in its 11 training languages), with no
cross-language false negatives; and repeated source pairs are collapsed before planning.

SQuAD itself is not available offline, so the training set is synthetic, with SQuAD v1.1
train's shape: 87,599 questions on 18,896 paragraphs of 442 articles, 1 to ~15 questions a
paragraph (4.6 on average), 3 to 8 sentences a paragraph, the answer sentence skewed to
the first sentences (so many questions of one paragraph share their answer), a few generic
questions asked on many paragraphs, a few generic sentences in many paragraphs, some
questions asked twice on one paragraph with the same answer (exact repeats, some differing
only in case or punctuation), and a few pairs whose machine translation into one language
came back empty. The dev split is the real `split_pairs` with paper.yaml's `qa.dev` and
`qa.seed`; machine translation is simulated as deterministic per text (as rule `translate`'s
cache is), so a repeated English text repeats in every language."""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from xlir.common.io import read_json, read_jsonl, write_json, write_jsonl
from xlir.data.build_train_set import build_training_pairs, collapse_repeated_pairs
from xlir.data.prepare_qa import split_pairs
from xlir.report.training_data import source_text
from xlir.train.plan_batches import plan_batches

ROOT = Path(__file__).resolve().parents[1]
PAPER = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text(encoding="utf-8"))

SQUAD_V11_TRAIN = {"questions": 87_599, "paragraphs": 18_896, "articles": 442}
GENERIC_QUESTIONS = [f"What is the name of the {thing}?" for thing in ("river", "city", "king", "team", "school")] + [
    f"In what year did the {event} happen?" for event in ("war", "flood", "treaty", "election", "merger")
]
GENERIC_SENTENCES = [f"It was founded in {year}." for year in (1850, 1901, 1923, 1960)]


def squad_like_source(seed: int = 0) -> tuple[list[dict], int]:
    """English source pairs shaped like SQuAD v1.1 train (module docstring) and the number
    of exact repeats planted."""
    rng = random.Random(seed)
    n_paragraphs = SQUAD_V11_TRAIN["paragraphs"]
    per_paragraph = [1] * n_paragraphs
    for _ in range(SQUAD_V11_TRAIN["questions"] - n_paragraphs):
        per_paragraph[rng.randrange(n_paragraphs)] += 1
    pairs, planted = [], 0
    for p, n_questions in enumerate(per_paragraph):
        title = f"Article {p * SQUAD_V11_TRAIN['articles'] // n_paragraphs}"
        n_sentences = rng.randint(3, 8)
        sentences = [
            rng.choice(GENERIC_SENTENCES) if rng.random() < 0.003 else f"{title}, paragraph {p}, sentence {s}."
            for s in range(n_sentences)
        ]
        weights = [1 / (s + 1) for s in range(n_sentences)]
        asked: list[tuple[str, str]] = []
        for k in range(n_questions):
            if asked and rng.random() < 0.005:
                question, answer = rng.choice(asked)
                question = rng.choice([question, question.lower(), question.rstrip("?"), f" {question} "])
                planted += 1
            else:
                answer = sentences[rng.choices(range(n_sentences), weights)[0]]
                if rng.random() < 0.01:
                    question = rng.choice(GENERIC_QUESTIONS)
                else:
                    question = f"Question {k} on paragraph {p} of {title}?"
                asked.append((question, answer))
            pairs.append(
                {
                    "pair_id": f"squad:{p}-{k}",
                    "group": f"{title}#{p}",
                    "title": title,
                    "texts": {"en": {"question": question, "answer": answer}},
                }
            )
    assert len(pairs) == SQUAD_V11_TRAIN["questions"]
    return pairs, planted


def with_translations(pair: dict, languages: list[str], rng: random.Random) -> dict:
    """The pair in every training language (machine translation: one output per English text);
    about 1 pair in 200 lost one language (an empty translation, left out as build_train_set does)."""
    english = pair["texts"]["en"]
    lost = rng.choice(languages[1:]) if rng.random() < 0.005 else None
    texts = {
        lang: english if lang == "en" else {field: f"[{lang}] {english[field]}" for field in ("question", "answer")}
        for lang in languages
        if lang != lost
    }
    return {**pair, "texts": texts}


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[\W_]+", " ", text.casefold()).split())


@pytest.fixture(scope="module")
def paper_training_set() -> tuple[list[dict], dict]:
    """The paper-shaped training pairs after the dev split and the collapsing of repeats."""
    languages = PAPER["training"]["languages"]
    source, planted = squad_like_source()
    dev = PAPER["qa"]["dev"]
    split = split_pairs(source, None, dev["fraction"], dev["max_pairs"], PAPER["qa"]["seed"])
    by_id = {p["pair_id"]: p for p in source}
    rng = random.Random(1)
    train = [with_translations(by_id[i], languages, rng) for i in split["train_pair_ids"]]
    train, collapsed = collapse_repeated_pairs(train)
    info = {"planted": planted, "collapsed": len(collapsed), "dev": len(split["dev_pair_ids"])}
    return train, info


def test_the_paper_shaped_training_set(paper_training_set):
    train, info = paper_training_set
    # the dev split holds out about qa.dev.max_pairs questions, by paragraph; most planted repeats are in train
    assert PAPER["qa"]["dev"]["max_pairs"] <= info["dev"] < PAPER["qa"]["dev"]["max_pairs"] + 20
    assert 0.9 * info["planted"] <= info["collapsed"] <= info["planted"] + 5
    assert len(train) == SQUAD_V11_TRAIN["questions"] - info["dev"] - info["collapsed"]
    keys = Counter((_norm(p["texts"]["en"]["question"]), _norm(p["texts"]["en"]["answer"])) for p in train)
    assert max(keys.values()) == 1  # no repeated source pair reaches the planner
    answers = Counter(_norm(p["texts"]["en"]["answer"]) for p in train)
    assert sum(n for n in answers.values() if n > 1) > len(train) / 2  # most answers are shared (SQuAD-like)


@pytest.mark.parametrize("sampling", sorted(PAPER["samplings"]))
def test_paper_grid_plans_every_seed(paper_training_set, sampling):
    """Each of paper.yaml's seeds plans `steps` full batches under the sampling, none holding two
    items whose source pairs share a normalised English question or answer, each pair drawn only
    in languages it has (monolingual batches in one language, cross-lingual items in two). About
    4 s a plan and 23 s a sampling (five plans and their checks) on one core of a busy 2-core
    machine; the whole module, the training set built once, about 80 s."""
    train, _ = paper_training_set
    training = PAPER["training"]
    languages, batch_size, steps = training["languages"], training["batch_size"], training["steps"]
    by_id = {p["pair_id"]: p for p in train}
    english = {i: (_norm(p["texts"]["en"]["question"]), _norm(p["texts"]["en"]["answer"])) for i, p in by_id.items()}
    timings = {}
    alpha = PAPER["samplings"][sampling]["alpha"]
    for seed in PAPER["seeds"]:
        started = time.perf_counter()
        plan = plan_batches(train, languages, alpha, batch_size, steps, seed)
        timings[seed] = time.perf_counter() - started
        assert [b["step"] for b in plan] == list(range(steps))
        kinds = Counter(b["kind"] for b in plan)
        if alpha in (0.0, 1.0):
            assert kinds == {("mono" if alpha else "cross"): steps}
        else:
            assert abs(kinds["mono"] / steps - alpha) < 0.06  # binomial(1000, 0.5): 4 standard deviations
        for batch in plan:
            items = batch["items"]
            assert len(items) == batch_size, (sampling, seed, batch["step"])
            questions, answers, queries, passages, langs = set(), set(), set(), set(), set()
            for item in items:
                pair_id, q_lang, p_lang = item["pair_id"], item["query_lang"], item["passage_lang"]
                texts = by_id[pair_id]["texts"]
                assert q_lang in texts and p_lang in texts, (sampling, seed, item)  # languages the pair has
                questions.add(english[pair_id][0])
                answers.add(english[pair_id][1])
                # the planner's own guarantee on the drawn texts (case and whitespace ignored)
                queries.add(" ".join(texts[q_lang]["question"].casefold().split()))
                passages.add(" ".join(texts[p_lang]["answer"].casefold().split()))
                langs.add((q_lang, p_lang))
            assert len(questions) == batch_size, (
                f"{sampling}/seed{seed} step {batch['step']}: a shared English question"
            )
            assert len(answers) == batch_size, f"{sampling}/seed{seed} step {batch['step']}: a shared English answer"
            assert len(queries) == len(passages) == batch_size
            if batch["kind"] == "mono":
                assert len(langs) == 1 and all(q == p for q, p in langs)
            else:
                assert all(q != p for q, p in langs)
    print(f"{sampling} plan seconds:", {seed: round(t, 1) for seed, t in timings.items()})


def test_build_train_set_collapses_repeated_source_pairs(tmp_path):
    """The same English question and answer (up to case, whitespace and punctuation) is kept
    once, within train and within dev, and counted; a shared question or answer alone is not
    a repeat; a pair without English repeats another only with the same texts (up to case and
    whitespace) in every language."""
    rows = [
        ("a1", "g1", "Who built it?", "Ann built it."),
        ("a2", "g1", "who built it", "Ann built it!"),  # repeats a1
        ("a3", "g1", "Who built it?", "Bob built it."),  # the same question, another answer: kept
        ("a4", "g1", "When was it built?", "Ann built it."),  # the same answer, another question: kept
        ("d1", "g2", "Where is it?", "It is in Rome."),
        ("d2", "g2", "Where is it ?", "It is in Rome."),  # repeats d1 (dev)
    ]
    pairs = [{"pair_id": i, "group": g, "texts": {"en": {"question": q, "answer": a}}} for i, g, q, a in rows]
    pairs += [
        {"pair_id": f"x{i}", "group": "g1", "texts": {"de": {"question": "Wer?", "answer": answer}}}
        for i, answer in enumerate(["Anna.", "Anna.", "Berta."])
    ]
    # Hindi questions differing only in vowel signs (which `normalise` drops) are not repeats
    pairs += [
        {"pair_id": f"h{i}", "group": "g1", "texts": {"hi": {"question": question, "answer": "बहुत।"}}}
        for i, question in enumerate(["कितना है?", "कतन है?"])
    ]
    write_jsonl(tmp_path / "pairs.jsonl", pairs)
    train_ids = ["a1", "a2", "a3", "a4", "x0", "x1", "x2", "h0", "h1"]
    write_json(
        tmp_path / "split.json",
        {"train_pair_ids": train_ids, "dev_pair_ids": ["d1", "d2"], "heldout_pair_ids": []},
    )
    stats = build_training_pairs(
        tmp_path / "pairs.jsonl",
        tmp_path / "split.json",
        {},
        ["en", "de", "hi"],
        tmp_path / "train.jsonl",
        tmp_path / "dev.jsonl",
        tmp_path / "stats.json",
    )
    assert [r["pair_id"] for r in read_jsonl(tmp_path / "train.jsonl")] == ["a1", "a3", "a4", "x0", "x2", "h0", "h1"]
    assert [r["pair_id"] for r in read_jsonl(tmp_path / "dev.jsonl")] == ["d1"]
    assert stats["collapsed_repeated_pairs"] == 2 and stats["dev_collapsed_repeated_pairs"] == 1
    assert stats["collapsed_examples"] == {"a2": "a1", "x1": "x0"}
    assert read_json(tmp_path / "stats.json")["n_pairs"] == 7
    text = source_text(stats, {}, {"steps": 2, "batch_size": 2})
    assert "2 repeated training pairs (the same English question and answer), kept once" in text
    assert "1 repeated dev pairs, kept once" in text


def test_planner_warns_about_repeats_it_is_given(caplog):
    """A pairs file with repeated source pairs (not built by build_train_set) still plans with
    the repeats kept apart, and the planner says so."""
    pairs = [
        {"pair_id": f"p{i}", "texts": {lang: {"question": f"{lang} q{i}", "answer": f"{lang} a{i}"} for lang in "xy"}}
        for i in range(20)
    ]
    pairs = [
        {**p, "texts": {**p["texts"], "en": {"question": f"Q{i}?", "answer": f"A{i}."}}} for i, p in enumerate(pairs)
    ]
    pairs.append(
        {
            "pair_id": "again",
            "texts": {"en": {"question": "q0", "answer": "a0"}, "x": {"question": "xq", "answer": "xa"}},
        }
    )
    with caplog.at_level("INFO", logger="xlir.train.plan_batches"):
        plan = plan_batches(pairs, ["en", "x", "y"], 0.5, 8, 30, seed=0)
    assert "1 training pairs repeat another pair's English question and answer" in caplog.text
    assert "1 share their English question and 1 their English answer" not in caplog.text
    assert "2 share their English question and 2 their English answer" in caplog.text
    for batch in plan:
        assert not {"p0", "again"} <= {item["pair_id"] for item in batch["items"]}


def test_a_question_shared_by_more_pairs_than_batches_can_take_is_capped():
    """chatterbot's shape: 30 of ~500 pairs ask "tell me a joke". At batch 100 for 1000 steps
    (190 epochs) they cannot be drawn once an epoch each, one a batch: they wait, at most once
    each, and are drawn less often, where a backlog growing every epoch once made the plan fail."""
    pairs = [
        {
            "pair_id": f"p{i:03d}",
            "texts": {
                "en": {"question": "Tell me a joke." if i < 30 else f"question {i}?", "answer": f"answer {i}."},
                "es": {"question": f"pregunta {i}" if i >= 30 else "Cuéntame un chiste.", "answer": f"respuesta {i}"},
            },
        }
        for i in range(500)
    ]
    jokes = {f"p{i:03d}" for i in range(30)}
    for alpha in (0.0, 0.5, 1.0):
        plan = plan_batches(pairs, ["en", "es"], alpha, 100, 1000, seed=13)
        assert all(len(b["items"]) == 100 for b in plan)
        assert all(len(jokes & {i["pair_id"] for i in b["items"]}) <= 1 for b in plan)
        draws = Counter(i["pair_id"] for b in plan for i in b["items"])
        assert len(draws) == 500 and max(draws[j] for j in jokes) < min(draws[p] for p in draws if p not in jokes)
