"""A byte-level BPE tokenizer trained with `tokenizers`, saved in standard Hugging Face form.

Digits are split one per token (as in Llama and Qwen), which is what makes arithmetic learnable
for a small model. The reasoning tags are single added tokens (not "special", so decoding keeps
them). The chat template renders `User: …` / `Assistant: …` turns, the same text the corpus uses,
so a base model pretrained on the corpus already follows it.
"""

from __future__ import annotations

from collections.abc import Iterable

EOS = "<|endoftext|>"
PAD = "<|pad|>"
REASONING_TAGS = ["<think>", "</think>", "<answer>", "</answer>"]

CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'system' -%}{{ message['content'] + '\\n' }}"
    "{%- elif message['role'] == 'user' -%}{{ 'User: ' + message['content'] + '\\n' }}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{{ 'Assistant: ' }}{% generation %}{{ message['content'] + eos_token }}{% endgeneration %}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ 'Assistant: ' }}{%- endif -%}"
)


def render_chat(user: str, assistant: str | None = None) -> str:
    """The chat template's text for one exchange, without needing a tokenizer (for the corpus)."""
    text = f"User: {user}\nAssistant: "
    return text if assistant is None else text + assistant + EOS


CHATML_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\n' }}{%- endif -%}"
)


def build_tokenizer(texts: Iterable[str], vocab_size: int = 512, style: str = "plain"):
    """Train the BPE on `texts` and wrap it as a `PreTrainedTokenizerFast`.

    `style="chatml"` gives Qwen-style `<|im_start|>`/`<|im_end|>` special tokens and template
    (eos `<|im_end|>`), for testing code paths against a real-looking chat model.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    chatml = ["<|im_start|>", "<|im_end|>"] if style == "chatml" else []
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS, PAD, *chatml],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    # added after training so the trainer cannot reassign their ids
    tok.add_tokens([AddedToken(t, normalized=False, special=False) for t in REASONING_TAGS])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>" if chatml else EOS,
        pad_token=PAD,
        chat_template=CHATML_TEMPLATE if chatml else CHAT_TEMPLATE,
        padding_side="left",
        model_max_length=2048,
    )
