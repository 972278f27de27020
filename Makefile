# Two commands on a fresh machine: `make demo` and `make test`.
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed-stamp
export BAYESARENA_JAX_CACHE ?= $(CURDIR)/.jax_cache

.PHONY: demo test lint bench paper clean

$(STAMP): pyproject.toml
	@if [ -x $(PY) ] && ! $(PY) -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then \
		echo "removing $(VENV): built with Python < 3.12"; rm -rf $(VENV); fi
	@if [ ! -x $(PY) ]; then \
		interp=$$(scripts/find-python.sh) || exit 1; \
		echo "creating $(VENV) with $$interp"; \
		"$$interp" -m venv $(VENV) || exit 1; fi
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/bayesarena demo --out out

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/fit_scaling.py

# The methodology paper: tables, numbers and figures from benchmarks/results/, then the PDF
# where a TeX engine is installed (Debian: texlive-latex-base texlive-latex-recommended
# texlive-latex-extra texlive-fonts-recommended latexmk).
paper: $(STAMP)
	$(PY) paper/generate.py
	@cd paper && if command -v latexmk >/dev/null 2>&1; then \
		latexmk -pdf -interaction=nonstopmode -halt-on-error -quiet paper.tex \
		&& echo "wrote paper/paper.pdf"; \
	elif command -v pdflatex >/dev/null 2>&1; then \
		{ pdflatex -interaction=nonstopmode -halt-on-error paper.tex >/dev/null \
		&& bibtex paper >/dev/null && pdflatex -interaction=nonstopmode paper.tex >/dev/null \
		&& pdflatex -interaction=nonstopmode -halt-on-error paper.tex >/dev/null \
		&& echo "wrote paper/paper.pdf"; } || { echo "pdflatex failed: see paper/paper.log"; exit 1; }; \
	else \
		echo "skipped paper/paper.pdf: no latexmk or pdflatex on PATH (paper/generated/ is up to date;"; \
		echo "  Debian: apt-get install texlive-latex-base texlive-latex-recommended texlive-latex-extra texlive-fonts-recommended latexmk)"; \
	fi

clean:
	rm -rf $(VENV) out .jax_cache .pytest_cache
