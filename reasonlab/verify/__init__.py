"""Answer checking's low layer: extraction of the final answer (`extract_answer`), math-verify in
a killable worker (`mathcheck`) and a safe expression parser (`safe_expr`). A leaf: it imports no
other reasonlab package. Tasks build their checks on it; `reasonlab.tasks.is_correct` is the
entry point that takes a completion, a gold answer and a task."""

from __future__ import annotations

from reasonlab.verify.extract import answer_region, extract_answer, last_boxed, lenient_answer

__all__ = ["extract_answer", "answer_region", "last_boxed", "lenient_answer"]
