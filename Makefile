# The two commands of the README:  `make book`  and  `make test`.
# Both create .venv if it is missing and install the pinned project into it.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Smoke runs of the test command write their cache and figures here, never
# over the committed results/ and figures/.
SCRATCH := .scratch
# Test workers (pytest-xdist): the unit tests by file, nbval by notebook (its cells
# share one kernel, so a notebook stays on one worker).
WORKERS ?= 2
# The book's scale (smoke, cpu, paper; cpu when unset): one setting for the notebooks
# (their scale parameter defaults to it), the figures, the scorecard and the scales page.
# `make book SCALE=paper` (also notebooks, nbval, book-check, results) exports it.
ifneq ($(strip $(SCALE)),)
export BISLS_BOOK_SCALE := $(strip $(SCALE))
endif
# Every kernel that papermill, nbval or the book starts uses encrypted sockets
# (CurveZMQ; bisls_core/_kernel.py), so ipykernel has no warning to print.
export JUPYTER_DEFAULT_PROVISIONER_NAME := bisls-encrypted-provisioner

.PHONY: help install book test test-timings pytest smoke nbval book-check notebooks results readings paper reproduce screenshot bench clean

help:  ## list the commands
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | column -t -s $$'\t'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e ".[dev,cluster]"
	$(BIN)/python -m bisls_core._kernel --install
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the pinned project (once)

# book and book-check first check that the book's scale has results (SCALE=paper needs
# `make paper` first), before scorecard.py rewrites book/scorecard.md and book/scales.md.
book: $(STAMP)  ## execute the notebooks (from the results cache) at the book's scale (SCALE=paper: paper, after make paper) and build both editions into _build/html
	$(BIN)/python scripts/book.py --check-ready
	$(BIN)/python scripts/scorecard.py
	$(BIN)/python scripts/book.py

# Each stage's wall time goes to .scratch/timings.txt and .scratch/timings.json (make test
# leaves the git tree clean); `make test-timings` copies the JSON into results/cpu/timings/.
test:  ## what CI runs: unit tests, smoke notebooks, nbval, the book with -W, make reproduce on one page
	@mkdir -p $(SCRATCH) && rm -f $(SCRATCH)/timings.txt $(SCRATCH)/timings.json
	$(PYTHON) scripts/timed.py install $(MAKE) --no-print-directory install
	$(BIN)/python scripts/timed.py install-check $(BIN)/python -c "import torch, torchvision, bisls_core; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
	$(BIN)/python scripts/timed.py pytest $(MAKE) --no-print-directory pytest
	$(BIN)/python scripts/timed.py notebooks $(MAKE) --no-print-directory smoke
	$(BIN)/python scripts/timed.py nbval $(MAKE) --no-print-directory nbval
	$(BIN)/python scripts/timed.py book $(MAKE) --no-print-directory book-check
	$(BIN)/python scripts/timed.py reproduce $(MAKE) --no-print-directory reproduce PAGES=thm2_strongly_convex_rate
	@cat $(SCRATCH)/timings.txt

test-timings:  ## copy the stage timings of the last make test (all stages ok) to results/cpu/timings/make_test.json, for committing
	$(PYTHON) scripts/timed.py --commit

pytest: $(STAMP)  ## unit tests of the core
	$(BIN)/python -m pytest -q -n $(WORKERS) --dist loadfile

smoke: $(STAMP)  ## every notebook with smoke as the book's scale (scratch copies), then check pages, figures and scorecard say smoke
	$(BIN)/python scripts/run_notebooks.py smoke

nbval: $(STAMP)  ## re-execute the committed notebooks (cache hits) and compare their outputs
	$(BIN)/python -m pytest --nbval notebooks --nbval-sanitize-with tests/nbval_sanitize.cfg -q -n $(WORKERS) --dist loadscope

book-check: $(STAMP)  ## build both editions from the committed outputs (-W -n), then check the built site
	$(BIN)/python scripts/book.py --check-ready
	$(BIN)/python scripts/scorecard.py
	$(BIN)/python scripts/book.py --execute off --nitpicky --quiet

# notebooks, results and paper update the book (scripts/run_notebooks.py sets
# BISLS_WRITE_BOOK=1) and print a line per finished run. Ctrl-C (SIGINT to make's process
# group) or SIGTERM to make reaches run_notebooks.py, which ends every papermill, kernel
# and worker it started before it exits.
notebooks: $(STAMP)  ## re-execute the committed notebooks at the book's scale (SCALE=...; after new results), each replacing its page once it succeeded
	$(BIN)/python scripts/run_notebooks.py execute

results: $(STAMP)  ## compute the results cache of every notebook at the book's scale (cpu unless SCALE=...; BISLS_EXECUTOR=process:2 unless set), timed into results/<scale>/timings/
	$(BIN)/python scripts/run_notebooks.py results

# The reproduction report: recompute pages into .scratch/reproduce/ and compare each
# entry and claim with the committed book (PAGES=all: every page; SAVE=1: keep the report
# in results/<scale>/reproduce.json, which the scales page shows).
# The contested pages under another reading of the paper's open choices (READING=name of
# bisls_core.readings.READINGS; PAGES=... to choose pages): their runs join the cache,
# their claims go to results/<scale>/claims/readings/<READING>/ (the open choices page
# reads them), their figures and executed copies to .scratch/.
readings: $(STAMP)  ## run the contested pages under READING=<reading> (PAGES=... to choose) for the open choices page
	$(BIN)/python scripts/run_notebooks.py results --reading $(READING) $(PAGES)

reproduce: $(STAMP)  ## recompute a sample of every family (PAGES=..., PAGES=all) on this machine and compare with the committed book; SAVE=1 keeps the report
	$(BIN)/python scripts/reproduce.py $(PAGES)$(if $(strip $(SAVE)), --save)

paper: $(STAMP)  ## fill results/paper/ (a GPU when there is one), resumable; PLAN=1: list the runs and estimate their time
	$(BIN)/python scripts/run_notebooks.py results --scale paper --device auto$(if $(strip $(PLAN)), --plan)

bench: $(STAMP)  ## print the benchmark report (per-iteration and hypergradient costs, CI stages, profile)
	$(BIN)/python benchmarks/run.py

screenshot:  ## headless Chromium screenshots of the site into _build/screenshots (builds it first if needed)
	@test -f _build/html/index.html -a -f _build/html/fr/index.html || $(MAKE) --no-print-directory book
	bash scripts/screenshot.sh

clean:  ## remove the build and the scratch copies
	rm -rf _build $(SCRATCH)
