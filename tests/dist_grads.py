"""Worker for tests/test_rl_distributed.py: one GRPO loss step's gradient, computed by the
trainer's own code (`micro_batch_loss`, `update.accumulate`) under accelerate.

    MICRO=4 python tests/dist_grads.py MODEL OUT.pt     # one process: all rows, micro-batches of 4
    torchrun --nproc_per_node 2 tests/dist_grads.py MODEL OUT.pt 0:2 2:6   # rank r takes span r

Every process builds the same 6-row batch (fixed seed), keeps its span, splits it into
micro-batches of $MICRO rows (default 2) and backpropagates each loss type; rank 0 saves
{loss_type: flat gradient}.
"""

from __future__ import annotations

import os
import sys

import torch
from accelerate import Accelerator

from reasonlab.rl.grpo import micro_batch_loss
from reasonlab.rl.losses import LOSSES, LossSettings
from reasonlab.rl.records import LossBatch
from reasonlab.rl.update import accumulate, pad_micro_batches, split
from reasonlab.rollout import load_model

ROWS, PROMPT, COMPLETION = 6, 5, 7


def batch(vocab: int) -> LossBatch:
    gen = torch.Generator().manual_seed(0)
    lengths = [7, 2, 5, 1, 6, 3]  # uneven token counts per row
    ids = torch.randint(3, vocab, (ROWS, PROMPT + COMPLETION), generator=gen)
    attn = torch.ones(ROWS, PROMPT + COMPLETION, dtype=torch.long)
    for r, n in enumerate(lengths):
        attn[r, PROMPT + n :] = 0
    comp = attn[:, PROMPT:]
    group = torch.tensor([0, 0, 1, 1, 2, 2])
    return LossBatch(input_ids=ids, attention_mask=attn, targets=ids[:, PROMPT:], completion_mask=comp,
                     loss_mask=comp.float(), advantages=torch.randn(ROWS, generator=gen),
                     sampler_logp=torch.full((ROWS, COMPLETION), float("nan")),
                     prompt_ids=ids[[0, 2, 4], :PROMPT], prompt_mask=attn[[0, 2, 4], :PROMPT], group=group)


def main() -> None:
    model_dir, out, spans = sys.argv[1], sys.argv[2], sys.argv[3:] or [f"0:{ROWS}"]
    acc = Accelerator(cpu=True)
    model, _ = load_model(model_dir, "cpu", torch.float32)
    model = acc.prepare(model)
    full = batch(acc.unwrap_model(model).config.vocab_size)
    ref_gen = torch.Generator().manual_seed(1)
    ref = -torch.rand(ROWS, COMPLETION, generator=ref_gen) * 4  # a fixed "reference" log-prob per token
    a, b = map(int, spans[acc.process_index].split(":"))
    local = full.rows(a, b)
    grads, size = {}, int(os.environ.get("MICRO", "2"))
    for loss_type in LOSSES:
        s = LossSettings(loss_type, beta=0.05, max_len=9)
        mbs = split(local, size)
        for mb, start in zip(mbs, range(a, b, size)):
            mb.pre.ref = ref[start : start + mb.rows.n]
        n_max = int(acc.gather(torch.tensor([len(mbs)])).max())
        mbs = pad_micro_batches(mbs, n_max, lambda: local.rows(0, 1))
        model.zero_grad(set_to_none=True)
        reduce = (lambda t: acc.reduce(t.clone(), "sum")) if acc.num_processes > 1 else (lambda t: t)
        out_ = accumulate(mbs, lambda mb, s=s: micro_batch_loss(model, mb, s, 1.0, True, True), s,
                          backward=acc.backward, no_sync=lambda: acc.no_sync(model), world=acc.num_processes,
                          reduce_sum=reduce)
        flat = torch.cat([p.grad.flatten() for p in acc.unwrap_model(model).parameters()])
        grads[loss_type] = {"grad": flat, "loss": out_.loss, "micro_batches": sum(mb.real for mb in mbs)}
    if acc.is_main_process:
        torch.save(grads, out)


if __name__ == "__main__":
    main()
