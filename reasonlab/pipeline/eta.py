"""How long the stages of `reasonlab run` will take, before they run.

Each stage kind's work is a unit count read from its config (tokens it trains on or generates,
times the parameters of the model doing it), and a stage's time is that work times a
seconds-per-unit rate. Rates start from defaults measured with the tiny world on a 2-core CPU
(`recipes/pipeline.yaml`, about 21 minutes on an AVX-512 EPYC) and are replaced, kind by kind, by
the rate this run directory's earlier stages actually ran at (`stage_times.json`), so the estimate
is rough on a first run and sharpens as stages finish. A kind not yet timed here is estimated at its default
rate times the machine's speed factor (measured / default time of the stages that have run): on a
CPU three times slower than the one the defaults come from, the first finished stage (the base
model's pretraining) corrects the estimate of every later one. A model bigger than the tiny
world gets no default rate (a GPU run's speed is not predictable from a CPU's): its stages count
as untimed until one of their kind has run. Rates are of a stage alone with every core; one run
side by side (`workers` > 1) is recorded as such and its time divided by `SIDE_BY_SIDE` before it
makes a rate, and estimates for a side-by-side run are multiplied by it, so a directory timed one
way estimates the other.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from reasonlab.io import write_json_atomic
from reasonlab.world.model import PRESETS

#: seconds per unit, measured on 2 cores with the tiny world (see the module docstring)
DEFAULT_RATES = {"pretrain": 7.8e-11, "grpo": 1.5e-10, "sft": 9e-9, "traces": 5.5e-11, "scale": 8.5e-11,
                 "rm": 3.5e-10, "journey": 5.0, "eval": 4.4e-11, "convert": 20.0}
#: kinds whose unit is the whole stage (a fixed few seconds): their times say nothing of the CPU's speed
FIXED_KINDS = ("journey", "convert")
#: a timed stage counts towards the machine's speed factor when the defaults put it at this many
#: seconds or more
MIN_TIMED = 20.0
#: seconds every stage or evaluation spends loading and saving, whatever its size
OVERHEAD = 0.5
#: above this many parameters the CPU defaults say nothing
TINY_WORLD = 5e7
#: rows assumed for an SFT data file that does not exist yet
UNKNOWN_ROWS = 300
#: how many times longer a stage takes at one of two cores beside another stage than alone at two
#: (the default recipe's four longest stages: 1.55-1.69x on an AVX-512 EPYC, ~1.3-1.45x on
#: an AVX2 one); without it the first ETA of a `workers: 2` run said 11:26 for a run of 17:11
SIDE_BY_SIDE = 1.5


def preset_params(preset: str, vocab: int = 512) -> float:
    """Parameters of a tiny-world preset, from its shape (no model is built).

    >>> round(preset_params("tiny") / 1e6, 2)
    0.92
    """
    p = PRESETS.get(preset, PRESETS["tiny"])
    h, i, layers = p["hidden_size"], p["intermediate_size"], p["num_hidden_layers"]
    kv = h * p["num_key_value_heads"] // p["num_attention_heads"]
    return float(layers * (2 * h * h + 2 * h * kv + 3 * h * i) + vocab * h)


def model_params(path: str, known: dict[str, float]) -> float | None:
    """A model directory's parameter count: known from an earlier stage, counted from its
    safetensors headers (exact, a tied matrix once), or estimated from its config.json."""
    if path in known:
        return known[path]
    cfg_file = Path(path) / "config.json"
    if not cfg_file.exists():
        return None
    counted = safetensors_params(Path(path))
    if counted:
        return counted
    c = json.loads(cfg_file.read_text())
    h, layers = c.get("hidden_size", 0), c.get("num_hidden_layers", 0)
    return float(layers * 12 * h * h + c.get("vocab_size", 0) * h)


def safetensors_params(d: Path) -> float:
    """Elements in a directory's safetensors files, from their headers alone (0 when none)."""
    total = 0
    for f in d.glob("*.safetensors"):
        with open(f, "rb") as fh:
            header = json.loads(fh.read(int.from_bytes(fh.read(8), "little")))
        total += sum(math.prod(v["shape"]) for k, v in header.items() if k != "__metadata__")
    return float(total)


def _rows(path: str) -> int:
    p = Path(path)
    return sum(1 for _ in p.open()) if p.exists() else UNKNOWN_ROWS


def units(kind_name: str, cfg, params: float | None) -> float:
    """The work of one stage in this kind's units (see the module docstring)."""
    n = params or 1e6
    if kind_name == "pretrain":
        return cfg.steps * cfg.batch_size * cfg.seq_len * n
    if kind_name == "grpo":
        return cfg.steps * cfg.prompts_per_step * cfg.generations_per_prompt * cfg.max_new_tokens * n
    if kind_name == "sft":
        return (cfg.steps * cfg.batch_size if cfg.steps else cfg.epochs * _rows(cfg.data)) * n
    if kind_name == "traces":
        return cfg.n * cfg.samples * cfg.max_new_tokens * n
    if kind_name == "scale":
        return cfg.n * _scale_samples(cfg) * cfg.max_new_tokens * n
    if kind_name == "rm":
        rollouts = 1 + (cfg.mc_rollouts if cfg.kind == "prm" else 0)
        return (cfg.n + cfg.heldout) * cfg.samples * cfg.max_new_tokens * rollouts * n
    return 1.0  # journey, convert: a fixed few seconds


def _scale_samples(cfg) -> float:
    """Samples per problem a scaling run costs, method by method, in units of one sampled
    completion (greedy passes are slower per sample: they are not batched n at a time; beam
    scores every step with the PRM)."""
    pool = cfg.pool or max(cfg.budgets)
    searched = cfg.search_budgets or [b for b in cfg.budgets if b >= cfg.expansions]
    per = {"cot": 10.0, "self-consistency": pool, "best-of-n": 0.7 * pool, "beam": 7.5 * sum(searched),
           "budget": 2.5 * (len(cfg.caps) + len(cfg.waits))}
    return sum(per.get(m, pool) for m in cfg.methods())


def eval_units(ecfg, params: float | None) -> float:
    return ecfg.n * (1 + ecfg.samples) * ecfg.max_new_tokens * (params or 1e6)


def load_times(out: str | Path) -> dict:
    """`OUT/stage_times.json` as `{name: {kind, units, seconds}}` (entries of the older
    `{name: seconds}` form carry no units and are dropped)."""
    path = Path(out) / "stage_times.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    return {k: v for k, v in data.items() if isinstance(v, dict)}


def record_time(out: str | Path, name: str, kind_name: str, seconds: float, work: float,
                shared: bool = False) -> dict:
    """Add one stage's (or evaluation's) time to `OUT/stage_times.json`; returns the whole record.
    `work` 0 keeps the time out of the rates (a resumed stage's tail); `shared`: it ran beside
    another stage (see `SIDE_BY_SIDE`)."""
    history = load_times(out)
    history[name] = {"kind": kind_name, "seconds": seconds, "units": work} | ({"shared": True} if shared else {})
    write_json_atomic(Path(out) / "stage_times.json", history)
    return history


def alone(entry: dict) -> float:
    """A recorded stage's seconds as it would have run alone (see `SIDE_BY_SIDE`).

    >>> alone({"seconds": 30.0}), alone({"seconds": 30.0, "shared": True})
    (30.0, 20.0)
    """
    return entry["seconds"] / (SIDE_BY_SIDE if entry.get("shared") else 1.0)


def learned_rates(history: dict) -> dict[str, float]:
    """Seconds per unit (alone) by kind from earlier stage times `{name: {kind, units, seconds}}`."""
    spent: dict[str, list[float]] = {}
    for entry in history.values():
        if isinstance(entry, dict) and entry.get("units"):
            s = spent.setdefault(entry["kind"], [0.0, 0.0])
            s[0] += alone(entry)
            s[1] += entry["units"]
    return {k: sec / u for k, (sec, u) in spent.items() if u > 0}


def machine_factor(history: dict) -> float:
    """How many times slower (> 1) or faster (< 1) than the defaults this machine ran the stages it
    has timed: the geometric mean of seconds / default estimate over `{name: {kind, units,
    seconds}}`, counting only stages the defaults put at `MIN_TIMED` seconds or more (a smaller
    one's time is mostly loading and saving). 1.0 before any such stage has run.

    >>> pre, rl = 1e13, 1e12  # units: ~780 s and ~150 s by the defaults
    >>> round(machine_factor({"base": {"kind": "pretrain", "units": pre, "seconds": 4 * 7.8e-11 * pre},
    ...                       "rl": {"kind": "grpo", "units": rl, "seconds": 1.5e-10 * rl},
    ...                       "tiny": {"kind": "sft", "units": 1e6, "seconds": 2.0}}), 6)
    2.0
    """
    logs = [math.log(alone(e) / (DEFAULT_RATES[e["kind"]] * e["units"])) for e in history.values()
            if isinstance(e, dict) and e.get("kind") in DEFAULT_RATES and e["kind"] not in FIXED_KINDS
            and e.get("units") and e.get("seconds", 0) > 0 and DEFAULT_RATES[e["kind"]] * e["units"] >= MIN_TIMED]
    return math.exp(sum(logs) / len(logs)) if logs else 1.0


def estimate(kind_name: str, work: float, params: float | None, rates: dict[str, float],
             speed: float = 1.0, shared: bool = False, limit: float = 0.0) -> float | None:
    """Seconds for `work` units of this kind, or None when nothing says (a big model, never timed).
    A kind not timed here gets its default rate times `speed` (`machine_factor`); `shared`: it
    will run beside another stage (`SIDE_BY_SIDE`); `limit`: its time budget (`budgeted`)."""
    beside = SIDE_BY_SIDE if shared else 1.0
    if kind_name in rates:
        return budgeted(rates[kind_name] * work * beside, limit)
    if params is not None and params > TINY_WORLD and kind_name not in FIXED_KINDS:
        return budgeted(None, limit)
    speed = 1.0 if kind_name in FIXED_KINDS else speed * beside
    return budgeted(DEFAULT_RATES.get(kind_name, 0.0) * work * speed + OVERHEAD, limit)


def time_limit(cfg) -> float:
    """A stage's time budget in seconds (`max_minutes` of the trainers; 0: none)."""
    return 60.0 * (getattr(cfg, "max_minutes", 0.0) or 0.0)


def budgeted(seconds: float | None, limit: float) -> float | None:
    """An estimate under a time budget of `limit` seconds (0: none): never above it, and the budget
    itself where nothing else says (a big model never timed). Loading, saving and its evaluations
    come on top and are not counted.

    >>> budgeted(900.0, 600.0), budgeted(300.0, 600.0), budgeted(None, 600.0), budgeted(None, 0.0)
    (600.0, 300.0, 600.0, None)
    """
    if not limit:
        return seconds
    return limit if seconds is None else min(seconds, limit)


def time_left(plan: list, history: dict, done: set[str] = frozenset()) -> tuple[float, int]:
    """Estimated seconds for the stages (and evaluations) still to do, and how many stages have
    no estimate (see `eta`)."""
    rates, speed = learned_rates(history), machine_factor(history)
    total, unknown = 0.0, 0
    for p in plan:  # a stage done in this run still has its evaluation ahead
        parts = [(p.spec.kind, p.units, time_limit(p.config))] if p.status != "up to date" and p.spec.name not in done else []
        parts += [("eval", p.eval_units, 0.0)] if p.eval_units else []
        for kind_name, work, limit in parts:
            t = estimate(kind_name, work, p.params, rates, speed, limit=limit)
            total, unknown = (total + t, unknown) if t is not None else (total, unknown + 1)
    return total, unknown


def eta_text(plan: list, history: dict, done: set[str] = frozenset()) -> str:
    """`time_left` as the console shows it: `~m:ss`, plus how many stages were never timed."""
    seconds, unknown = time_left(plan, history, done)
    return f"~{clock(seconds)}" + (f" + {unknown} never timed" if unknown else "")


def clock(seconds: float) -> str:
    """Seconds as m:ss (h:mm:ss past an hour).

    >>> clock(75), clock(3725)
    ('1:15', '1:02:05')
    """
    m, s = divmod(int(seconds), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"
