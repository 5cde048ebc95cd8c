"""Train one model, then sweep every width: python scripts/train.py experiment=mnist profile=cpu"""

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from structural_dropout.lab.logs import one_line_errors
from structural_dropout.lab.run import train_and_sweep


@hydra.main(version_base="1.3", config_path="../configs", config_name="train")
@one_line_errors
def main(config: DictConfig) -> None:
    train_and_sweep(config, Path(HydraConfig.get().runtime.output_dir))


if __name__ == "__main__":
    main()
