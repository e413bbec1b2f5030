"""Write a copy of a GGUF file with other metadata (the gguf package's own copy routine), e.g. the embedded SmolLM2
weights carrying a DeepSeek-R1-Distill chat template, to test what an R1-family template does to the prompt."""
from __future__ import annotations

import json
from pathlib import Path



def r1_distill_template(sha: str | None = None) -> str:
    """A revision of DeepSeek-R1-Distill-Qwen-1.5B's published template (default: the current one)."""
    from conftest import data_file

    d = json.loads(data_file("chat_templates/history/deepseek-ai__DeepSeek-R1-Distill-Qwen-1.5B.json")
                   .read_text(encoding="utf-8"))
    revs = {t["sha"]: t["template"] for t in d["_templates"]}
    return revs[sha] if sha else d["_templates"][-1]["template"]


def copy_gguf(src, dst, *, chat_template: str | None = None, add_bos: bool | None = None,
              name: str | None = None) -> Path:
    import logging

    import gguf
    from gguf.scripts.gguf_new_metadata import MetadataDetails, copy_with_new_metadata

    logging.getLogger("gguf-new-metadata").setLevel(logging.WARNING)
    reader = gguf.GGUFReader(str(src), "r")
    arch = reader.get_field(gguf.Keys.General.ARCHITECTURE).contents()
    writer = gguf.GGUFWriter(str(dst), arch=arch, endianess=reader.endianess)
    new: dict = {}
    if chat_template is not None:
        new[gguf.Keys.Tokenizer.CHAT_TEMPLATE] = MetadataDetails(gguf.GGUFValueType.STRING, chat_template)
    if add_bos is not None:
        new[gguf.Keys.Tokenizer.ADD_BOS] = MetadataDetails(gguf.GGUFValueType.BOOL, bool(add_bos))
    if name is not None:
        new[gguf.Keys.General.NAME] = MetadataDetails(gguf.GGUFValueType.STRING, name)
    copy_with_new_metadata(reader, writer, new, [])
    return Path(dst)
