"""The Hugging Face hub as a source of models: is a model in the local cache, does the hub
answer. Shared by the load-time config checks (`xlir.config_checks`) and rule `prepare_model`."""

from __future__ import annotations

import os
import urllib.error
import urllib.request


def hub_model_cached(hub_id: str, revision: str | None = None) -> bool:
    """Whether the local Hugging Face cache holds `hub_id` (its config.json at `revision`)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    try:
        found = try_to_load_from_cache(hub_id, "config.json", revision=revision)
    except Exception:  # an id the hub library rejects is not cached
        return False
    return isinstance(found, str)


def hub_cache_dir() -> str:
    try:
        from huggingface_hub.constants import HF_HUB_CACHE

        return str(HF_HUB_CACHE)
    except ImportError:
        return "~/.cache/huggingface/hub"


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def hub_reachable(endpoint: str, timeout: float = 10.0) -> str | None:
    """None when `endpoint` answers within `timeout` seconds, else why not (one try, no retries:
    the hub library's own retries take about a minute before they report the same)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(endpoint, method="HEAD"), timeout=timeout):
            return None
    except urllib.error.HTTPError:
        return None  # it answered
    except (OSError, ValueError) as error:
        return str(getattr(error, "reason", error))
