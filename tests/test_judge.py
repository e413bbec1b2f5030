"""The LLM judge end to end: `r1 eval` / `r1 score` on simpleqa and frames against scripted OpenAI-compatible servers
on 127.0.0.1 (exact verdicts: the test decides what the model and the judge answer), and a real llama_cpp.server
serving the embedded model as a (weak) judge for the plumbing."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _backend_fixtures import ScriptedServer, chat_body, free_port, start_llama_server, stop_server  # noqa: E402

from harness import judge as J  # noqa: E402
from harness.cli import main  # noqa: E402
from harness.errors import UserError  # noqa: E402
from harness.task import get_task  # noqa: E402


@pytest.fixture(autouse=True)
def _no_judge_left_behind():
    """The judge-graded tasks are registry singletons: a run leaves its judge on them (see judge.detach)."""
    yield
    J.detach([get_task("simpleqa"), get_task("frames")])


# --- parsing --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("reply,grade", [
    ("A", "CORRECT"), ("B", "INCORRECT"), ("C", "NOT_ATTEMPTED"), ("**B**", "INCORRECT"), (" C: NOT_ATTEMPTED", "NOT_ATTEMPTED"),
    ("A\n", "CORRECT"), ("The grade is INCORRECT.", "INCORRECT"), ("NOT_ATTEMPTED", "NOT_ATTEMPTED"),
    ("NOT ATTEMPTED", "NOT_ATTEMPTED"), ("CORRECT", "CORRECT"),
    # simple-evals would read these as A (first capital A) or default to C; they are unparseable here
    ("A: CORRECT\nB: INCORRECT", None), ("B: CORRECT", None),
    # the same echo cut by the judge's token limit (a real llama_cpp.server judge at 8 tokens replied this)
    ("A: CORRECT\nB: IN", None), ("A: CORRECT\nB:", None), ("A.\nC.", None),
    ("As an AI I cannot grade", None), ("", None), ("CORRECT or INCORRECT, hard to say", None), ("D", None),
])
def test_parse_simpleqa(reply, grade):
    assert J.parse_simpleqa(reply) == grade


@pytest.mark.parametrize("reply,grade", [
    ('Explanation: same person.\nDecision: "TRUE"', "TRUE"), ("Explanation: no.\nDecision: FALSE", "FALSE"),
    ("decision: true", "TRUE"), ("Decision: TRUE\n...\nDecision: FALSE", "FALSE"), ("TRUE", "TRUE"),
    ("I think TRUE, maybe FALSE", None), ("no idea", None),
    # the template's output-format line echoed back is no decision (it used to read TRUE)
    ('"Explanation:" (How you made the decision?)\n"Decision:" ("TRUE" or "FALSE" )', None),
    ('Decision: ("TRUE" or "FALSE")', None),
])
def test_parse_frames(reply, grade):
    assert J.parse_frames(reply) == grade


def test_think_block_of_a_reasoning_judge_is_skipped():
    j = J.interpret(J.SIMPLEQA, "<think>A? no, B</think>\nC", "m", "h")
    assert (j.grade, j.status) == ("NOT_ATTEMPTED", "no_answer")
    assert J.interpret(J.SIMPLEQA, "<think>A or B", "m", "h").status == "error"  # never closed: no verdict


def test_template_is_the_published_one():
    # Spot checks of the verbatim simple-evals text (its own typos included) and of the fields the judge fills.
    t = J.SIMPLEQA_TEMPLATE
    assert t.startswith("Your job is to look at a question, a gold target, and a predicted answer")
    assert t.count("Predicted answer 4:") == 3 and 'Just return the letters "A", "B", or "C", with no text around it.' in t
    assert t.endswith('with no text around it.') and len(t) == 5964
    msg = J.SIMPLEQA.messages("Q{x}?", "G{0}", "P")[0]["content"]
    assert "Question: Q{x}?\nGold target: G{0}\nPredicted answer: P\n```" in msg


# --- scripted servers -------------------------------------------------------------------------------------------------
def _field(prompt: str, name: str) -> str:
    found = re.findall(rf"^{name}: (.*)$", prompt, re.M)  # the last one: the template's examples come first
    return found[-1] if found else ""


def scripted_judge(body: dict) -> dict:
    """SimpleQA rubric: exact gold -> A, "I don't know" -> C, "PUZZLE" -> an unparseable reply, else B.
    FRAMES rubric: gold inside the answer -> Decision TRUE, else FALSE."""
    prompt = body["messages"][-1]["content"]
    if prompt.startswith("===Task==="):
        pred, gold = _field(prompt, "- Predicted Answer"), _field(prompt, "- Ground Truth Answer")
        return chat_body(f"Explanation: compared.\nDecision: {'TRUE' if gold.lower() in pred.lower() else 'FALSE'}")
    pred, gold = _field(prompt, "Predicted answer"), _field(prompt, "Gold target")
    if pred == gold:
        return chat_body("A")
    if pred == "I don't know.":
        return chat_body("C")
    if pred == "PUZZLE":
        return chat_body("Hmm, hard to say.")
    return chat_body("B")


def scripted_model(answers: dict[str, str]):
    def reply(body: dict) -> dict:
        return chat_body(answers[body["messages"][-1]["content"]])
    return reply


@pytest.fixture()
def simpleqa_answers(data_dir):
    probs = get_task("simpleqa").problems(data_dir, limit=6)
    # 0: right, 1: abstains, 2: wrong, 3: empty, 4: the judge's reply will not parse, 5: right after a think block
    texts = [probs[0].gold, "I don't know.", "Paris", "", "PUZZLE", f"<think>\nrecall...\n</think>\n\n{probs[5].gold}"]
    return {p.question: t for p, t in zip(probs, texts)}


def _eval(gen_url: str, judge_url: str | None, out: Path, task: str, limit: int, *extra: str) -> int:
    args = ["eval", "--backend", "openai", "--base-url", gen_url, "--model", "scripted", "--task", task,
            "--limit", str(limit), "--out", str(out), "--no-progress", "--max-tokens", "64", *extra]
    if judge_url:
        args += ["--judge-model", "judge-x", "--judge-base-url", judge_url]
    return main(args)


def test_simpleqa_end_to_end_with_exact_verdicts(tmp_path, simpleqa_answers, capsys):
    out = tmp_path / "run"
    with ScriptedServer([(200, scripted_model(simpleqa_answers), None)]) as gen, \
            ScriptedServer([(200, scripted_judge, None)]) as jud:
        assert _eval(gen.url, jud.url, out, "simpleqa", 6, "--paper-stage", "dev2") == 0
        assert len(jud.requests) == 5  # the empty answer never reaches the judge
        body = jud.requests[0]["body"]
        assert body["temperature"] == 0.0 and body["seed"] == J.JUDGE_SEED and body["model"] == "judge-x"
        assert all("<think>" not in r["body"]["messages"][0]["content"] for r in jud.requests)  # final answer only

        res = json.loads((out / "results.json").read_text())
        t = res["tasks"]["simpleqa"]
        assert t["verdicts"] == {"correct": 2, "incorrect": 1, "no_answer": 2, "truncated": 0, "timeout": 0, "error": 1}
        assert t["pass@1"] == pytest.approx(2 / 6) and t["correct"] == pytest.approx(2 / 6)
        assert t["incorrect"] == pytest.approx(1 / 6) and t["not_attempted"] == pytest.approx(2 / 6)
        assert t["correct_given_attempted"] == pytest.approx(2 / 3)
        assert t["f_score"] == pytest.approx(2 * (2 / 3) * (1 / 3) / (2 / 3 + 1 / 3))
        assert t["judge_unparseable"] == 1 and t["unjudged"] == pytest.approx(1 / 6)
        assert set(t["breakdowns"]) == {"topic", "answer_type"}
        man = json.loads((out / "manifest.json").read_text())
        assert man["paper_stage"] == "dev2" and man["judge"]["model"] == "judge-x" and "api_key" not in man["judge"]

        recs = {r["problem_id"]: r for r in map(json.loads, (out / "samples.jsonl").read_text().splitlines())}
        assert recs["0"]["verdict_detail"]["judge"]["raw"] == "A"
        assert recs["4"]["verdict_detail"]["judge"] == {**recs["4"]["verdict_detail"]["judge"], "grade": None,
                                                         "unparseable": True, "raw": "Hmm, hard to say."}
        assert recs["3"]["verdict"] == "no_answer" and "judge" not in recs["3"]["verdict_detail"]
        lines = [json.loads(x) for x in (out / "judgments.jsonl").read_text().splitlines()]
        assert len(lines) == 5 and {x["judge_model"] for x in lines} == {"judge-x"}
        assert {(x["task"], x["problem_id"], x["sample_idx"]) for x in lines} == {("simpleqa", p, 0) for p in "01245"}

        # r1 score: stored judgments, no judge needed and none asked
        before = len(jud.requests)
        assert main(["score", str(out)]) == 0
        assert len(jud.requests) == before
        assert json.loads((out / "results.json").read_text())["tasks"]["simpleqa"]["verdicts"] == t["verdicts"]

        # --rejudge needs the judge flags, and then asks again for every judged sample
        capsys.readouterr()
        assert main(["score", str(out), "--rejudge"]) == 2
        err = capsys.readouterr().err.strip()
        assert "--judge-model" in err and "--judge-base-url" in err and "\n" not in err
        assert main(["score", str(out), "--rejudge", "--judge-model", "judge-x", "--judge-base-url", jud.url]) == 0
        assert len(jud.requests) == before + 5
        assert len((out / "judgments.jsonl").read_text().splitlines()) == 10

        # resumable: a judgment lost (a crash before it was written) is the only one asked for again
        kept = [x for x in (out / "judgments.jsonl").read_text().splitlines() if json.loads(x)["problem_id"] != "2"]
        (out / "judgments.jsonl").write_text("\n".join(kept) + "\n")
        assert main(["score", str(out)]) == 2  # no judge given: one line naming the flags
        assert "--judge-model" in capsys.readouterr().err
        assert main(["score", str(out), "--judge-model", "judge-x", "--judge-base-url", jud.url]) == 0
        assert len(jud.requests) == before + 6
        again = json.loads((out / "results.json").read_text())["tasks"]["simpleqa"]
        assert again["verdicts"] == t["verdicts"]

        # a different judge model does not reuse another judge's verdicts
        assert main(["score", str(out), "--judge-model", "judge-y", "--judge-base-url", jud.url]) == 0
        assert len(jud.requests) == before + 11


def test_frames_end_to_end(tmp_path, data_dir):
    probs = get_task("frames").problems(data_dir, limit=3)
    answers = {probs[0].question: f"The answer is {probs[0].gold}.", probs[1].question: "No idea at all",
               probs[2].question: "<think>\nhmm"}
    out = tmp_path / "frames"
    with ScriptedServer([(200, scripted_model(answers), None)]) as gen, \
            ScriptedServer([(200, scripted_judge, None)]) as jud:
        assert _eval(gen.url, jud.url, out, "frames", 3) == 0
        assert len(jud.requests) == 2  # the unclosed think block is truncated, never judged
    t = json.loads((out / "results.json").read_text())["tasks"]["frames"]
    assert (t["verdicts"]["correct"], t["verdicts"]["incorrect"], t["verdicts"]["truncated"]) == (1, 1, 1)
    assert t["pass@1"] == pytest.approx(1 / 3)
    assert set(t["breakdowns"]["reasoning_type"]) >= set(probs[0].meta["reasoning_types"])


def test_judge_graded_task_without_judge_fails_at_once(tmp_path, capsys):
    out = tmp_path / "nojudge"
    assert main(["eval", "--task", "mmlu,simpleqa", "--limit", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "simpleqa" in err and "--judge-model M --judge-base-url U" in err and "\n" not in err
    assert not out.exists()
    imp = tmp_path / "imp.jsonl"
    imp.write_text(json.dumps({"problem_id": "0", "completion": "x"}) + "\n")
    assert main(["import", "--format", "jsonl", "--task", "frames", str(imp), "--out", str(tmp_path / "i")]) == 2
    assert "--judge-base-url" in capsys.readouterr().err and not (tmp_path / "i").exists()
    with pytest.raises(UserError):
        J.config_from_args(type("A", (), {"judge_model": None, "judge_base_url": "http://x/v1"})())
    with ScriptedServer([(200, {}, None)], get={}) as srv:  # no /models (404): still a judge
        J.check_reachable(J.JudgeConfig("j", srv.url))
    with ScriptedServer([(401, {}, None)]) as srv:
        srv.get = {}
        srv.httpd.RequestHandlerClass.do_GET = lambda h: (h.send_response(401), h.send_header("Content-Length", "0"),
                                                          h.end_headers())
        with pytest.raises(UserError, match="--judge-api-key"):
            J.check_reachable(J.JudgeConfig("j", srv.url, api_key="bad"))


def test_import_tags_stage_and_uses_the_judge(tmp_path, simpleqa_answers, data_dir):
    probs = get_task("simpleqa").problems(data_dir, limit=3)
    f = tmp_path / "gens.jsonl"
    f.write_text("".join(json.dumps({"problem_id": p.id, "completion": c}) + "\n"
                         for p, c in zip(probs, [probs[0].gold, "wrong", "I don't know."])))
    with ScriptedServer([(200, scripted_judge, None)]) as jud:
        assert main(["import", "--format", "jsonl", "--task", "simpleqa", "--model", "DeepSeek-R1", str(f), "--out",
                     str(tmp_path / "imp"), "--paper-stage", "r1", "--judge-model", "j", "--judge-base-url", jud.url]) == 0
    man = json.loads((tmp_path / "imp" / "manifest.json").read_text())
    assert man["paper_stage"] == "r1"
    v = json.loads((tmp_path / "imp" / "results.json").read_text())["tasks"]["simpleqa"]["verdicts"]
    assert (v["correct"], v["incorrect"], v["no_answer"]) == (1, 1, 1)


def test_grade_api_for_training():
    with ScriptedServer([(200, scripted_judge, None)]) as jud:
        judge = J.Judge(J.JudgeConfig(model="j", base_url=jud.url))
        assert judge.grade("Who?", "Ada Lovelace", "Ada Lovelace").reward == 1.0
        assert judge.grade("Who?", "Ada Lovelace", "Grace Hopper").status == "incorrect"
        j = judge.grade("Which?", "Rome", "It is Rome, of course", rubric="frames")
        assert (j.grade, j.reward) == ("TRUE", 1.0)
        assert judge.calls == 3


# --- a real server as the judge ---------------------------------------------------------------------------------------
@pytest.mark.slow
def test_real_llama_server_as_judge(tmp_path, data_dir):
    """The embedded SmolLM2-135M behind llama_cpp.server answers and judges: plumbing, not quality. Every judged
    sample has its raw reply stored and a verdict that either parsed or is counted unparseable."""
    from harness.models import embedded_gguf

    port = free_port()
    proc = start_llama_server(embedded_gguf(), port, tmp_path / "server.log")
    url = f"http://127.0.0.1:{port}/v1"
    out = tmp_path / "real"
    try:
        assert main(["eval", "--backend", "openai", "--base-url", url, "--model", "smollm", "--task", "simpleqa",
                     "--limit", "3", "--max-tokens", "24", "--temperature", "0", "--think-prefix", "off", "--out",
                     str(out), "--no-progress", "--judge-model", "smollm", "--judge-base-url", url,
                     "--judge-max-tokens", "8"]) == 0
    finally:
        stop_server(proc)
    t = json.loads((out / "results.json").read_text())["tasks"]["simpleqa"]
    recs = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    judged = [r for r in recs if isinstance(r["verdict_detail"].get("judge"), dict)]
    lines = (out / "judgments.jsonl").read_text().splitlines()
    assert judged and len(lines) == len(judged) and t["n_samples"] == 3
    for r in judged:
        j = r["verdict_detail"]["judge"]
        assert isinstance(j["raw"], str)
        assert (j["grade"] is None) == (r["verdict"] == "error")
    print(json.dumps({"verdicts": t["verdicts"], "judge_unparseable": t["judge_unparseable"],
                      "raw": [r["verdict_detail"]["judge"]["raw"] for r in judged]}))


def test_datasets_load_as_their_sources_describe(data_dir):
    from collections import Counter

    sq = get_task("simpleqa").problems(data_dir)
    assert len(sq) == 4326 and [p.id for p in sq[:3]] == ["0", "1", "2"]
    assert Counter(p.meta["topic"] for p in sq) == {
        "Science and technology": 858, "Politics": 709, "Art": 550, "Other": 475, "Geography": 424, "Sports": 368,
        "Music": 341, "TV shows": 293, "History": 173, "Video games": 135}
    assert Counter(p.meta["answer_type"] for p in sq) == {"Date": 1418, "Person": 1041, "Other": 777, "Number": 663,
                                                          "Place": 427}
    fr = get_task("frames").problems(data_dir)
    assert len(fr) == 824 and fr[-1].id == "823"
    assert Counter(t for p in fr for t in p.meta["reasoning_types"]) == {
        "Multiple constraints": 549, "Numerical reasoning": 293, "Temporal reasoning": 278, "Tabular reasoning": 236,
        "Post processing": 107}
    assert all(p.question == p.question.strip() and p.gold for p in fr)


def test_a_run_leaves_no_judge_on_the_registry_tasks(tmp_path, simpleqa_answers):
    """Tasks are singletons: after `r1 eval` in this process, scoring simpleqa from library code must not reach the
    last run's judge (its server may be gone; its judgments file belongs to that run)."""
    with ScriptedServer([(200, scripted_model(simpleqa_answers), None)]) as gen, \
            ScriptedServer([(200, scripted_judge, None)]) as jud:
        assert _eval(gen.url, jud.url, tmp_path / "run", "simpleqa", 1) == 0
    assert get_task("simpleqa").judge is None
