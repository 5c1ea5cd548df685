# The two commands a newcomer runs: `make demo` (install + tune the guide's CNN on real
# reviews) and `make test`. Both create the Python 3.10 virtualenv in .venv themselves.
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test clean

install: $(STAMP)

$(STAMP): setup.py
	test -x $(BIN)/python || "$$(scripts/find-python310)" -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip wheel 'setuptools<81'
	$(BIN)/pip install --quiet -e '.[test]'
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

test: $(STAMP)
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) demo/data demo/result demo/*.db
