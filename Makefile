# One entry point for newcomers and CI. Every target is idempotent.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := qgis python3-qgis qgis-providers python3-gdal gdal-bin python3-venv python3-pip xvfb xauth
export QT_QPA_PLATFORM := offscreen
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: lint format env test bench benchmark demo package install screenshot clean

env: $(VENV)/.installed

$(VENV)/.apt-done:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages: $$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@mkdir -p $(VENV) && touch $@

$(VENV)/.installed: $(VENV)/.apt-done requirements.txt
	@[ -x $(PY) ] || /usr/bin/python3 -m venv --system-site-packages $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	@touch $@

test: env
	$(PY) -m pytest -q tests

# ruff as configured in pyproject.toml: lint, and check that the formatting is applied.
lint: env
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: env
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# FULL=1 adds the full-size (~7,900 px) scene end to end: tens of minutes on two cores.
bench: env
	$(PY) -m training.bench --quick $(if $(FULL),--full)

# Accuracy on every corpus scene the bundled packages never saw, through the plugin's pipeline
# (tens of minutes on two cores); `python -m training.bench.accuracy` adds pyDMS and the zoo.
benchmark: env
	$(PY) -m training.bench.unseen

# The installable plugin: one folder with the plugin, the engine, styles, icons, bundled
# model packages and the example model. QGIS_PROFILE selects the profile `install` deploys to.
PLUGIN := mocolsk_qgis
PLUGIN_ZIP ?= dist/$(PLUGIN).zip
PACKAGE_BUILD ?= build/package
QGIS_PROFILE ?= $(HOME)/.local/share/QGIS/QGIS3/profiles/default
QGIS_PYTHON ?= /usr/bin/python3

package:
	rm -rf $(PACKAGE_BUILD) $(PLUGIN_ZIP)
	mkdir -p $(PACKAGE_BUILD)/$(PLUGIN)/resources $(dir $(PLUGIN_ZIP))
	cp -R $(PLUGIN)/. $(PACKAGE_BUILD)/$(PLUGIN)/
	cp -R engine $(PACKAGE_BUILD)/$(PLUGIN)/engine
	cp -R resources/styles resources/icons resources/models resources/help resources/sample $(PACKAGE_BUILD)/$(PLUGIN)/resources/
	rm -f $(PACKAGE_BUILD)/$(PLUGIN)/resources/models/*.pt
	cp metadata.txt README.md LICENSE $(PACKAGE_BUILD)/$(PLUGIN)/
	find $(PACKAGE_BUILD) -name __pycache__ -prune -exec rm -rf {} +
	zip=$$(realpath $(PLUGIN_ZIP)) && cd $(PACKAGE_BUILD) && $(QGIS_PYTHON) -m zipfile -c "$$zip" $(PLUGIN)
	@echo "Built $(PLUGIN_ZIP)"

install: package
	mkdir -p "$(QGIS_PROFILE)/python/plugins" "$(QGIS_PROFILE)/QGIS"
	rm -rf "$(QGIS_PROFILE)/python/plugins/$(PLUGIN)"
	$(QGIS_PYTHON) -m zipfile -e $(PLUGIN_ZIP) "$(QGIS_PROFILE)/python/plugins"
	$(QGIS_PYTHON) -c 'import sys; from PyQt5.QtCore import QSettings; s = QSettings(sys.argv[1], QSettings.IniFormat); s.setValue("PythonPlugins/$(PLUGIN)", True); s.sync()' "$(QGIS_PROFILE)/QGIS/QGIS3.ini"
	@echo "Installed and enabled $(PLUGIN) in $(QGIS_PROFILE); restart QGIS."

# docs/dialog.png, map.png, uncertainty.png, modeler.png, batch.png, installer.png: the QGIS desktop under Xvfb,
# as its test drives it (Downscale LST on the bundled sample, the model, a batch, the runtime installer).
screenshot: env
	MOCOLSK_SCREENSHOT_DIR=$(CURDIR)/docs $(PY) -m pytest -q tests/desktop

clean:
	rm -rf $(VENV) dist

# The newcomer's first run: the bundled real Landsat 5 scene through QGIS Processing, headless.
DEMO_OUT ?= demo-output
demo: env
	$(PY) -m mocolsk_qgis.demo --out $(DEMO_OUT)
