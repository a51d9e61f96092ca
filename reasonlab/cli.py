"""The `reasonlab` command line. Each command builds its config dataclass (recipe file < flags <
`key=value` overrides) and calls the library; errors the user can fix print one line, exit 2."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from reasonlab.clioptions import config_command, given
from reasonlab.errors import ReasonlabError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Build and improve reasoning LLMs.")

DEFAULT_RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "pipeline.yaml"
OVERRIDES = typer.Argument(None, help="extra settings as key=value (e.g. lr=1e-3 mix.direct=0.3)")
CONFIG = typer.Option(None, "--config", "-c", help="YAML recipe")


def _load(cls, ctx: typer.Context, config, overrides, **flags):
    """The command's config: recipe file < named options (and `flags`) < key=value overrides."""
    from reasonlab.config import load_config, parse_overrides

    extra = parse_overrides(list(overrides or []))
    named = given(ctx) | {k: v for k, v in flags.items() if v is not None}
    return load_config(cls, config, {**named, **extra})


@app.command(cls=config_command("reasonlab.world.pretrain:PretrainConfig", "out", "preset", "steps", "seed", "resume"))
def pretrain(
    ctx: typer.Context,
    config: str | None = CONFIG,
    overrides: list[str] | None = OVERRIDES,
):
    """Pretrain the tiny base model from scratch on the synthetic corpus."""
    from reasonlab.world.pretrain import PretrainConfig
    from reasonlab.world.pretrain import pretrain as run

    cfg = _load(PretrainConfig, ctx, config, overrides)
    run(cfg)


@app.command("eval", cls=config_command("reasonlab.evaluation.evaluate:EvalConfig", "model", "task", "n", "samples",
                                           "temperature", "out"))
def eval_cmd(
    ctx: typer.Context,
    config: str | None = CONFIG,
    overrides: list[str] | None = OVERRIDES,
):
    """Evaluate a model: greedy accuracy, pass@k, maj@K, format rate, tokens, cost.

    Defaults: 200 problems, 16 samples at T=1.0, max_new_tokens sized to the model (128 tiny
    world, 512 real), the model's recorded template (else chat-think / r1-zero). key=value sets
    any other field: template=, max_new_tokens=, precision=, top_p=, split=, seed=."""
    import json

    from reasonlab.evaluation import EvalConfig, evaluate

    cfg = _load(EvalConfig, ctx, config, overrides)
    res = evaluate(cfg, log=lambda m: print(m, file=sys.stderr))
    _print_results(res)
    print(json.dumps({k: res[k] for k in ("greedy_accuracy", "pass@1", "format_rate")}))


def _print_results(res: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{res['task']} · {res['n_problems']} problems · {res['model']}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in res.items():
        if isinstance(v, float):
            table.add_row(k, f"{v:.4g}")
        elif isinstance(v, list) and len(v) == 2:
            table.add_row(k, f"[{v[0]:.3f}, {v[1]:.3f}]")
    Console(stderr=True).print(table)


@app.command(cls=config_command("reasonlab.rl.config:GRPOConfig", "model", "task", "steps", "out", "resume"))
def grpo(
    ctx: typer.Context,
    config: str | None = CONFIG,
    overrides: list[str] | None = OVERRIDES,
):
    """Train with GRPO / Dr. GRPO / DAPO on verifiable rewards (R1-Zero, TinyZero)."""
    from reasonlab.rl.config import GRPOConfig
    from reasonlab.rl.grpo import run_grpo

    cfg = _load(GRPOConfig, ctx, config, overrides)
    final = run_grpo(cfg, log=lambda m: print(m, file=sys.stderr))
    print(final)


@app.command(cls=config_command("reasonlab.sft.trainer:SFTConfig", "model", "data", "out", "epochs", "lr", "resume"))
def sft(
    ctx: typer.Context,
    config: str | None = CONFIG,
    overrides: list[str] | None = OVERRIDES,
):
    """Supervised fine-tuning with the loss on completion tokens only."""
    from reasonlab.sft.trainer import SFTConfig, run_sft

    cfg = _load(SFTConfig, ctx, config, overrides)
    print(run_sft(cfg, log=lambda m: print(m, file=sys.stderr)))


@app.command(cls=config_command("reasonlab.sft.traces:TracesConfig", "teacher", "task", "n", "samples", "out"))
def traces(
    ctx: typer.Context,
    config: str | None = CONFIG,
    overrides: list[str] | None = OVERRIDES,
):
    """Rejection sampling: keep only verified, well-formed teacher traces, as SFT data."""
    import json

    from reasonlab.sft.traces import TracesConfig, generate_traces

    cfg = _load(TracesConfig, ctx, config, overrides)
    summary = generate_traces(cfg, log=lambda m: print(m, file=sys.stderr))
    print(f"acceptance {summary['acceptance_rate']:.1%} ({summary['verified']} of {summary['samples']} samples "
          f"verified, {summary['kept']} kept), {summary['generated_tokens']} tokens, "
          f"~${summary['usd_gpu']:.4f} GPU time / ~${summary['usd_api']:.4f} at API prices", file=sys.stderr)
    print(json.dumps(summary))


@app.command(cls=config_command("reasonlab.sft.journey:JourneyConfig", "traces", "out"))
def journey(
    ctx: typer.Context,
    config: str | None = CONFIG,
    overrides: list[str] | None = OVERRIDES,
):
    """Journey-learning traces (wrong step, noticing, backtracking, right path) and a matched shortcut set."""
    import json

    from reasonlab.sft.journey import JourneyConfig, build_journey

    cfg = _load(JourneyConfig, ctx, config, overrides)
    print(json.dumps(build_journey(cfg, log=lambda m: print(m, file=sys.stderr))))


@app.command(cls=config_command("reasonlab.pipeline.recipe:PipelineConfig", "out"))
def run(
    ctx: typer.Context,
    recipe: str | None = typer.Argument(None, help="pipeline recipe (YAML with stages; default recipes/pipeline.yaml)"),
    quick: bool = typer.Option(False, "--quick", help="apply the recipe's quick: section (a small, fast run)"),
    show_plan: bool = typer.Option(False, "--plan", help="print the plan (each stage's status, hash, inputs, estimate) and run nothing"),
    overrides: list[str] | None = typer.Argument(None, help="key=value, or stage.NAME.key=value"),
):
    """Run a multi-stage recipe (cached, resumable), evaluate every model, write report.md and results.json."""
    from reasonlab.pipeline.main import run_pipeline
    from reasonlab.pipeline.plan import plan
    from reasonlab.pipeline.recipe import load_pipeline

    if recipe and "=" in recipe and not Path(recipe).exists():  # `reasonlab run seed=1`: an override
        recipe, overrides = None, [recipe, *(overrides or [])]
    out = given(ctx).get("out")
    extra = list(overrides or []) + ([f"out={out}"] if out else [])
    cfg = load_pipeline(recipe or str(DEFAULT_RECIPE), quick=quick, overrides=extra)
    if show_plan:
        the_plan = plan(cfg)
        print("\n".join(the_plan.lines() + the_plan.details()))
        return
    if run_pipeline(cfg, log=lambda m: print(m, file=sys.stderr)) is not None:  # None: not the main process
        print((Path(cfg.out) / "report.md").read_text())


@app.command()
def report(run_dir: str = typer.Argument(..., help="a `reasonlab run` directory, finished or not")):
    """Rebuild report.md, report.html and results.json from what a run has finished."""
    from reasonlab.pipeline.main import rebuild_report

    rebuild_report(run_dir, log=lambda m: print(m, file=sys.stderr))
    print((Path(run_dir) / "report.md").read_text())


@app.command(cls=config_command("reasonlab.scaling.scale:ScaleConfig", "model", "task", "method", "n", "out"))
def scale(
    ctx: typer.Context,
    config: str | None = CONFIG,
    budget: int | None = typer.Option(None, help="largest budget N (budgets 1, 2, 4, … N)"),
    overrides: list[str] | None = OVERRIDES,
):
    """Inference-time scaling: accuracy vs tokens for each method on the same problems."""
    from reasonlab.scaling.scale import ScaleConfig, run_scale

    budgets = None
    if budget is not None:
        budgets = [2**i for i in range(budget.bit_length()) if 2**i <= budget] + ([budget] if budget & (budget - 1) else [])
    cfg = _load(ScaleConfig, ctx, config, overrides, budgets=budgets)
    run_scale(cfg, log=lambda m: print(m, file=sys.stderr))
    print(Path(cfg.out) / "scale.json")


rm_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Reward models for best-of-N and search.")
app.add_typer(rm_app, name="rm")


@rm_app.command("train", cls=config_command("reasonlab.scaling.rm:RMConfig", "model", "task", "kind", "out", "resume"))
def rm_train(
    ctx: typer.Context,
    config: str | None = CONFIG,
    overrides: list[str] | None = OVERRIDES,
):
    """Train an outcome or process reward model on the policy's own labelled rollouts."""
    import json

    from reasonlab.scaling.rm import RMConfig, train_rm

    cfg = _load(RMConfig, ctx, config, overrides)
    print(json.dumps(train_rm(cfg, log=lambda m: print(m, file=sys.stderr))))


@app.command(cls=config_command("reasonlab.rl.config:GRPOConfig", "model"))
def plan(
    ctx: typer.Context,
    config: str | None = CONFIG,
    plan_device: str = typer.Option("", "--device", help="device to plan for (default: the config's, else cpu)"),
    overrides: list[str] | None = OVERRIDES,
):
    """Peak memory of a GRPO config (weights, grads, optimizer, activations, KV cache) and the
    largest generation batch that fits; exit 1 when it does not fit."""
    from reasonlab.rl.config import GRPOConfig
    from reasonlab.train.memory import describe_plan, plan_for

    cfg = _load(GRPOConfig, ctx, config, overrides)
    p = plan_for(cfg, plan_device)
    print(describe_plan(p, cfg))
    if not p.fits:
        sys.exit(1)


@app.command(cls=config_command("reasonlab.convert:ConvertConfig", "gguf", "out", "dtype", "tie"))
def convert(ctx: typer.Context):
    """Convert a GGUF file into a standard Hugging Face model directory (dequantized)."""
    from reasonlab.convert import ConvertConfig, convert_gguf

    cfg = ConvertConfig(**given(ctx))
    cfg.validate()
    print(convert_gguf(cfg.path(), cfg.out, cfg.dtype, log=lambda m: print(m, file=sys.stderr), tie=cfg.resolved_tie()))


@app.command()
def templates(
    name: str | None = typer.Argument(None, help="a template name or YAML file to render (default: the model's)"),
    model: str | None = typer.Option(None, help="model directory: render with its tokenizer and chat template"),
    task: str = typer.Option("arithmetic", help="task whose first held-out problem is rendered"),
):
    """List the prompt templates; with --model (or a NAME), print one rendered for a problem."""
    from reasonlab.tasks import get_task
    from reasonlab.templates import BUILTIN, resolve

    if not model and not name:
        for t in BUILTIN.values():
            kind = ("chat" if t.chat else "raw") + f", {t.answer_format}" + (f", prefill {t.prefill!r}" if t.prefill else "")
            print(f"{t.name:24s} {kind:34s} {t.description}")
        return
    tokenizer = None
    if model:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model)
    template = resolve(name or "", model, tokenizer)
    t = get_task(task)
    print(f"# template {template.name} ({'chat' if template.chat else 'raw'}, answer format {template.answer_format})",
          file=sys.stderr)
    print(template.render(tokenizer, t, t.problems("eval", 1)[0]))


@app.command()
def version():
    """Print the version."""
    from reasonlab import __version__

    print(__version__)


def main() -> None:
    """Entry point: run the app; a `ReasonlabError` becomes `error: …` and exit code 2."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # weight loading/saving bars add nothing on tiny models
    try:
        code = app(standalone_mode=False)  # typer turns Ctrl-C into a returned 130, not an exception
        if code == 130:
            raise KeyboardInterrupt
        if isinstance(code, int) and code:
            sys.exit(code)
    except ReasonlabError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:  # outputs are written atomically: rerunning the command resumes
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except typer.Abort:
        sys.exit(1)
    except typer.TyperException as e:  # usage errors: a bad option value, an unknown option
        show = getattr(e, "show", None)
        show() if show else print(f"error: {e.format_message()}", file=sys.stderr)
        sys.exit(e.exit_code)

if __name__ == "__main__":
    main()
