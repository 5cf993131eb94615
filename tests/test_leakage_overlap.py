"""The leakage check at scale: find_overlap against an all-pairs reference, exact n-gram ids,
article-level overlap and the article titles of LAReQA questions and candidates."""

from __future__ import annotations

import json
import random

from xlir.benchmarks.build_demo_benchmark import lareqa_document
from xlir.benchmarks.lareqa import load_lareqa, prepare_lareqa
from xlir.benchmarks.leakage import check_leakage
from xlir.common.io import read_jsonl, write_jsonl
from xlir.data.overlap import char_ngrams, find_overlap, gram_sets, normalise
from xlir.data.titles import article_overlap, normalise_title


def all_pairs_overlap(train, evaluation, n=5, threshold=0.8, min_chars=12) -> dict:
    """The definition, every evaluation text against every training text (ties: the earlier text)."""
    first = {}
    for origin, text in train:
        first.setdefault(normalise(text), origin)
    grams = [char_ngrams(text, n) for _, text in train]
    exact, near = [], []
    for origin, text in evaluation:
        key = normalise(text)
        if key and key in first:
            exact.append({"eval": origin, "train": first[key], "text": text})
            continue
        if len(key) < min_chars:
            continue
        g = char_ngrams(text, n)
        best, best_j = None, 0.0
        for j, other in enumerate(grams):
            inter = len(g & other)
            if inter / (len(g) + len(other) - inter) > best_j:
                best, best_j = j, inter / (len(g) + len(other) - inter)
        if best is not None and best_j >= threshold:
            near.append(
                {
                    "eval": origin,
                    "train": train[best][0],
                    "jaccard": round(best_j, 4),
                    "eval_text": text,
                    "train_text": train[best][1],
                }
            )
    return {"exact": exact, "near": near}


def random_texts(rng: random.Random, count: int, words: list[str]) -> list[str]:
    return [" ".join(rng.choices(words, k=rng.randint(3, 18))) + rng.choice([".", "?", "!", ""]) for _ in range(count)]


def edited(rng: random.Random, text: str, words: list[str]) -> str:
    tokens = text.split()
    for _ in range(rng.randint(1, 3)):
        where = rng.randrange(len(tokens))
        if rng.random() < 0.5:
            tokens[where] = rng.choice(words)
        else:
            tokens.insert(where, rng.choice(words))
    return " ".join(tokens)


def test_find_overlap_equals_the_all_pairs_reference():
    rng = random.Random(11)
    words = ["".join(rng.choices("abcdefghiklmnoprstuvwyzäéñ", k=rng.randint(1, 9))) for _ in range(400)]
    train_texts = random_texts(rng, 300, words) + ["ok", "", "Yes!"]
    train = [(f"t{i}", text) for i, text in enumerate(train_texts)]
    evaluation = []
    for i in range(300):
        source = rng.choice(train_texts[:300])
        kind = rng.random()
        if kind < 0.2:
            text = source.upper() + " ?"  # an exact overlap after normalisation
        elif kind < 0.6:
            text = edited(rng, source, words)  # near, or not, depending on the edit and the length
        else:
            text = random_texts(rng, 1, words)[0]
        evaluation.append((f"e{i}", text))
    evaluation += [("short", "OK"), ("empty", "?!")]
    for threshold in (0.8, 0.5, 0.3):
        got = find_overlap(train, evaluation, n=5, threshold=threshold)
        assert got == all_pairs_overlap(train, evaluation, n=5, threshold=threshold)
    assert len(got["exact"]) > 40 and len(got["near"]) > 40
    assert find_overlap(train, evaluation, n=3, threshold=0.6) == all_pairs_overlap(train, evaluation, 3, 0.6)
    # many n-grams frequent: candidates come from the rare ones, intersections count both kinds
    assert find_overlap(train, evaluation, n=5, threshold=0.3, max_df=3) == all_pairs_overlap(train, evaluation, 5, 0.3)


def test_gram_ids_are_exact_also_for_large_alphabets():
    rng = random.Random(3)
    # 8,000 distinct CJK characters: alphabet**5 passes 2**63, so the keys are re-densified
    han = [chr(c) for c in rng.sample(range(0x4E00, 0x9FFF), 8000)]
    texts = ["".join(rng.choices(han, k=rng.randint(1, 40))) for _ in range(400)]
    texts += [texts[0][:3], "ab", "", "ab ab ab"]
    normalised = [normalise(t) for t in texts]
    offsets, ids, _ = gram_sets(normalised, 5)
    name: dict[int, str] = {}
    for t, text in enumerate(texts):
        mine = ids[offsets[t] : offsets[t + 1]].tolist()
        grams = char_ngrams(text, 5)
        assert len(mine) == len(set(mine)) == len(grams) and mine == sorted(mine)
        for gram_id in mine:
            name.setdefault(gram_id, "")
    # equal n-grams get equal ids across texts: the id count is the number of distinct n-grams
    assert len(name) == len(set().union(*(char_ngrams(t, 5) for t in texts)))


def test_article_overlap_normalises_titles():
    assert normalise_title("Super_Bowl_50") == normalise_title("super  bowl 50") == "super bowl 50"
    assert normalise_title("Ｐｒｉｍｅ_Number") == "prime number"  # NFKC
    report = article_overlap(
        ["Prime number", "Harvard University", None, "", "prime_number", "Warsaw"],
        ["Prime_number", "Harvard_University", "Normans", None],
        max_examples=1,
    )
    assert (report["n_training_titles"], report["n_eval_titles"], report["n_shared_titles"]) == (3, 3, 2)
    assert report["shared_fraction_of_eval_titles"] == 0.6667
    assert report["examples"] == [
        {"title": "harvard university", "train": "Harvard University", "eval": "Harvard_University"}
    ]
    assert article_overlap([], [None])["n_shared_titles"] == 0


def write_lareqa(folder, lang: str, articles: list[tuple[str | None, list[dict]]]) -> None:
    document = {"data": []}
    for title, items in articles:
        article = lareqa_document([items], title or "")["data"][0]
        if title is None:
            del article["title"]
        document["data"].append(article)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{lang}.json").write_text(json.dumps(document))


def test_lareqa_questions_and_candidates_keep_their_article_title(tmp_path):
    write_lareqa(
        tmp_path / "raw",
        "en",
        [
            ("Prime_number", [{"id": "q1", "question": "What is a prime?", "answer": "A number with two divisors."}]),
            (None, [{"id": "q2", "question": "Who?", "answer": "Ann."}]),
        ],
    )
    bench = load_lareqa(tmp_path / "raw", ["en"])
    assert [q["title"] for q in bench.questions] == ["Prime_number", None]
    assert [c["title"] for c in bench.candidates] == ["Prime_number", None]
    prepare_lareqa(tmp_path / "raw", ["en"], tmp_path / "prep")
    assert [q["title"] for q in read_jsonl(tmp_path / "prep" / "questions.jsonl")] == ["Prime_number", None]
    assert read_jsonl(tmp_path / "prep" / "candidates.jsonl")[0]["title"] == "Prime_number"


def test_check_leakage_reports_article_overlap_without_failing(tmp_path):
    write_lareqa(
        tmp_path / "raw",
        "en",
        [
            ("Prime_number", [{"id": "q1", "question": "What is a prime?", "answer": "A number with two divisors."}]),
            ("Warsaw", [{"id": "q2", "question": "Where is Warsaw?", "answer": "Warsaw lies on the Vistula."}]),
        ],
    )
    prepare_lareqa(tmp_path / "raw", ["en"], tmp_path / "prep")
    pairs = [
        {
            "pair_id": f"p{i}",
            "group": title,
            "title": title,
            "texts": {"en": {"question": f"unrelated question {i}", "answer": f"an unrelated answer number {i}"}},
        }
        for i, title in enumerate(["Prime number", "Harvard University", None])
    ]
    write_jsonl(tmp_path / "train.jsonl", pairs)
    report = check_leakage(tmp_path / "train.jsonl", tmp_path / "prep", tmp_path / "leak.json")
    assert report["passed"] and report["total_overlap"] == 0
    articles = json.loads((tmp_path / "leak.json").read_text())["article_overlap"]
    assert (articles["n_training_titles"], articles["n_eval_titles"], articles["n_shared_titles"]) == (2, 2, 1)
    assert articles["examples"] == [{"title": "prime number", "train": "Prime number", "eval": "Prime_number"}]
    for pair in pairs:
        pair["title"] = None
    write_jsonl(tmp_path / "untitled.jsonl", pairs)
    assert (
        check_leakage(tmp_path / "untitled.jsonl", tmp_path / "prep", tmp_path / "leak2.json")["article_overlap"]
        is None
    )
