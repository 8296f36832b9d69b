"""compressed-tensors checkpoints (llm-compressor): decompressed by the library's compressors.

The quantization_config of config.json is validated as the library's `QuantizationConfig`;
each config group's compressor (`BaseCompressor.get_value_from_registry(format)`: the
pack-quantized, int-quantized, float-quantized, naive-quantized or dense one) decompresses
one module's state dict at a time, read from the safetensors files with `safe_open`, the
same way the library's own `CompressedTensorsDequantizer` does it for a whole file. Every
stored quantization parameter of a module (`weight_scale`, `weight_zero_point`,
`weight_shape`, `weight_g_idx`, ...) counts toward that module's bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ledger.errors import InputError
from runners.formats.base import (
    Checkpoint,
    Reconstruction,
    SafetensorsIndex,
    read_config,
    safetensors_files,
)


def _library() -> Any:
    """The compressed_tensors package, or a clear InputError when it is missing."""
    try:
        import compressed_tensors
    except ImportError as exc:
        raise InputError(
            "reading a compressed-tensors checkpoint needs the `compressed-tensors` package "
            "(pip install 'evledger[formats]')"
        ) from exc
    return compressed_tensors


class CompressedTensorsCheckpoint(Checkpoint):
    """A compressed-tensors folder: config.json with quantization_config + safetensors."""

    format = "compressed-tensors"

    def __init__(self, path: Path):
        """Validate the config with the library, read headers and match modules to schemes."""
        ct = _library()
        from compressed_tensors.compressors import BaseCompressor
        from compressed_tensors.compressors.format import infer_module_format
        from compressed_tensors.config import CompressionFormat
        from compressed_tensors.quantization import QuantizationConfig, QuantizationMetadata
        from compressed_tensors.utils.match import match_quantizable_tensors

        root, files, index = safetensors_files(path)
        super().__init__(root)
        folder = path if path.is_dir() else path.parent
        cfg = read_config(folder) or {}
        qcfg = cfg.get("quantization_config")
        if not isinstance(qcfg, dict):
            raise InputError("no quantization_config in config.json", path=folder)
        self.add_file(folder / "config.json", "config")
        self.add_safetensors(files, index)
        try:
            self.config = QuantizationConfig.model_validate(qcfg)
        except Exception as exc:
            raise InputError(
                f"quantization_config is not a valid compressed-tensors config: {exc}",
                path=folder / "config.json",
            ) from exc
        self.library_version = str(getattr(ct, "__version__", "?"))
        self.declared_format = str(qcfg.get("format", ""))
        self.index = SafetensorsIndex(files)
        self._by_name = {s.name: s for s in self._stored}
        qparams = set(QuantizationMetadata.all_qparam_names())
        names = {s.name: None for s in self._stored}
        self._modules: dict[str, tuple[Any, Any, tuple[str, ...]]] = {}
        self.formats: dict[str, str] = {}
        for group, scheme in self.config.config_groups.items():
            if scheme.format is None:
                scheme.format = (
                    CompressionFormat(self.declared_format)
                    if self.declared_format
                    else CompressionFormat(infer_module_format(torch.nn.Linear, scheme))
                )
            fmt = CompressionFormat(scheme.format).value
            self.formats[group] = fmt
            compressor = BaseCompressor.get_value_from_registry(fmt)
            params = tuple(compressor.compression_param_names(scheme))
            for module, _ in match_quantizable_tensors(
                names, ignore=self.config.ignore, targets=scheme.targets, param_targets=[params[0]]
            ):
                # every parameter the compressor needs must be stored (an untargeted
                # LayerNorm.weight also matches "Linear" by name alone)
                if all(f"{module}.{p}" in self._by_name for p in params):
                    self._modules.setdefault(module, (compressor, scheme, params))
        consumed: set[str] = set()
        self._parts: dict[str, dict[str, int]] = {}
        for module, (_, _, params) in self._modules.items():
            local = {p for p in params if f"{module}.{p}" in self._by_name}
            local |= {
                s.name.rpartition(".")[2]
                for s in self._stored
                if s.name.rpartition(".")[0] == module and s.name.rpartition(".")[2] in qparams
            }
            self._parts[module] = {
                f"{module}.{p}": self._by_name[f"{module}.{p}"].nbytes for p in local
            }
            consumed |= set(self._parts[module])
        self._plain = [s.name for s in self._stored if s.name not in consumed]

    def names(self) -> list[str]:
        """Each compressed module's `.weight`, then every other stored tensor."""
        return [f"{m}.weight" for m in self._modules] + self._plain

    def load(self, name: str) -> Reconstruction:
        """Decompress one module with its compressor, or read a plain tensor."""
        module = name.removesuffix(".weight")
        if name.endswith(".weight") and module in self._modules:
            compressor, scheme, params = self._modules[module]
            state = {
                p: self.index.get(f"{module}.{p}")
                for p in params
                if f"{module}.{p}" in self._by_name
            }
            try:
                out = compressor.decompress(state, scheme)
            except Exception as exc:
                raise InputError(
                    f"compressed-tensors could not decompress {module}: {exc}"
                ) from exc
            w = out["weight"].to(torch.float32)
            return Reconstruction(name, w, dict(self._parts[module]), self.formats_of(scheme))
        if name in self._plain:
            t = self.index.get(name).to(torch.float32)
            return Reconstruction(name, t, {name: self._by_name[name].nbytes}, "plain")
        raise KeyError(name)

    @staticmethod
    def formats_of(scheme: Any) -> str:
        """A short scheme label, e.g. pack-quantized-int4-group128."""
        w = scheme.weights
        gs = f"-group{w.group_size}" if getattr(w, "group_size", None) else ""
        fmt = getattr(scheme.format, "value", scheme.format)
        return f"{fmt}-{w.type}{w.num_bits}-{w.strategy}{gs}"

    def describe(self) -> dict[str, Any]:
        """Library version, declared format, groups with their scheme, ignore list."""
        groups = {}
        for name, scheme in self.config.config_groups.items():
            w = scheme.weights
            groups[name] = {
                "format": self.formats[name],
                "targets": list(scheme.targets),
                "weights": None
                if w is None
                else {
                    "num_bits": w.num_bits,
                    "type": str(getattr(w.type, "value", w.type)),
                    "symmetric": w.symmetric,
                    "strategy": str(getattr(w.strategy, "value", w.strategy)),
                    "group_size": w.group_size,
                },
            }
        return {
            "format": "compressed-tensors",
            "reader": f"compressed-tensors {self.library_version} compressors",
            "declared_format": self.declared_format,
            "config_groups": groups,
            "ignore": list(self.config.ignore or []),
            "modules": len(self._modules),
        }
