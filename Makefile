# The two commands a newcomer runs: `make demo` (install + tune the guide's CNN on real
# reviews) and `make test`. Both build the virtualenv in .venv first if it is missing.
# The stack follows the Python (scripts/install-venv): python3 by default; choose another with
# `make install PYTHON=python3.12` (or PYTHON=/path/to/python): 3.11+ gets torch 2.x and
# numpy 2, 3.10 AllenNLP's original pins (torch 1.12, numpy 1).
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export VENV

.PHONY: install demo test clean time-to-quality

# Always runs: rebuilds .venv when PYTHON names another Python version than the one it has.
install:
	scripts/install-venv
	touch $(STAMP)

$(STAMP): setup.py requirements/overrides.txt requirements/legacy.txt
	scripts/install-venv
	touch $(STAMP)

DEMO_STUDY := --study-name imdb --storage sqlite:///demo.db

# A fresh study each time: the demo's own result/ and demo.db are replaced.
demo: $(STAMP)
	$(BIN)/python -m demo.reviews --out demo/data --train 2000 --dev 500 --max-tokens 100
	rm -rf demo/result demo/demo.db
	cd demo && ../$(BIN)/allennlp tune imdb_optuna.jsonnet hparams.json --serialization-dir result \
		$(DEMO_STUDY) --metrics best_validation_accuracy --optuna-param-path optuna.json \
		--enqueue-trial baseline.json --n-trials 8
	cd demo && ../$(BIN)/allennlp best-params $(DEMO_STUDY)

# The PostgreSQL tests get a throwaway server unless ALLENNLP_OPTUNA_TEST_POSTGRES names one, the
# SLURM tests a throwaway one-node cluster unless ALLENNLP_OPTUNA_TEST_SLURM names a slurm.conf.
test: $(STAMP)
	scripts/with-test-postgres scripts/with-test-slurm $(BIN)/pytest -q

# The time-to-quality benchmark (docs/benchmarks.md): about 100 min on 2 cores; ARGS="--quick" for a smoke run.
# It creates the old plugin's and Ray's venvs (/tmp/oldplugin-venv, /tmp/ray-venv) on first use.
time-to-quality: $(STAMP)
	$(BIN)/python -m pip --quiet install matplotlib cmaes
	$(BIN)/python -m benchmarks.time_to_quality $(ARGS)

clean:
	rm -rf $(VENV) demo/data demo/result demo/best_model demo/*.db
