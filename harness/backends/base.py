"""The backend protocol: ``generate(requests) -> completions``.

A backend turns chat messages into text. It implements ``_run`` (positions and completions, in completion order);
``stream`` yields (request, completion) pairs in completion order so the runner can persist each sample as soon as it
exists; ``generate`` returns the completions in request order.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Sequence

from ..errors import UserError


@dataclass(frozen=True)
class GenRequest:
    messages: tuple[dict[str, str], ...] | list[dict[str, str]]
    max_tokens: int
    temperature: float
    top_p: float
    seed: int
    stop: Sequence[str] = ()
    # Text forced at the start of the assistant turn (the paper's "<think>\n"); the backend renders the chat
    # template with a generation prompt, appends this, and generates the continuation.
    assistant_prefix: str = ""
    key: Any = None  # opaque to the backend: the runner's (task, problem_id, sample_idx)


@dataclass
class Completion:
    text: str  # generated text only (without the assistant_prefix)
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" | "length"
    latency: float  # seconds from request start to last token
    extra: dict[str, Any] = field(default_factory=dict)


class Backend:
    name = "base"

    def _run(self, requests: list[GenRequest]) -> Iterator[tuple[int, Completion]]:
        """The one method a backend implements: (position in ``requests``, completion), in completion order.
        Positions, not object identity, so the same request object may appear more than once."""
        raise NotImplementedError

    def stream(self, requests: Sequence[GenRequest]) -> Iterator[tuple[GenRequest, Completion]]:
        requests = list(requests)
        for i, comp in self._run(requests):
            yield requests[i], comp

    def generate(self, requests: Sequence[GenRequest]) -> list[Completion]:
        out = dict(self._run(list(requests)))
        return [out[i] for i in range(len(requests))]

    template = None  # the ChatTemplate the backend renders with, when it renders locally

    def model_names(self) -> list[str]:
        """Names identifying the model for ``harness.models.model_family`` (``--think-prefix auto``)."""
        return [str(getattr(self, "model", "") or "")]

    def wire(self, req: GenRequest) -> dict[str, Any]:
        """What goes to the model for ``req`` (``--dry-run``): ``{"to": ..., "text": prompt}`` when the prompt is
        rendered here, ``{"to": ..., "body": json}`` when a server renders it; optional ``"notes"``."""
        render = getattr(self, "render", None)
        if render is None:
            raise NotImplementedError
        return {"to": f"{self.name} backend", "text": render(req)}

    def describe(self) -> dict[str, Any]:
        """Model identity for the manifest (name, path, file hash or revision, backend options)."""
        return {"backend": self.name}

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


BACKENDS = {
    "llamacpp": "harness.backends.llamacpp:LlamaCppBackend",
    "hf": "harness.backends.hf:HFBackend",
    "openai": "harness.backends.openai:OpenAIBackend",
    "vllm": "harness.backends.vllm:VLLMBackend",
}


def make_backend(name: str, model: str, **options: Any) -> Backend:
    """Instantiate a backend by name; its module is imported only now (torch, llama_cpp, vllm are heavy)."""
    if name not in BACKENDS:
        raise UserError(f"unknown backend {name!r}; choose one of: {', '.join(BACKENDS)}")
    import importlib

    mod_name, cls_name = BACKENDS[name].split(":")
    cls = getattr(importlib.import_module(mod_name), cls_name)
    return cls(model, **{k: v for k, v in options.items() if v is not None})


def iter_batches(items: Iterable, size: int) -> Iterator[list]:
    batch: list = []
    for it in items:
        batch.append(it)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
