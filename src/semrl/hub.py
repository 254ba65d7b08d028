"""Is the Hugging Face hub usable from here? Decided once per process, in well under a second.

Without a network the hub client retries each request with backoff (over a minute per model);
semrl asks first, so a model that is neither local nor cached is reported at once, naming it.
"""

from __future__ import annotations

import functools
import os
import socket
from urllib.parse import urlparse

from semrl.errors import UserError


def hub_offline_requested() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").strip().lower() not in ("", "0", "false", "no")


@functools.lru_cache(maxsize=1)
def hub_reachable(timeout: float = 2.0) -> bool:
    """False when HF_HUB_OFFLINE is set or the hub's host cannot be resolved and connected to."""
    if hub_offline_requested():
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def cached_locally(repo_id: str) -> bool:
    from huggingface_hub import snapshot_download

    try:
        snapshot_download(repo_id, local_files_only=True)
    except Exception:  # noqa: BLE001 - any failure means "not in the cache"
        return False
    return True


def require_available(repo_id: str, what: str) -> None:
    """Raise a UserError at once for a hub id that is not cached while the hub is unreachable."""
    if cached_locally(repo_id) or hub_reachable():
        return
    why = "HF_HUB_OFFLINE is set" if hub_offline_requested() else "the hub is not reachable from here"
    raise UserError(
        f"{what} {repo_id!r}: not a local folder and not in the Hugging Face cache, and {why}; "
        "download it once on a connected machine or give a folder"
    )
