"""`cluewsc`: CLUEWSC2020 (CLUE's Chinese Winograd Schema Challenge), the 304 labelled dev rows, zero-shot.

Data: ``cluewsc/dev.json`` (JSON lines: idx, text, target {span1_text, span1_index, span2_text, span2_index}, label
"true"/"false"), the official ``cluewsc2020_public.zip`` dev file. The paper names no split; ``dev`` is the labelled
public one and what the OpenCompass DeepSeek-R1 reproduction configs load; results.json records it. Problem ids are
the dataset's ``idx``.

Prompt: OpenCompass's CLUEWSC question (the sentence, then ``此处，“{pronoun}”是否指代“{candidate}”？`` with
``A. 是`` / ``B. 否``; label true -> A, false -> B), made zero-shot as the paper did: an instruction to reason and end
with ``答案：X`` instead of the bare ``答：``. Scoring: the shared choice verifier over A/B, Chinese strict pattern.
"""
from __future__ import annotations

from typing import Any

from harness import data as hdata
from harness.data import HubSource
from harness.errors import UserError
from harness.task import Problem, Prompt, ScoreItem, Task
from harness.verifiers import choice
from harness.verifiers.base import Verdict
from tasks.ceval import zh_instruction

RELPATH = "cluewsc/dev.json"
LETTERS = "AB"
LABEL_TO_LETTER = {"true": "A", "false": "B"}


def problems_from_rows(rows, where: str) -> list[Problem]:
    out = []
    for lineno, row in rows:
        at = f"{where}: line {lineno}"
        target = row.get("target")
        if not isinstance(target, dict) or not target.get("span1_text") or not target.get("span2_text"):
            raise UserError(f"{at}: field 'target' needs span1_text and span2_text")
        if row.get("idx") is None or not row.get("text"):
            raise UserError(f"{at}: fields 'idx' and 'text' are required")
        label = str(row.get("label"))
        if label not in LABEL_TO_LETTER:
            raise UserError(f"{at}: field 'label' must be \"true\" or \"false\", got {row.get('label')!r}")
        out.append(Problem(id=str(row["idx"]), gold=LABEL_TO_LETTER[label], question=str(row["text"]),
                           meta={"label": label, "span1": str(target["span1_text"]),
                                 "span2": str(target["span2_text"])}))
    return out


class CLUEWSC(Task):
    name = "cluewsc"
    default_k = 1
    hub = HubSource("clue", revision="main", split="validation", config="cluewsc2020")
    files = (RELPATH,)
    breakdowns = ("label",)

    def load_problems(self, data_dir=None) -> list[Problem]:
        path = hdata.resolve(RELPATH, self.hub, data_dir)
        self.data_hashes = {RELPATH: hdata.file_sha256(path)}
        return problems_from_rows(hdata.json_lines(path), str(path))

    def prompt(self, problem: Problem, seed: int) -> Prompt:
        text = (f"{problem.question}\n此处，“{problem.meta['span2']}”是否指代“{problem.meta['span1']}”？\n"
                f"A. 是\nB. 否\n\n" + zh_instruction(LETTERS))
        return Prompt(messages=[{"role": "user", "content": text}], meta={"gold_letter": problem.gold})

    def score(self, item: ScoreItem) -> Verdict:
        return choice.verify(item.problem.gold, item.completion, item.finish_reason, letters=LETTERS, primary="zh")

    def extra_results(self, problems: list[Problem], records: list[dict]) -> dict[str, Any]:
        out = choice.extraction_summary(records)
        out["split"] = "dev"  # the paper does not name one; dev is the labelled public split
        out["protocol_note"] = "dev split (the labelled public one; the paper names no split)"
        return out


TASKS = [CLUEWSC()]
