# savin: `make demo` runs the main job, `make test` the test suite.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: install demo test test-fast bench broker-start broker-stop schemas clean

# Debian's package $(2), unless $(1) is already there (as root, or through sudo).
define debian_package
	@test -x $(1) || { \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y --no-install-recommends $(2); }
endef

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("savin needs Python 3.11+, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(BIN)/pip install --quiet -e '.[dev,test]'
	@# The page tests drive Debian's chromium, never a browser of their own.
	$(call debian_package,/usr/bin/chromium,chromium)
	@# promtool, from Debian's prometheus package, checks docker/prometheus/ in the tests.
	$(call debian_package,/usr/bin/promtool,prometheus)
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/savin demo $(ARGS)

test: $(STAMP)
	$(BIN)/pytest

test-fast: $(STAMP)
	$(BIN)/pytest -m "not fault"

bench: $(STAMP)
	$(BIN)/savin bench

broker-start: $(STAMP)
	$(BIN)/savin broker start

broker-stop: $(STAMP)
	$(BIN)/savin broker stop

schemas: $(STAMP)
	$(BIN)/savin schema export schemas/

clean:
	rm -rf $(VENV) var build *.egg-info
