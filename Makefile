# make demo: set up a virtual environment (requirements-dev.txt), train configs/demo.yaml on the CPU,
#            sample 5,000 digits (500 per class), score them.
# make test: set up the environment if needed and run the test suite.
# make moons: the two-moons test bed's best recipe, end to end (about 3 minutes on 2 CPU cores).
# make bench: training and sampling speed, and the comparison against diffusers' UNet.
# make clean: remove the demo's (or NAME's) checkpoints, outputs and result.
# Extra arguments per step (tests/test_makefile.py runs demo, moons, bench and clean with tiny ones; CI runs test):
#   TRAIN_ARGS (train.py key=value overrides), SAMPLE_ARGS and EVAL_ARGS (sample.py / evaluate.py flags),
#   MOONS_ARGS (moons.py), BENCH_ARGS (scripts/benchmark.py and benchmarks/bench.py), FAST_PATHS.
# ROOT: the repository, so that `make -f path/to/Makefile` works from another folder (runs are written
# where make runs; tests/test_makefile.py does that).
ROOT := $(dir $(abspath $(lastword $(MAKEFILE_LIST))))
PYTHON ?= python3
VENV ?= $(ROOT).venv
PY := $(VENV)/bin/python
NAME ?= demo
FAST_PATHS ?= --fast_paths

.PHONY: demo test venv bench moons clean

venv: $(VENV)/.installed

$(VENV)/.installed: $(ROOT)requirements.txt $(ROOT)requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r $(ROOT)requirements-dev.txt
	touch $@

demo: venv
	$(PY) $(ROOT)train.py --config $(ROOT)configs/demo.yaml --student_name $(NAME) $(TRAIN_ARGS)
	$(PY) $(ROOT)sample.py --checkpoint checkpoints/$(NAME)/final.pt --student_name $(NAME) $(SAMPLE_ARGS)
	$(PY) $(ROOT)evaluate.py --student_name $(NAME) $(EVAL_ARGS)
	@echo "sample grid: outputs/$(NAME)/grid.png (each row: 0-9)   training grids: outputs/$(NAME)/train_grid_*.png"

test: venv
	cd $(ROOT) && $(PY) -m pytest -q

moons: venv
	$(PY) $(ROOT)moons.py --run --config $(ROOT)configs/moons.yaml --sample-use-ema $(MOONS_ARGS)

bench: venv
	$(PY) $(ROOT)scripts/benchmark.py --config $(ROOT)configs/demo.yaml $(BENCH_ARGS)
	$(PY) $(ROOT)scripts/benchmark.py --config $(ROOT)configs/default.yaml --train_steps 5 --sample_n 100 $(BENCH_ARGS)
	$(PY) $(ROOT)scripts/benchmark.py --config $(ROOT)configs/completion_mnist.yaml --train_steps 5 --sample_n 100 $(BENCH_ARGS)
	$(PY) $(ROOT)benchmarks/bench.py --config $(ROOT)configs/default.yaml $(FAST_PATHS) $(BENCH_ARGS)

clean:
	rm -rf checkpoints/$(NAME) outputs/$(NAME) results/$(NAME).json
