"""Reports drawn from committed tables: figures, multirun aggregation, the method comparison and
the unit-ablation diagnostic of a model's ordering."""
