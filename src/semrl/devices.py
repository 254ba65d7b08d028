"""Which device and dtype a model runs in: one rule for the policy, reward models and encoders."""

from __future__ import annotations

from semrl.errors import UserError


def pick_device(setting: str | None = "auto") -> str:
    """auto (or unset): CUDA when there is one, else CPU. A CUDA device asked for on a machine
    without one is refused here, by its name, instead of failing inside torch later."""
    import torch

    if setting in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if setting.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device: {setting} was asked for, but no CUDA device is available")
    return setting


def torch_dtype(dtype: str, device: str):
    """auto: bf16 on a GPU that supports it, fp32 on CPU (bf16 matmuls are slow on most CPUs)."""
    import torch

    if dtype == "auto":
        if device.startswith("cuda") and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
