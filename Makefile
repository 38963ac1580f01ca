# The two commands: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DATA := /usr/share/datasets/fashion-mnist
EXPERIMENT ?= experiments/ps_vs_p2p.py

.PHONY: run test lint data bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# The tests run sweeps on Ray too: the optional extra, which `make run` does not need. Where
# Ray has no wheel for this Python, its tests are skipped and say why.
$(VENV)/.ray: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[dev,ray]' || echo "Ray did not install: its tests will be skipped"
	touch $@

# Fashion-MNIST from Debian's package, where this system allows it.
data:
	@if [ -n "$$NETSIM_DATA" ] || [ -f $(DATA)/train-images-idx3-ubyte.gz ] || [ -f $(DATA)/train-images-idx3-ubyte ]; then \
		echo "Fashion-MNIST: found"; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq || true) && apt-get install -y -qq dataset-fashion-mnist; \
	else \
		echo "Fashion-MNIST missing: run 'sudo apt-get install dataset-fashion-mnist' or set NETSIM_DATA=DIR"; \
	fi

run: $(VENV)/.installed data
	$(PY) -m netsim $(EXPERIMENT)

test: $(VENV)/.installed $(VENV)/.ray
	$(PY) -m pytest -q

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(VENV)/.installed data
	$(PY) benchmarks/overhead.py
	$(PY) benchmarks/network.py
	$(PY) benchmarks/training.py
	$(PY) benchmarks/scale.py
	$(PY) benchmarks/sweep.py

clean:
	rm -rf $(VENV) results *.egg-info
