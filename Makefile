# wildcat-bench: the two commands every user needs.
#   make demo       set up the venv, then run the default workflow end to end (synthetic data, CPU)
#   make test       set up the venv, then lint and run the whole test suite (what CI runs)
#   make test-fast  the inner loop: the tests not marked slow or slurm
#   make lint       ruff (rules in pyproject.toml) and snakefmt --check on the workflow
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
LOCK   := requirements/lock.txt
CORES  ?= 2

.PHONY: setup demo test test-fast lint tables lock clean

setup: $(VENV)/.installed

# Every install goes through the lock file: an unpinned torch would pull a multi-GB build.
$(VENV)/.installed: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --constraint $(LOCK) --editable ".[workflow,test]"
	touch $@

# The workflow's rules call `python -m wildcat`: the venv goes first on PATH.
RUN    := PATH="$(CURDIR)/$(BIN):$$PATH"

# results/runs/ holds our cached metrics (committed), so a plain `snakemake` in a fresh clone has
# nothing to train; the demo forces the chain from the synthetic data on: generate -> train ->
# evaluate -> reports (finished trainings in runs/ are resumed, not redone). It ends with the
# verdict of the fresh results against the committed ones (docs/reproduction.md), kept first in
# $(REFERENCE) (from git when this is a checkout, so that a second demo still compares with the
# committed cache).
REFERENCE := build/reference
demo: setup
	rm -rf $(REFERENCE) && mkdir -p $(REFERENCE)
	if git rev-parse --verify -q HEAD >/dev/null 2>&1; then git archive HEAD results/runs/default | tar -x -C $(REFERENCE); \
	else cp -r --parents results/runs/default $(REFERENCE); fi
	$(RUN) snakemake --cores $(CORES) --forcerun make_synthetic
	@$(RUN) python -m wildcat compare $(REFERENCE)/results/runs/default results/runs/default \
		|| echo "demo: not every row is 'reproduced' (see the verdicts above; docs/reproduction.md)"

tables: setup
	$(RUN) snakemake --cores 1 tables

# pytest exits 5 when it collects nothing (e.g. a PYTEST_ARGS filter that matches no test).
PYTEST = $(RUN) python -m pytest $(1) $(PYTEST_ARGS); rc=$$?; [ $$rc -eq 5 ] && { echo "pytest collected no tests"; rc=0; }; exit $$rc

test: setup lint
	$(call PYTEST,)

test-fast: setup
	$(call PYTEST,-m "not slow and not slurm")

SNAKEFILES := Snakefile $(wildcard workflow/rules/*.smk)
lint: setup
	$(BIN)/ruff check wildcat tests benchmarks
	$(BIN)/snakefmt --check $(SNAKEFILES)

lock:
	rm -rf build/lock-venv && $(PYTHON) -m venv build/lock-venv
	build/lock-venv/bin/python -m pip install --quiet --upgrade pip
	build/lock-venv/bin/python -m pip install --quiet ".[workflow,test]"
	{ sed -n '1,2p' $(LOCK); build/lock-venv/bin/python -m pip freeze --exclude wildcat-bench; } > $(LOCK).new && mv $(LOCK).new $(LOCK)

clean:
	rm -rf $(VENV) build .snakemake
