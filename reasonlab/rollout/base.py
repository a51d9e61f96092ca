"""The rollout interface every backend implements (transformers now, vLLM later)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field


@dataclass
class SamplingParams:
    """How to sample. `temperature == 0` means greedy."""

    max_new_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    n: int = 1  #: completions per prompt
    stop: tuple[str, ...] = ("</answer>",)  #: generation also ends at eos
    seed: int | None = None
    #: record each sampled token's log-probability under the distribution it was drawn from
    #: (logits / temperature, top-k/top-p applied: vLLM's `processed_logprobs`)
    logprobs: bool = False


@dataclass
class Completion:
    text: str
    token_ids: list[int]
    finish_reason: str  #: "stop" (eos or a stop string) or "length"
    prompt_tokens: int
    logprobs: list[float] | None = field(default=None, repr=False)
    #: token count reported by a remote server, which sends text but no token ids
    reported_tokens: int | None = None
    #: the prompt's token ids as the engine fed them (local engines; shared by a prompt's samples)
    prompt_ids: list[int] | None = field(default=None, repr=False)

    @property
    def num_tokens(self) -> int:
        return self.reported_tokens if self.reported_tokens is not None else len(self.token_ids)


class RolloutEngine(ABC):
    """Turns prompts into completions. Prompts are what `prompt()` returns: final text (chat
    template and prefill applied) for local engines. Completions hold what the model wrote after
    the prompt; `Template.response` prepends the prefill before anything is scored."""

    tokenizer = None
    #: parameters used for FLOPs accounting (2·N per generated token)
    n_params: int = 0
    #: samples from the trained policy's own weights and kernels, so its log-probs are the
    #: trainer's (no sampler-mismatch correction needed); False for vLLM and servers
    samples_from_policy: bool = False

    @abstractmethod
    def generate(self, prompts: list[str], params: SamplingParams) -> list[list[Completion]]:
        """`params.n` completions for each prompt, in prompt order."""

    def sync_weights(self, model) -> None:
        """Make the engine sample from `model`'s current weights; called after every optimizer
        step and after a resume. Engines that hold the live policy itself need do nothing."""

    def prompt(self, template, task, problem):
        """The model's input for a problem under a `reasonlab.templates.Template`: the rendered
        text (prefill included) for local engines; a server engine returns its own request form."""
        return template.render(self.tokenizer, task, problem)

    def format_prompt(self, user: str, chat: bool | None = None) -> str:
        """The model's input for a bare user message: its chat template when it has one (used
        for the few-shot ablation, whose examples are not a template's)."""
        return chat_prompt(self.tokenizer, user, chat)


def chat_prompt(tokenizer, user: str, chat: bool | None = None) -> str:
    """A user message rendered with `tokenizer`'s chat template, or a plain "User:/Assistant:"
    frame when it has none (or `chat` is False)."""
    use_chat = getattr(tokenizer, "chat_template", None) if chat is None else chat
    if not use_chat:
        return f"User: {user}\nAssistant: "
    return tokenizer.apply_chat_template([{"role": "user", "content": user}], tokenize=False,
                                         add_generation_prompt=True)
