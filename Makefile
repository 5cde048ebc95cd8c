# Structural Dropout: `make help` lists the targets.
UV ?= $(shell command -v uv 2>/dev/null || echo python3 -m uv)
RUN := $(UV) run --frozen
PY := $(RUN) python

.DEFAULT_GOAL := help
.PHONY: help setup test lint reproduce-mnist reproduce-mnist-plain reproduce-pointnet reproduce-pointnet-shared-bn reproduce-liif reproduce-liif-paper-rule reproduce-liif-plain compare-mnist bench sweep-mnist figures clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-22s %s\n", $$1, $$2}'

setup: ## install uv if missing, then every dependency from uv.lock
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install uv
	$(UV) sync --frozen

test: ## run the test suite (fast, CPU only)
	$(RUN) pytest -q

lint: ## ruff check of the whole tree
	$(RUN) ruff check .

reproduce-mnist: ## MNIST: train once (cpu profile, ~1.5 min), sweep all 256 widths -> results/mnist/
	$(PY) scripts/train.py experiment=mnist profile=cpu results_dir=results/mnist \
		hydra.run.dir=outputs/reproduce/mnist

reproduce-mnist-plain: ## MNIST baseline: the same run without dropout, truncated -> results/mnist/none/
	$(PY) scripts/train.py experiment=mnist profile=cpu dropout=none results_dir=results/mnist/none \
		hydra.run.dir=outputs/reproduce/mnist_none

reproduce-pointnet: ## PointNet/ModelNet10: train once (cpu profile, ~45 min), sweep 512 widths -> results/pointnet/
	$(PY) scripts/train.py experiment=pointnet profile=cpu results_dir=results/pointnet \
		hydra.run.dir=outputs/reproduce/pointnet

reproduce-pointnet-shared-bn: ## PointNet: its checkpoint swept with the shared BatchNorm statistics (every 8th width, ~4 min)
	$(PY) scripts/sweep.py checkpoint=outputs/reproduce/pointnet/checkpoint.pt sweep.recalibrate_bn=false \
		sweep.step=8 results_dir=results/pointnet/shared_bn hydra.run.dir=outputs/reproduce/pointnet_shared_bn

# LIIF trains with the sandwich rule (full width + one log-uniform cut in 8..256 per step, the cut
# distilled from the full width): with the paper's one uniform cut per step, the full width ends
# 0.87 dB below a plain model (results/liif/paper_rule/).
LIIF_SANDWICH := dropout=sandwich dropout.lower_bound=8 dropout.sandwich.distill=true

reproduce-liif: ## LIIF super-resolution: train once (cpu profile, sandwich rule, ~60 min), PSNR of every decoder width vs bicubic -> results/liif/
	$(PY) scripts/train.py experiment=liif profile=cpu $(LIIF_SANDWICH) results_dir=results/liif \
		hydra.run.dir=outputs/reproduce/liif

reproduce-liif-paper-rule: ## LIIF with the paper's rule (one uniform cut in 1..256 per step, ~47 min) -> results/liif/paper_rule/
	$(PY) scripts/train.py experiment=liif profile=cpu results_dir=results/liif/paper_rule \
		hydra.run.dir=outputs/reproduce/liif_paper_rule

reproduce-liif-plain: ## LIIF baseline: the same training without dropout, swept on Set5 -> results/liif/none/
	$(PY) scripts/train.py experiment=liif profile=cpu dropout=none results_dir=results/liif/none \
		task.suites.widths.datasets=[Set5] task.suites.b100=null task.suites.out_of_distribution=null \
		task.picture=null hydra.run.dir=outputs/reproduce/liif_none

COMPARE_MNIST := experiment=mnist profile=cpu progress=false
COMPARE_DIR := multirun/compare_mnist/$(shell date +%Y-%m-%d_%H-%M-%S)
COMPACTION_STRENGTHS := 0.0003,0.001,0.003
PRUNING_SPARSITIES := 0.5,0.8,0.9,0.95,0.98

compare-mnist: ## MNIST: every method of the comparison (same epochs, optimizer, seed; ~38 min) -> results/compare/
	$(PY) scripts/train.py -m $(COMPARE_MNIST) method=none,dropout,sorted,structural,nested,sandwich,distilled,nested_distill \
		hydra.sweep.dir=$(COMPARE_DIR)/one_run
	$(PY) scripts/train.py -m $(COMPARE_MNIST) method=independent method.width=4,8,16,32,64,128,256 \
		hydra.sweep.dir=$(COMPARE_DIR)/independent
	$(PY) scripts/train.py -m $(COMPARE_MNIST) method=compaction method.training.strength=$(COMPACTION_STRENGTHS) \
		hydra.sweep.dir=$(COMPARE_DIR)/compaction
	$(PY) scripts/train.py -m $(COMPARE_MNIST) method=drop_pruning method.training.sparsity=$(PRUNING_SPARSITIES) \
		hydra.sweep.dir=$(COMPARE_DIR)/drop_pruning
	$(PY) scripts/compare.py results/compare/mnist $(COMPARE_DIR)

bench: ## benchmarks behind the speed claims (~4 min) -> results/bench/bench.csv, widths.csv
	$(PY) scripts/bench.py

sweep-mnist: ## MNIST: 5 seeds x p in {0,0.25,0.5,1}, 2 runs at a time (~25 min) -> results/mnist/seeds.csv
	$(PY) scripts/train.py grid=mnist_seeds progress=false hydra.sweep.dir=multirun/mnist_seeds
	$(PY) scripts/aggregate.py multirun/mnist_seeds results/mnist/seeds.csv

figures: ## redraw every figure from the committed CSVs in results/
	$(PY) scripts/figures.py results

clean: ## delete run outputs (outputs/, multirun/); keeps results/ and data/
	rm -rf outputs multirun .pytest_cache .ruff_cache
