"""Training-data sources (config key `qa.source`): each reads one kind of QA data into
*source pairs*, the one record shape every later step of the data stage reads.

A source pair is a JSON object::

    {"pair_id": "mlqa-r:5f1e...",      # unique within the source; stable across runs
     "group": "Pappataci fever",       # what the dev split keeps together (article, paragraph
                                       # or category): pairs of one group never straddle it
     "title": "Pappataci fever",       # article title where the source has one, else null
                                       # (the leakage check reports article-level overlap)
     "texts": {"en": {"question": "...", "answer": "..."},   # human texts only, by language
               "de": {"question": "...", "answer": "..."}}}

Languages a source lacks are filled later by machine translation (rule `translate`) and
marked as such; a loader never invents text. Loaders raise `InputError` naming the file and
record for bad input.

Kinds and their modules: `chatterbot` (xlir.data.prepare_qa's chatterbot reader),
`lareqa` (XQuAD-R / MLQA-R files), `squad` (SQuAD-format JSON, ReQA-style sentences),
`jsonl` (`{id, question, answer}` or `{id, texts}` lines), `hf` (a `datasets` dataset).
"""

from __future__ import annotations

SOURCE_KINDS = ("chatterbot", "lareqa", "squad", "jsonl", "hf")
