"""Sweep every width of a saved model.

python scripts/sweep.py checkpoint=outputs/mnist/<run>/checkpoint.pt
"""

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from structural_dropout.lab.logs import one_line_errors
from structural_dropout.lab.run import sweep_checkpoint


@hydra.main(version_base="1.3", config_path="../configs", config_name="sweep")
@one_line_errors
def main(config: DictConfig) -> None:
    sweep_checkpoint(config.checkpoint, config, Path(HydraConfig.get().runtime.output_dir))


if __name__ == "__main__":
    main()
