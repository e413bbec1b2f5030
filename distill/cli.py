"""The `r1 distill` flags, apart from the pipeline so `r1 --help` imports nothing heavy."""


def add_arguments(p) -> None:
    """The `r1 distill` flags; harness/cli.py adds them to its subparser and calls distill.pipeline.run_from_args."""
    p.add_argument("recipe", nargs="?", default=None,
                   help="a recipe file or the name of one in distill/recipes/ (e.g. cpu_demo, qwen2.5-math-7b)")
    p.add_argument("--recipe", dest="recipe_opt", default=None, metavar="RECIPE",
                   help="the same as the positional RECIPE (as `r1 train --recipe`)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe value by dotted key, value in YAML (e.g. teacher.limit=100, "
                        "teacher.tasks=[math500], sft.max_steps=10); repeatable")
    p.add_argument("--out", default=None, help="pipeline dir (default: the recipe's out, else runs/distill/<name>)")
    p.add_argument("--data-dir", default=None, help="local data mirror laid out like shared/data (or R1_DATA_DIR)")
    p.add_argument("--teacher-run", dest="teacher_runs", action="append", default=[], metavar="DIR",
                   help="an existing teacher run dir to distill from (r1 eval / r1 import output); repeatable")
    p.add_argument("--dry-run", action="store_true",
                   help="validate the recipe (keys, sft settings, filters, teacher, data sources and their "
                        "decontamination, evaluation tasks, held-out split) and print the plan; run nothing")
