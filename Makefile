# framewire — `make demo` runs the main job on embedded defaults; `make test` runs the suite.
# Both install what they need on a fresh Debian machine (apt packages + a local virtualenv).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
APT_PACKAGES := redis-server chromium coturn ffmpeg iproute2 nftables python3-gst-1.0 gir1.2-gst-plugins-bad-1.0 gstreamer1.0-nice gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
TORCH ?= torch==2.13.0
# The tests run the diffusers backend on the CPU: pin the torch build (2.13.0 installs as the CPU
# wheel here; an unpinned torch pulls a CUDA build of several GB). GPU users: TORCH=torch.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install system demo test lint typecheck unit bench clean

# Two stamps in one .venv: `runtime` is what running framewire needs (all `make demo` installs),
# `dev` adds the test and lint tools on top (`make install`, `make test`). Both install with
# constraints.txt, the exact versions CI tested, so a fresh install gets them.
$(VENV)/.runtime: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e .
	touch $@

$(VENV)/.dev: $(VENV)/.runtime
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,diffusers]' $(TORCH)
	touch $@

install: $(VENV)/.dev

# System packages the tests use for real: Redis (scale-out), Chromium (browser tests), coturn (TURN),
# GStreamer webrtcbin with libnice (an independent WHIP client).
system:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

lint: install
	$(BIN)/ruff check src tests bench

typecheck: install
	$(BIN)/mypy src

unit: install system
	$(BIN)/pytest

test: lint typecheck unit

demo: $(VENV)/.runtime
	mkdir -p out
	$(BIN)/framewire run --demo -o out/demo.mp4 --still out/demo.png --model lucy_2_rt --prompt "anime style portrait" --marker

bench: install system
	$(BIN)/python bench/signaling.py

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache
