# kubehop: the README's commands.
#   make plan   the offline plan of prod-b to 1.29 (no cloud, cluster or Pulumi CLI needed)
#   make test   lint (ruff, shellcheck) and the whole test suite (installs what it needs first)
#   make bench  plan answer time, maintenance window and total for prod-b and a 7-master/40-pool cluster
VENV   ?= .venv
PY     := $(VENV)/bin/python
STACK  ?= prod-b
TO     ?= 1.29

.PHONY: plan test setup system-deps lint bench

plan: setup
	$(PY) -m kubehop plan --stack $(STACK) --to $(TO)

bench: setup
	$(PY) -m kubehop.plan.bench

# two workers (the machines have 2 cores); a test file stays on one worker (module fixtures built once)
test: setup system-deps lint
	$(PY) -m pytest -q -n 2 --dist loadfile

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	touch $@

system-deps:
	bash scripts/install-test-deps.sh

lint: setup
	$(VENV)/bin/ruff check .
	shellcheck components/scripts/*.sh components/scripts/*/*.sh packer/scripts/*.sh scripts/*.sh
