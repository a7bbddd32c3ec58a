# make demo: set up a virtual environment, train configs/tiny.yaml on the CPU, sample 5,000 digits, score them.
# make test: set up the environment if needed and run the test suite.
# make moons: the two-moons test bed's best recipe, end to end in about a minute.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
NAME ?= demo

.PHONY: demo test venv bench moons clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

demo: venv
	$(PY) train.py --config configs/tiny.yaml --student_name $(NAME)
	$(PY) sample.py --checkpoint checkpoints/$(NAME)/final.pt --student_name $(NAME)
	$(PY) evaluate.py --student_name $(NAME)
	@echo "sample grid: outputs/$(NAME)/grid.png   (training grids: outputs/$(NAME)/train_grid_*.png)"

test: venv
	$(PY) -m pytest -q

moons: venv
	$(PY) moons.py --run --config configs/moons.yaml --sample-use-ema

bench: venv
	$(PY) scripts/benchmark.py --config configs/tiny.yaml
	$(PY) scripts/benchmark.py --config configs/default.yaml --train_steps 5 --sample_n 100
	$(PY) scripts/benchmark.py --config configs/completion_mnist.yaml --train_steps 5 --sample_n 100
	$(PY) benchmarks/bench.py --config configs/default.yaml --fast_paths

clean:
	rm -rf checkpoints/$(NAME) outputs/$(NAME) results/$(NAME).json
