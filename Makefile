# AI Engineering Lab. The two commands: `make lab` and `make test`.
SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.lab-installed
# Offline guard for every Python process of the test run, Jupyter kernels included.
TEST_ENV := PYTHONPATH=$(CURDIR)/tools/offline_guard LAB_NETWORK_LOG=$(CURDIR)/.lab-state/network.log LAB_THREADS=1 \
            LAB_PROVIDER=local OPENAI_API_KEY= OPENAI_BASE_URL= MPLBACKEND=Agg
JOBS  ?= 2

.PHONY: setup lab test test-fast notebooks check-notebooks doctor bench lock rebuild-llama clean

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml tools/setup.sh
	@bash tools/setup.sh
	@touch $(STAMP)

lab: setup ## set up, then open JupyterLab on the notebooks
	$(PY) -m reference lab

test: setup ## set up, then run unit tests and every notebook (learner + solution) offline
	@mkdir -p .lab-state && rm -f .lab-state/network.log
	$(PY) -m reference.nbtools check
	$(TEST_ENV) $(PY) -m pytest -n $(JOBS) --dist loadfile --allow-hosts=127.0.0.1,localhost,::1 \
	    --nbval-lax --nbval-current-env \
	    --nbval-cell-timeout=600 --durations=15 tests solutions notebooks
	@if [ -s .lab-state/network.log ]; then echo "Network access was attempted:"; cat .lab-state/network.log; exit 1; fi

test-fast: setup ## unit tests only
	$(TEST_ENV) $(PY) -m pytest -n $(JOBS) tests

notebooks: setup ## regenerate learner notebooks from solutions/
	$(PY) -m reference.nbtools build

doctor: setup
	$(PY) -m reference doctor

bench: setup ## print the benchmark tables (not part of make test)
	$(PY) benchmarks/llm_throughput.py

lock: ## re-resolve requirements.in into requirements.lock in a scratch venv
	rm -rf /tmp/lab-lock && python3 -m venv /tmp/lab-lock
	/tmp/lab-lock/bin/pip install -q -r requirements.in
	python3 tools/lock.py /tmp/lab-lock/bin/python > requirements.lock

rebuild-llama: setup ## force a fresh build of llama-cpp-python (e.g. after a crash)
	$(PY) -m pip cache remove llama_cpp_python || true
	$(PY) -m pip uninstall -y llama-cpp-python || true
	bash tools/setup.sh

clean:
	rm -rf $(VENV) .lab-state
