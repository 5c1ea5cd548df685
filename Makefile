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

demo: $(STAMP)
	$(BIN)/python demo/run_demo.py

test: $(STAMP)
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) demo/data demo/result demo/*.db
