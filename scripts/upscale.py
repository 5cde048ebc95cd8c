"""Super-resolve an image with a LIIF checkpoint at any scale and decoder width.

python scripts/upscale.py checkpoint=outputs/reproduce/liif/checkpoint.pt input=photo.png \
    scale=3.5 width=64
"""

from pathlib import Path

import hydra
from omegaconf import DictConfig

from experiments.liif.upscale import upscale_file
from structural_dropout.lab.logs import one_line_errors
from structural_dropout.lab.provenance import resolve_device


@hydra.main(version_base="1.3", config_path="../configs", config_name="upscale")
@one_line_errors
def main(config: DictConfig) -> None:
    source = Path(config.input)
    output = config.output or source.with_name(
        f"{source.stem}_x{config.scale}_w{config.width or 'full'}.png"
    )
    path, (height, width) = upscale_file(
        config.checkpoint,
        source,
        float(config.scale),
        config.width,
        output,
        resolve_device(config.device),
        config.chunk,
    )
    print(f"wrote {path} ({width}x{height})")


if __name__ == "__main__":
    main()
