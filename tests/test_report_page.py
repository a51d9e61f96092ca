"""The report a reader opens: the HTML page built from the markdown, and the example completions."""

import json
from types import SimpleNamespace

from reasonlab.pipeline import examples
from reasonlab.pipeline.render import html_page, markdown
from reasonlab.pipeline.results import Results
from reasonlab.tasks.base import Problem

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


def test_page_shows_each_figure_once_where_the_markdown_puts_it(tmp_path):
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "a.png").write_bytes(PNG)
    md = "\n".join(["# Results", "", "Intro with `code` and **bold**.", "", "## Claims", "",
                    "| claim | diff |", "|---|---|", "| x < y | +1.0 |", "", "![the claims](plots/a.png)", "",
                    "## Examples", "", "> What is 2+3?", "", "```", "<think>\n2+3=5\n</think>", "```", "",
                    "- one", "- two", "", "## Missing", "", "![gone](plots/none.png)"])
    page = html_page(md, tmp_path)
    assert page.count("<h2>") == 3 and page.count("<h2>Claims</h2>") == 1
    assert page.count("data:image/png;base64,") == 1 and "alt='the claims'" in page
    assert page.index("<h2>Claims</h2>") < page.index("data:image") < page.index("<h2>Examples</h2>")
    assert "(figure missing: plots/none.png)" in page
    assert "<pre><code>&lt;think&gt;\n2+3=5\n&lt;/think&gt;\n</code></pre>" in page  # code is escaped, kept verbatim
    assert "<td>x &lt; y</td>" in page and "<div class='wide'><table>" in page  # wide tables scroll in a box
    assert "<li>one</li>\n<li>two</li>" in page and "<blockquote>\n<p>What is 2+3?</p>" in page
    assert "<code>code</code>" in page and "<strong>bold</strong>" in page
    assert "src='plots/" not in page and "<script" not in html_page("<script>x</script>", tmp_path)


def _eval_file(path, answers):
    rows = [{"_header": {}}] + [{"problem": p, "kind": kind, "correct": float(ok), "text": text, "sample": 0}
                                for p, (kind, ok, text) in answers]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return str(path)


def test_examples_pick_the_telling_problem_and_a_self_correction(tmp_path):
    problems = {f"p{i}": Problem(f"p{i}", f"question {i}", str(i)) for i in range(3)}
    base = _eval_file(tmp_path / "b.jsonl", [("p0", ("greedy", 0, "<answer>1</answer>")),
                                             ("p1", ("greedy", 0, "<answer>7</answer>")),
                                             ("p2", ("greedy", 1, "<answer>2</answer>"))])
    rl = _eval_file(tmp_path / "r.jsonl", [("p0", ("greedy", 0, "x")), ("p1", ("greedy", 1, "<think>\n1\n</think>")),
                                           ("p2", ("greedy", 1, "y")),
                                           ("p0", ("sample", 1, "<think>\n1+1=3\nWait, 1+1 is 2\n</think>"))])
    rows = [SimpleNamespace(stage="base", name="base", eval_file=base), SimpleNamespace(stage="rl", name="RL", eval_file=rl)]
    same = examples.same_problem(rows, ["base", "rl"], problems)
    assert same["problem"] == "p1" and [m["correct"] for m in same["models"]] == [False, True]
    fix = examples.self_correction(rows, problems)
    assert fix["problem"] == "p0" and fix["kind"] == "sample" and fix["model"] == "RL"
    assert examples.same_problem(rows, ["base"], problems) is None  # one model: nothing to compare
    md = markdown(Results([], [], [], {"n": 3, "task": "arithmetic", "samples": 1, "temperature": 1.0},
                          {"same_problem": same, "self_correction": fix}, "a CPU"), "run")
    assert "## Example completions" in md and "**RL** (right):" in md and "Wait, 1+1 is 2" in md
    assert "\n\n\n" not in md and "## Claims" not in md and md.endswith("```\n")


def test_scaling_figure_skips_methods_without_points(tmp_path):
    """A method that produced no points draws nothing (a log x axis of nothing would crash the
    report); a file with only such methods gives no figure."""
    from reasonlab.pipeline.plots import accuracy_vs_tokens

    empty, some = tmp_path / "empty.json", tmp_path / "some.json"
    empty.write_text(json.dumps({"methods": {"budget:cap": [], "cot:direct": []}}))
    point = {"budget": 1, "accuracy": 0.0, "tokens_per_problem": 5.0}
    some.write_text(json.dumps({"methods": {"cot:direct": [point], "budget:cap": []}}))
    assert accuracy_vs_tokens({"s": str(empty)}, tmp_path / "a.png") is None
    assert accuracy_vs_tokens({"s": str(some), "t": str(empty)}, tmp_path / "b.png").stat().st_size > 0
