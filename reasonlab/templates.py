"""Prompt templates: how a problem becomes a model's input, and which answer format it asks for.

A template is data (`Template`): an optional system prompt; the user text, a format string over
`{question}`, `{prompt}` (the task's own instruction, e.g. the tiny world's) and any field of the
problem's `meta` (countdown's `{numbers}` and `{target}`); an assistant prefill the model
continues from (e.g. `<think>`); whether the model's chat template renders the turn (`chat`) or
the text is used raw (base models); and the answer format it asks for (`tags`:
`<think>…</think><answer>…</answer>`, or `boxed`: reasoning then `\\boxed{…}`).

The model writes after the prefill, so what rewards and checks read is the assistant's whole
turn, `prefill + completion` (`Template.response`).

Which template applies (`resolve`): the one named (`template=NAME`, or `template=FILE.yaml`);
else the one recorded in the model directory (`reasonlab_template.json`, written by pretrain,
sft and grpo); else `chat-think` for a model with a chat template and `r1-zero` for one without.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from reasonlab.config import from_dict as typed
from reasonlab.config import read_mapping
from reasonlab.errors import ReasonlabError
from reasonlab.io import write_json_atomic

RECORD = "reasonlab_template.json"  #: a model directory's template, written next to config.json
ANSWER_FORMATS = ("tags", "boxed")

TAGS_SYSTEM = ("You are a helpful assistant. First think step by step inside <think> </think> tags, then "
               "give only the final answer inside <answer> </answer> tags, for example: "
               "<think> reasoning here </think> <answer> 42 </answer>")
R1_ZERO = ("A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
           "The assistant first thinks about the reasoning process in the mind and then provides the user "
           "with the answer. The reasoning process and answer are enclosed within <think> </think> and "
           "<answer> </answer> tags, respectively, i.e., <think> reasoning process here </think> "
           "<answer> answer here </answer>. ")
COUNTDOWN_USER = ("Using the numbers {numbers}, create an equation that equals {target}. You can use basic "
                  "arithmetic operations (+, -, *, /) and each number can only be used once. Show your work "
                  "in <think> </think> tags. And return the final answer in <answer> </answer> tags, for "
                  "example <answer> (1 + 2) / 3 </answer>.")


@dataclass(frozen=True)
class Template:
    """One way to frame a problem for a model (see the module docstring)."""

    name: str
    user: str = "{question}"
    system: str = ""
    prefill: str = ""
    chat: bool = True
    answer_format: str = "tags"
    description: str = ""

    def validate(self) -> Template:
        if self.answer_format not in ANSWER_FORMATS:
            raise ReasonlabError(f"template {self.name}: answer_format {self.answer_format!r} is not one of "
                                 f"{', '.join(ANSWER_FORMATS)}")
        if "{" not in self.user:
            raise ReasonlabError(f"template {self.name}: user text has no {{question}} or {{prompt}} field")
        return self

    def user_text(self, task, problem) -> str:
        """The user message: the format string filled from the problem (and the task's prompt)."""
        fields = {**problem.meta, "question": problem.question}
        if "{prompt}" in self.user:
            fields["prompt"] = task.prompt(problem)
        try:
            return self.user.format(**{k: _show(v) for k, v in fields.items()})
        except (KeyError, IndexError) as e:
            raise ReasonlabError(f"template {self.name}: problem {problem.id} has no field {e} "
                                 f"(has {', '.join(sorted(fields))})") from None

    def messages(self, task, problem) -> list[dict]:
        """System (when set) and user messages, without the prefill."""
        system = [{"role": "system", "content": self.system}] if self.system else []
        return system + [{"role": "user", "content": self.user_text(task, problem)}]

    def render(self, tokenizer, task, problem) -> str:
        """The model's whole input text, prefill included.

        >>> from reasonlab.tasks import Problem
        >>> t = get_template("r1-zero")
        >>> t.render(None, None, Problem("p", "What is 2+3?", "5"))[-48:]
        '</answer>. User: What is 2+3?\\nAssistant: <think>'
        """
        if not self.chat:
            return self.system + self.user_text(task, problem) + self.prefill
        if not getattr(tokenizer, "chat_template", None):
            raise ReasonlabError(f"template {self.name}: the model has no chat template; use a raw template "
                                 "(e.g. template=r1-zero) for base models")
        text = tokenizer.apply_chat_template(self.messages(task, problem), tokenize=False, add_generation_prompt=True)
        return text + self.prefill

    def response(self, completion: str) -> str:
        """The assistant's whole turn, as rewards read it: the prefill, then what the model wrote.

        >>> Template("x", prefill="<think>").response("2+2=4</think><answer>4</answer>")
        '<think>2+2=4</think><answer>4</answer>'
        """
        return self.prefill + completion

    def with_prefill(self, extra: str) -> Template:
        """The same template with `extra` appended to its prefill (a scaling run's `<think>\\n`).

        >>> get_template("r1-zero").with_prefill("\\n").prefill
        ' <think>\\n'
        """
        return dataclasses.replace(self, prefill=self.prefill + extra) if extra else self

    def strip_prefill(self, response: str) -> str:
        """What the model writes after the prefill, for a response that starts with it (SFT data).

        >>> Template("x", prefill=" <think>").strip_prefill("<think>\\n1+1=2</think>")
        '\\n1+1=2</think>'
        """
        if self.prefill and response.startswith(self.prefill):
            return response[len(self.prefill):]
        core = self.prefill.strip()
        if core and response.lstrip().startswith(core):
            return response.lstrip()[len(core):]
        return response

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _show(value) -> str:
    """Lists read as `3, 5, 7` (countdown's numbers), everything else as `str`."""
    return ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


BUILTIN: dict[str, Template] = {t.name: t for t in (
    Template("tiny", user="{prompt}", chat=True,
             description="the tiny world's frame: the task's own instruction in the model's chat template"),
    Template("r1-zero", user="User: {question}\nAssistant:", system=R1_ZERO, prefill=" <think>", chat=False,
             description="DeepSeek-R1-Zero's raw-text template for base models, prefilled with <think>"),
    Template("chat-think", system=TAGS_SYSTEM, chat=True,
             description="instruct models: a system prompt asking for <think> and <answer> tags"),
    Template("qwen-math-boxed", user="{question}\nPlease reason step by step, and put your final answer "
             "within \\boxed{{}}.", chat=True, answer_format="boxed",
             description="Qwen2.5-Math's instruction: reasoning, then the answer in \\boxed{}"),
    Template("tinyzero-countdown", user=R1_ZERO + "User: " + COUNTDOWN_USER + "\nAssistant: Let me solve this "
             "step by step.\n", prefill="<think>", chat=False,
             description="TinyZero's countdown prompt for base models, prefilled with <think>"),
    Template("tinyzero-countdown-chat", user=COUNTDOWN_USER, prefill="Let me solve this step by step.\n<think>",
             chat=True, description="TinyZero's countdown prompt for instruct models (chat template + prefill)"),
)}


def load_template_file(path: str | Path) -> Template:
    """A template from YAML: the fields of `Template` (`name` defaults to the file's stem)."""
    data = read_mapping(path, missing="template: no such file")
    return from_dict({"name": Path(path).stem, **data}, str(path))


def from_dict(data: dict, where: str = "template") -> Template:
    return typed(Template, data, where).validate()


def get_template(spec: str) -> Template:
    """A built-in template by name, or one defined in a YAML file."""
    if spec in BUILTIN:
        return BUILTIN[spec]
    if spec.endswith((".yaml", ".yml")) or Path(spec).is_file():
        return load_template_file(spec)
    raise ReasonlabError(f"template: unknown {spec!r} (built-ins: {', '.join(BUILTIN)}; or a YAML file)")


def recorded(model_dir: str | Path | None) -> Template | None:
    """The template recorded in a model directory, if any."""
    if not model_dir:
        return None
    path = Path(model_dir) / RECORD
    if not path.exists():
        return None
    try:
        return from_dict(json.loads(path.read_text()), str(path))
    except (ValueError, TypeError):
        raise ReasonlabError(f"{path}: not a template record") from None


def record(model_dir: str | Path, template: Template) -> None:
    """Write `template` into a model directory, so it is that model's default next time."""
    write_json_atomic(Path(model_dir) / RECORD, template.to_dict())


def resolve(spec: str = "", model_dir: str | Path | None = None, tokenizer=None) -> Template:
    """The template to use: `spec` when given; else the model's recorded one; else `chat-think`
    when the tokenizer has a chat template and `r1-zero` when it has none."""
    if spec:
        return get_template(spec)
    found = recorded(model_dir)
    if found is not None:
        return found
    if tokenizer is None and model_dir and (Path(model_dir) / "tokenizer_config.json").exists():
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model_dir)
    return BUILTIN["chat-think" if getattr(tokenizer, "chat_template", None) else "r1-zero"]
