# Structural Dropout: `make help` lists the targets.
UV ?= $(shell command -v uv 2>/dev/null || echo python3 -m uv)
RUN := $(UV) run --frozen
PY := $(RUN) python

.DEFAULT_GOAL := help
.PHONY: help setup test lint reproduce-mnist reproduce-lenet5 reproduce-shakespeare export-shakespeare reproduce-mnist-plain reproduce-pointnet reproduce-pointnet-shared-bn reproduce-liif reproduce-liif-paper-rule reproduce-liif-plain reproduce-liif-from-plain reproduce-liif-from-plain-smallest trials-pointnet trials-liif trials-liif-recipes tune-mnist tune-lenet5-cuts tune-lenet5-baselines tune-lenet5 tune-shakespeare-runs tune-shakespeare continue-tune-shakespeare compaction-thresholds-lenet5 continue-tune-lenet5 compare-mnist-one-run compare-mnist-baselines compare-mnist compare-lenet5-one-run compare-lenet5-baselines compare-lenet5 continue-compare-lenet5 compare-shakespeare-runs compare-shakespeare continue-compare-shakespeare ddp-cuts-mnist gpu-check bench sweep-mnist render figures clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-22s %s\n", $$1, $$2}'

setup: ## install uv if missing (into this Python), then every dependency from uv.lock (~5.4 GB: PyPI's CUDA torch, runs on CPU)
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install uv
	$(UV) sync --frozen --all-extras

test: ## run the test suite (CPU only, ~5 min on 2 cores: one pytest worker per core)
	$(RUN) pytest -q -n auto

lint: ## ruff check of the whole tree
	$(RUN) ruff check .

reproduce-mnist: ## MNIST: train once (cpu profile, ~2 min with the sweep), sweep all 256 widths -> results/mnist/
	$(PY) scripts/train.py experiment=mnist profile=cpu results_dir=results/mnist \
		hydra.run.dir=outputs/reproduce/mnist

reproduce-lenet5: ## LeNet-5 on MNIST (#18): train once (cpu profile, ~5 min) and sweep 251 widths of its 500-wide axis (~5 min) -> results/lenet5/
	$(PY) scripts/train.py experiment=lenet5 profile=cpu results_dir=results/lenet5 \
		hydra.run.dir=outputs/reproduce/lenet5

reproduce-shakespeare: ## character-level GPT on Tiny Shakespeare (#19): train once (cpu profile, 5.5 min with the sweep here) -> results/shakespeare/
	$(PY) scripts/train.py experiment=shakespeare profile=cpu results_dir=results/shakespeare \
		hydra.run.dir=outputs/reproduce/shakespeare

SHAKESPEARE_EXPORTS := 8 64 128 256 512

export-shakespeare: ## GPT (#19): export the committed run's checkpoint at a few widths (a plain GPT of nn.Linear, nn.LayerNorm, nn.Embedding), each checked against the truncated model -> results/shakespeare/export/w<width>.json
	mkdir -p results/shakespeare/export
	for w in $(SHAKESPEARE_EXPORTS); do \
		$(PY) scripts/export.py checkpoint=outputs/reproduce/shakespeare/checkpoint.pt width=$$w out=outputs/export/shakespeare/w$$w || exit 1; \
		cp outputs/export/shakespeare/w$$w/export.json results/shakespeare/export/w$$w.json; \
	done

reproduce-mnist-plain: ## MNIST baseline: the same run without dropout, truncated -> results/mnist/none/
	$(PY) scripts/train.py experiment=mnist profile=cpu dropout=none results_dir=results/mnist/none \
		hydra.run.dir=outputs/reproduce/mnist_none

reproduce-pointnet: ## PointNet/ModelNet10: train once (cpu profile, float32, ~67 min here), sweep every 4th of 512 widths -> results/pointnet/
	$(PY) scripts/train.py experiment=pointnet profile=cpu results_dir=results/pointnet \
		hydra.run.dir=outputs/reproduce/pointnet

reproduce-pointnet-shared-bn: ## PointNet: its checkpoint swept with the shared BatchNorm statistics (every 8th width, ~4 min)
	$(PY) scripts/sweep.py --config-name sweep_shared_bn checkpoint=outputs/reproduce/pointnet/checkpoint.pt \
		results_dir=results/pointnet/shared_bn hydra.run.dir=outputs/reproduce/pointnet_shared_bn

reproduce-liif: ## LIIF super-resolution: train once (cpu profile, sandwich rule, ~60 min here: 40 training, 19 sweep), PSNR of every decoder width vs bicubic -> results/liif/
	$(PY) scripts/train.py experiment=liif profile=cpu results_dir=results/liif \
		hydra.run.dir=outputs/reproduce/liif

reproduce-liif-paper-rule: ## LIIF with the paper's rule (one uniform cut in 1..256 per step, ~40 min here) -> results/liif/paper_rule/
	$(PY) scripts/train.py experiment=liif profile=cpu method=structural results_dir=results/liif/paper_rule \
		hydra.run.dir=outputs/reproduce/liif_paper_rule

reproduce-liif-plain: ## LIIF baseline: the same training without dropout, swept on validation and Set5 (~33 min here) -> results/liif/none/
	$(PY) scripts/train.py experiment=liif_plain profile=cpu results_dir=results/liif/none \
		hydra.run.dir=outputs/reproduce/liif_none

reproduce-liif-from-plain: ## LIIF (#17): the plain model (make reproduce-liif-plain first) trained on into a nested decoder, 1,500 steps taught by it (~9 min here, sweep ~7) -> results/liif/from_plain/
	$(PY) scripts/train.py experiment=liif_from_plain profile=cpu results_dir=results/liif/from_plain \
		hydra.run.dir=outputs/reproduce/liif_from_plain
	cp outputs/reproduce/liif_none/run.json results/liif/from_plain/teacher_run.json  # its cost counts

reproduce-liif-from-plain-smallest: ## LIIF (#17): the same with width 32 trained every step (cuts from 32; 1,320 steps) -> results/liif/from_plain_smallest/
	$(PY) scripts/train.py experiment=liif_from_plain profile=cpu trainer.rule.smallest=true dropout.lower_bound=32 \
		task.steps_per_epoch=330 results_dir=results/liif/from_plain_smallest hydra.run.dir=outputs/reproduce/liif_from_plain_smallest
	cp outputs/reproduce/liif_none/run.json results/liif/from_plain_smallest/teacher_run.json

trials-pointnet: ## PointNet: rescaling x gradient clipping, 5 epochs each, two side by side, judged on validation (~31 min here; resumable) -> results/pointnet/trials.csv
	$(PY) scripts/train.py grid=pointnet_trials hydra.sweep.dir=multirun/trials_pointnet
	$(PY) scripts/aggregate.py multirun/trials_pointnet results/pointnet/trials.csv

trials-liif: ## LIIF: rescaling on or off, 500 steps each, judged on the validation images (~16 min here; resumable) -> results/liif/trials.csv
	$(PY) scripts/train.py grid=liif_trials hydra.sweep.dir=multirun/trials_liif
	$(PY) scripts/aggregate.py multirun/trials_liif results/liif/trials.csv

LIIF_RECIPES := reference paper_rule teacher finetune lower_bound smallest matformer later_layers author equal_compute_plain equal_compute_nested

trials-liif-recipes: ## LIIF (#17): each recipe's 1,000-step trial on validation (configs/grid/liif_recipe_*.yaml; 25 runs, ~2 h 15 min on 2 AVX-512 cores; teacher, finetune, lower_bound, smallest: make reproduce-liif-plain first; resumable) -> results/liif/recipes.csv
	for recipe in $(LIIF_RECIPES); do \
		$(PY) scripts/train.py grid=liif_recipe_$$recipe hydra.sweep.dir=multirun/liif_recipes/$$recipe || exit 1; \
	done
	$(PY) scripts/recipes.py multirun/liif_recipes results/liif/recipes.csv

TUNE_METHODS := structural nested sandwich distilled nested_distill dropout compaction drop_pruning

tune-mnist: ## MNIST: every method's knobs, the same budget each, seed 0, on validation (configs/grid/tune_mnist_*.yaml; ~80 min here; resumable) -> results/compare/tuning.csv
	for method in $(TUNE_METHODS); do \
		$(PY) scripts/train.py grid=tune_mnist_$$method hydra.sweep.dir=multirun/tune_mnist/$$method || exit 1; \
	done
	$(PY) scripts/tune.py multirun/tune_mnist results/compare/tuning.csv

TUNE_LENET5_CUTS := structural nested sandwich distilled nested_distill
TUNE_LENET5_BASELINES := dropout compaction drop_pruning drop_pruning_global

tune-lenet5-cuts: ## LeNet-5 (#18): the cut-based methods' knobs, seed 0, on validation (configs/grid/tune_lenet5_*.yaml; 30 runs, ~3 h here; resumable)
	for method in $(TUNE_LENET5_CUTS); do \
		$(PY) scripts/train.py grid=tune_lenet5_$$method hydra.sweep.dir=multirun/tune_lenet5/$$method || exit 1; \
	done

tune-lenet5-baselines: ## LeNet-5 (#18): dropout, Dropout Compaction and Drop Pruning (per matrix and global) knobs (39 runs; resumable)
	for method in $(TUNE_LENET5_BASELINES); do \
		$(PY) scripts/train.py grid=tune_lenet5_$$method hydra.sweep.dir=multirun/tune_lenet5/$$method || exit 1; \
	done

tune-lenet5: tune-lenet5-cuts tune-lenet5-baselines ## LeNet-5 (#18): both tuning parts, their jobs' records (no checkpoints) kept in results/lenet5/tuning_jobs/, then each method's choice -> results/lenet5/tuning.csv, configs/grid/compare_lenet5_*.yaml
	$(PY) scripts/keep_runs.py multirun/tune_lenet5 results/lenet5/tuning_jobs
	$(PY) scripts/tune.py results/lenet5/tuning_jobs results/lenet5/tuning.csv

compaction-thresholds-lenet5: ## LeNet-5 (#18): Dropout Compaction's tuning runs re-compacted at other removal thresholds, from their checkpoints (after make tune-lenet5; seconds) -> results/lenet5/compaction_thresholds.csv
	$(PY) scripts/compaction_thresholds.py results/lenet5/compaction_thresholds.csv multirun/tune_lenet5/compaction/*/checkpoint.pt

continue-tune-lenet5: ## LeNet-5 (#18): the committed tuning jobs back into multirun/tune_lenet5, so that make tune-lenet5 skips them (resume=auto) and runs the rest
	$(PY) scripts/keep_runs.py results/lenet5/tuning_jobs multirun/tune_lenet5

TUNE_SHAKESPEARE := none structural sandwich none_wd structural_p matformer sandwich_lb matformer_distill

tune-shakespeare-runs: ## GPT (#19): 3 trials per method (2 learning rates, then a knob of its own at the better), seed 0, on validation (configs/grid/tune_shakespeare_*.yaml; 12 runs, ~3.5 h here; resumable)
	for method in $(TUNE_SHAKESPEARE); do \
		$(PY) scripts/train.py grid=tune_shakespeare_$$method hydra.sweep.dir=multirun/tune_shakespeare/$$method || exit 1; \
	done

tune-shakespeare: tune-shakespeare-runs ## GPT (#19): the tuning runs, their records (no checkpoints) kept in results/shakespeare/tuning_jobs/, then each method's choice -> results/shakespeare/tuning.csv, configs/grid/compare_shakespeare_*.yaml
	$(PY) scripts/keep_runs.py multirun/tune_shakespeare results/shakespeare/tuning_jobs
	$(PY) scripts/tune.py results/shakespeare/tuning_jobs results/shakespeare/tuning.csv --jobs 1

continue-tune-shakespeare: ## GPT (#19): the committed tuning jobs back into multirun/tune_shakespeare, so that make tune-shakespeare skips them (resume=auto) and runs the rest
	$(PY) scripts/keep_runs.py results/shakespeare/tuning_jobs multirun/tune_shakespeare

COMPARE_ONE_RUN := untuned structural nested sandwich distilled nested_distill dropout
COMPARE_BASELINES := independent compaction drop_pruning

compare-mnist-one-run: ## MNIST final comparison, one-run methods at their tuned settings, seeds 1-3 (resumable) -> multirun/compare_mnist/
	for part in $(COMPARE_ONE_RUN); do \
		$(PY) scripts/train.py grid=compare_mnist_$$part hydra.sweep.dir=multirun/compare_mnist/$$part || exit 1; \
	done

compare-mnist-baselines: ## MNIST final comparison, separately trained widths and pruning baselines, seeds 1-3 (resumable)
	for part in $(COMPARE_BASELINES); do \
		$(PY) scripts/train.py grid=compare_mnist_$$part hydra.sweep.dir=multirun/compare_mnist/$$part || exit 1; \
	done

compare-mnist: compare-mnist-one-run compare-mnist-baselines ## MNIST: the final comparison's two parts, then its tables and figure -> results/compare/
	$(PY) scripts/compare.py --ordering-seed 1 results/compare/mnist multirun/compare_mnist

# The one-run methods issue #18 names: plain training truncated, the paper's rule, and the best
# one-run method on validation (the highest validation score of results/lenet5/tuning.csv; a test
# keeps this line in step with it).
LENET5_BEST := sandwich
COMPARE_LENET5_ONE_RUN := untuned structural $(LENET5_BEST)

compare-lenet5-one-run: ## LeNet-5 (#18) final comparison: plain training truncated, the paper's rule, the best one-run method on validation, seeds 1-3 (make tune-lenet5 first; resumable)
	for part in $(COMPARE_LENET5_ONE_RUN); do \
		$(PY) scripts/train.py grid=compare_lenet5_$$part hydra.sweep.dir=multirun/compare_lenet5/$$part || exit 1; \
	done

compare-lenet5-baselines: ## LeNet-5 (#18) final comparison, separately trained LeNets (11 widths) and the pruning baselines, seeds 1-3 (resumable)
	for part in $(COMPARE_BASELINES); do \
		$(PY) scripts/train.py grid=compare_lenet5_$$part hydra.sweep.dir=multirun/compare_lenet5/$$part || exit 1; \
	done

compare-lenet5: compare-lenet5-one-run compare-lenet5-baselines ## LeNet-5 (#18): both parts, their jobs' records (no checkpoints) kept in results/compare/lenet5_jobs/, then the tables and figure -> results/compare/lenet5*
	$(PY) scripts/keep_runs.py multirun/compare_lenet5 results/compare/lenet5_jobs
	$(PY) scripts/compare.py --no-ordering results/compare/lenet5 results/compare/lenet5_jobs

continue-compare-lenet5: ## LeNet-5 (#18): the committed comparison jobs back into multirun/compare_lenet5, so that make compare-lenet5 skips them (resume=auto) and runs the rest
	$(PY) scripts/keep_runs.py results/compare/lenet5_jobs multirun/compare_lenet5

# cheapest first, so that a session's share of the ~5 h lands whole methods (resume=auto skips the
# finished jobs of an earlier session). The sandwich rule runs at equal compute only: at 3,000
# steps (~25 min a seed) the tuning put it 0.22 nats behind the paper's rule on validation
# (seed 0, results/shakespeare/tuning.csv), so it is no candidate for the best one-run method;
# grid=compare_shakespeare_sandwich runs it.
COMPARE_SHAKESPEARE := none structural structural_equal_compute sandwich_equal_compute \
	matformer_equal_compute independent matformer

compare-shakespeare-runs: ## GPT (#19) final comparison, seeds 1-3 at each method's tuned learning rate: plain, the paper's rule, the three many-widths rules at plain training's compute, separately trained GPTs at MatFormer's granularities, MatFormer (make tune-shakespeare first; ~5 h here; resumable)
	for part in $(COMPARE_SHAKESPEARE); do \
		$(PY) scripts/train.py grid=compare_shakespeare_$$part hydra.sweep.dir=multirun/compare_shakespeare/$$part || exit 1; \
	done

compare-shakespeare: compare-shakespeare-runs ## GPT (#19): the comparison's runs, their records (no checkpoints) kept in results/compare/shakespeare_jobs/, then the tables and figure -> results/compare/shakespeare*
	$(PY) scripts/keep_runs.py multirun/compare_shakespeare results/compare/shakespeare_jobs
	$(PY) scripts/compare.py --no-ordering results/compare/shakespeare results/compare/shakespeare_jobs

continue-compare-shakespeare: ## GPT (#19): the committed comparison jobs back into multirun/compare_shakespeare, so that make compare-shakespeare skips them (resume=auto) and runs the rest
	$(PY) scripts/keep_runs.py results/compare/shakespeare_jobs multirun/compare_shakespeare

gpu-check: ## on a GPU machine first: every experiment's smoke run on CUDA, its training step timed at the paper profile, a 2-process DDP run with two GPUs -> results/gpu/gpu_check.json
	$(PY) scripts/gpu_check.py

bench: ## benchmarks behind the speed claims (~12 min) -> results/bench/bench.csv, widths.csv
	$(PY) scripts/bench.py

ddp-cuts-mnist: ## #20: what each rank's cut should be, measured: MNIST's cpu profile over 2 processes (torchrun, gloo), +distributed.cuts same vs per_rank, seeds 1-3, one run at a time (~15 min; resumable) -> results/mnist/ddp_cuts.csv
	for cuts in same per_rank; do for seed in 1 2 3; do \
		$(RUN) torchrun --standalone --nproc_per_node=2 scripts/train.py experiment=mnist profile=cpu \
			+distributed.cuts=$$cuts seed=$$seed resume=auto progress=false \
			hydra.run.dir=multirun/ddp_cuts_mnist/$${cuts}_$$seed || exit 1; \
	done; done
	$(PY) scripts/aggregate.py multirun/ddp_cuts_mnist results/mnist/ddp_cuts.csv

sweep-mnist: ## MNIST: 5 seeds x p in {0,0.25,0.5,1}, 2 runs at a time (~33 min) -> results/mnist/seeds.csv
	$(PY) scripts/train.py grid=mnist_seeds hydra.sweep.dir=multirun/mnist_seeds
	$(PY) scripts/aggregate.py multirun/mnist_seeds results/mnist/seeds.csv

render: ## regenerate every table of README.md, the notes under results/ and docs/ from the committed CSVs
	$(PY) scripts/render.py

figures: ## redraw every figure from the committed CSVs in results/
	$(PY) scripts/figures.py results

clean: ## delete run outputs (outputs/, multirun/); keeps results/ and data/
	rm -rf outputs multirun .pytest_cache .ruff_cache
