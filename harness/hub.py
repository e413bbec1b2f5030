"""The Hugging Face hub, asked once whether it is there before anything is loaded from it.

Without a network, `datasets` and `transformers` retry each file five times with back-off (about 25 s of warnings,
each printed twice) before failing with an error that does not say what to do. One HEAD request to the hub's endpoint
(``HF_ENDPOINT``, default huggingface.co; through the proxy settings the libraries use too; a few seconds at most,
once per process) settles it instead:

* reachable (any HTTP answer), or ``HF_HUB_OFFLINE=1`` (the libraries then read their cache themselves): load as
  usual;
* unreachable, and the model's files are in the local Hugging Face cache: load them from there
  (``local_files_only=True``), as ``HF_HUB_OFFLINE=1`` would;
* unreachable and not cached: one line naming the hub id, the host and what to pass instead.
"""
from __future__ import annotations

import os

from .errors import UserError

PROBE_TIMEOUT_S = 5.0
_probed: dict[str, str | None] = {}


def offline(datasets: bool = False) -> bool:
    """``HF_HUB_OFFLINE=1`` (for dataset loading also ``HF_DATASETS_OFFLINE=1``): the libraries read their cache only."""
    names = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE") if datasets else ("HF_HUB_OFFLINE",)
    return any(os.environ.get(v) == "1" for v in names)


def unreachable() -> str | None:
    """Why the hub cannot be reached from here ("cannot reach huggingface.co:443 ([Errno -2] Name or service not known)"), or None when it
    answers, or when offline mode is on (nothing to probe)."""
    if offline():
        return None
    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    if endpoint not in _probed:
        import httpx

        try:  # any status is an answer; only a transport failure (DNS, refused, timeout, proxy down) is "unreachable"
            httpx.head(endpoint, timeout=PROBE_TIMEOUT_S)
            _probed[endpoint] = None
        except httpx.TransportError as e:
            url = httpx.URL(endpoint)
            port = url.port or (80 if url.scheme == "http" else 443)
            _probed[endpoint] = f"cannot reach {url.host}:{port} ({str(e) or type(e).__name__})"
    return _probed[endpoint]


def model_load_kwargs(repo_id: str, revision: str | None, flag: str = "--model",
                      filename: str = "config.json") -> dict:
    """Extra ``from_pretrained`` kwargs for a hub model id: {} when the hub can be asked; ``local_files_only`` when it
    cannot but ``filename`` of the model is in the local cache; a UserError naming the id otherwise."""
    why = unreachable()
    if why is None:
        return {}
    try:
        from huggingface_hub import try_to_load_from_cache
        cached = try_to_load_from_cache(repo_id, filename, revision=revision)
    except Exception:  # noqa: BLE001 - an old or missing huggingface_hub: treat as not cached
        cached = None
    if isinstance(cached, str):
        return {"local_files_only": True}
    at = f"@{revision}" if revision else ""
    raise UserError(f"{flag} {repo_id}{at}: {why} and the model is not in the local Hugging Face cache: download it "
                    f"where the hub is reachable (`hf download {repo_id}`) and pass its directory, or a .gguf file")


def local_or_hub(model: str, flag: str = "--model") -> str:
    """``org/name[@revision]`` as something ``from_pretrained`` can load here: the id itself when the hub can be asked
    (or offline mode is on), the cached snapshot directory when the hub is unreachable but the model was downloaded
    before, else a UserError naming the id. Anything that is not a hub id passes through."""
    from .models import looks_like_hub_id

    if not looks_like_hub_id(model):
        return model
    name, _, revision = model.partition("@")
    if not model_load_kwargs(name, revision or None, flag):
        return model
    from huggingface_hub import snapshot_download

    return snapshot_download(name, revision=revision or None, local_files_only=True)
