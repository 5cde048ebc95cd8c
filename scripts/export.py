"""Export one width of a trained model as a plain, smaller PyTorch model.

python scripts/export.py checkpoint=outputs/reproduce/mnist/checkpoint.pt width=64 out=mnist_w64
python scripts/export.py checkpoint=outputs/reproduce/shakespeare/checkpoint.pt width=null \
    ffn=128 heads=2 out=gpt_ffn128_h2

Writes weights.pt + architecture.json (torch.nn layers, when the model is a plain stack of them),
model.pt2 (torch.export: reload with ``torch.export.load(path).module()``, no code of this repo
needed) and export.json (params, file sizes, the measured difference to the original model);
``onnx=true``: also model.onnx (dynamic batch), checked with onnxruntime (the ``onnx`` extra).
"""

import hydra
from omegaconf import DictConfig

from structural_dropout.lab.logs import one_line_errors
from structural_dropout.lab.run import export_checkpoint


@hydra.main(version_base="1.3", config_path="../configs", config_name="export")
@one_line_errors
def main(config: DictConfig) -> None:
    summary = export_checkpoint(
        config.checkpoint, config.width, config.out, config.device, config.ffn, config.heads,
        onnx=config.onnx,
    )
    width = summary["width"] or "full"
    shape = "" if "heads" not in summary else f" (ffn {summary['ffn']}, heads {summary['heads']})"
    print(
        f"width {width}{shape}: {summary['params']:,} params "
        f"(the full model has {summary['params_full_model']:,})"
    )
    for name, file in summary["files"].items():
        print(f"  {name:<12} {file['path']}  {file['bytes'] / 1024:,.1f} KiB")
    for name, diff in summary["max_abs_diff"].items():
        print(f"  max |{name} - original| on example inputs: {diff:.2e}")


if __name__ == "__main__":
    main()
