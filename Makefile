# Two commands for a newcomer: `make run` (everything, on 127.0.0.1:5000) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 5000
MO_FILES := $(patsubst %.po,%.mo,$(wildcard crm/translations/*/LC_MESSAGES/messages.po))


.PHONY: install run test test-fast browser-deps clean-instance translations

install: $(STAMP) $(MO_FILES)

# the compiled catalogues (git-ignored), rebuilt when their .po changes
%.mo: %.po $(STAMP)
	$(BIN)/pybabel compile -f -i $< -o $@

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

# Set up the instance (config, keys, database, demo users and data), start Redis (embedded unless
# REDIS_URL is set), one RQ worker and the web app. Ctrl-C stops all of them.
run: install
	$(BIN)/crm init
	$(BIN)/crm db upgrade
	@[ -n "$$REDIS_URL" ] || $(BIN)/crm redis start >/dev/null
	@echo "== demo logins =="
	@$(BIN)/crm demo-data
	@bash scripts/run.sh "$(HOST)" "$(PORT)"

# The layering contracts (pyproject.toml, import-linter), then the whole suite. Uses DATABASE_URL /
# REDIS_URL when set (CI: PostgreSQL and the machine's Redis),
# else SQLite and an embedded Redis in a temporary folder.
test: install browser-deps
	$(BIN)/lint-imports --no-cache
	$(BIN)/pytest -q -ra

# Debian's Chromium for the browser tests (Playwright cannot download its own browser here).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && apt-get install -y -q chromium; \
	  else echo "chromium missing: sudo apt-get install chromium (browser tests will skip)"; fi; }

# Extract the interface's messages (babel.cfg) and update the Russian and English catalogues; edit
# crm/translations/en/LC_MESSAGES/messages.po, then `make install` compiles them.
translations: install
	$(BIN)/pybabel extract -F babel.cfg -k _l --no-location --sort-output -o crm/translations/messages.pot crm
	$(BIN)/pybabel update --no-fuzzy-matching -i crm/translations/messages.pot -d crm/translations
	$(BIN)/pybabel compile -f -d crm/translations
