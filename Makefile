# tinyattn: `make setup` installs everything, `make test` passes the tests, `make demo` is the main job.
VENV := .venv
BIN := $(VENV)/bin
DEMO_MODEL ?= models/ecg.onnx

.PHONY: setup test lint lit pytest demo bench fuzz

setup:
	@bash scripts/bootstrap.sh

test: setup
	$(MAKE) lint lit pytest

lint:
	$(BIN)/ruff check .

lit:
	$(BIN)/lit -sv test

pytest:
	$(BIN)/pytest -q

demo: setup
	$(BIN)/tinyattn-import $(DEMO_MODEL) --elide-weights --summary
	@echo "== $(DEMO_MODEL) on cortex-m4 (mps2-an386) =="
	$(BIN)/tinyattn-run $(DEMO_MODEL) --target cortex-m4 --profile
	@echo "== $(DEMO_MODEL) on rv32 (riscv32 virt) =="
	$(BIN)/tinyattn-run $(DEMO_MODEL) --target rv32

# A differential fuzzing campaign: make fuzz CASES=1000 SEED=7 (reproducers in fuzz-failures/).
CASES ?= 1000
SEED ?= 0
fuzz: setup
	$(BIN)/python -m tinyattn.fuzz.differential --cases $(CASES) --seed $(SEED) --out fuzz-failures

bench: setup
	$(BIN)/python bench/baseline.py
	$(BIN)/python bench/fwsa.py
	$(BIN)/python bench/memory.py
	$(BIN)/python bench/int8.py
	$(BIN)/python bench/kernels.py
