"""The OpenAI-compatible teacher against a local server started by the test: retries on 429, 5xx
and timeouts, a clear error on 401, servers that ignore `n`, reasoning in `reasoning_content`,
the rate limit, and `reasonlab traces --teacher URL` end to end."""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import run_cli

from reasonlab.errors import ReasonlabError
from reasonlab.rollout.base import SamplingParams
from reasonlab.rollout.http import OpenAIChatEngine, RateLimiter
from reasonlab.sft.traces import TracesConfig, generate_traces
from reasonlab.tasks import get_task


class Teacher:
    """A scripted chat-completions server. `script` lists what the next POSTs get ("429", "500",
    "401", "slow"); after it, every POST is answered. Answers are right for even seeds."""

    def __init__(self, answers: dict[str, str], script=(), one_choice=False, separate_reasoning=False):
        self.answers, self.script, self.bodies = answers, list(script), []
        self.one_choice, self.separate = one_choice, separate_reasoning
        self.owned_by = "someone"
        self.root = None  #: the model directory the server says it loaded (vLLM's `root`)
        teacher = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                listed = {"id": "tiny-r1", "owned_by": teacher.owned_by}
                self._json(200, {"data": [{**listed, **({"root": teacher.root} if teacher.root else {})}]})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                teacher.bodies.append(body)
                step = teacher.script.pop(0) if teacher.script else "ok"
                if step == "slow":
                    time.sleep(1.0)
                    return
                if step in ("429", "500", "401"):
                    headers = {"Retry-After": "0"} if step == "429" else {}
                    return self._json(int(step), {"error": {"message": f"scripted {step}"}}, headers)
                self._json(200, teacher.reply(body))

            def _json(self, code, obj, headers=None):
                data = json.dumps(obj).encode()
                self.send_response(code)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reply(self, body: dict) -> dict:
        gold = self.answers.get(body["messages"][-1]["content"], "0")
        n = 1 if self.one_choice else body["n"]
        choices = []
        for k in range(n):
            seed = body.get("seed", 0) + k
            answer, thought = (gold, f"worked it out, seed {seed}") if seed % 2 == 0 else ("-1", "guessed")
            message = ({"content": f"<answer>{answer}</answer>", "reasoning_content": thought} if self.separate
                       else {"content": f"<think>\n{thought}\n</think>\n<answer>{answer}</answer>"})
            choices.append({"index": k, "message": {"role": "assistant", **message}, "finish_reason": "stop"})
        return {"choices": choices, "usage": {"prompt_tokens": 20, "completion_tokens": 10 * n}}

    def close(self):
        self.server.shutdown()


@pytest.fixture
def teacher_factory():
    made = []

    def make(*args, **kwargs):
        made.append(Teacher(*args, **kwargs))
        return made[-1]

    yield make
    for t in made:
        t.close()


def test_retries_429_500_and_a_timeout_then_folds_separate_reasoning(teacher_factory):
    t = teacher_factory({"q": "7"}, script=["429", "500", "slow"], separate_reasoning=True)
    waits = []
    engine = OpenAIChatEngine(t.url, timeout=0.3, backoff=0.01, sleep=waits.append)
    assert engine.model == "tiny-r1"  # the server's only model, asked with GET /models
    [group] = engine.generate(["q"], SamplingParams(max_new_tokens=32, temperature=0.7, n=2, seed=4))
    assert engine.requests == 1 + 4  # /models, then 429, 500, timeout, success
    assert waits[0] == 0.0 and all(0 < w < 0.1 for w in waits[1:])  # Retry-After, then backoff
    assert [c.text for c in group] == ["<think>\nworked it out, seed 4\n</think>\n<answer>7</answer>",
                                       "<think>\nguessed\n</think>\n<answer>-1</answer>"]
    assert sum(c.num_tokens for c in group) == 20 and group[0].prompt_tokens == 20
    sent = t.bodies[-1]
    assert sent["model"] == "tiny-r1" and sent["n"] == 2 and sent["max_tokens"] == 32 and sent["seed"] == 4
    assert sent["messages"] == [{"role": "user", "content": "q"}]


def test_a_server_that_ignores_n_is_asked_again_until_k_samples(teacher_factory):
    t = teacher_factory({"q": "7"}, one_choice=True)
    engine = OpenAIChatEngine(t.url, model="m", sleep=lambda s: None)
    [group] = engine.generate(["q"], SamplingParams(n=3, seed=0))
    assert len(group) == 3 and [b["n"] for b in t.bodies] == [3, 2, 1] and [b["seed"] for b in t.bodies] == [0, 1, 2]
    assert [c.text.endswith("<answer>7</answer>") for c in group] == [True, False, True]


def test_unauthorised_fails_at_once_with_the_url_and_giving_up_names_the_last_error(teacher_factory):
    t = teacher_factory({}, script=["401"])
    engine = OpenAIChatEngine(t.url, model="m", sleep=lambda s: None)
    with pytest.raises(ReasonlabError, match=r"teacher http://127\.0\.0\.1:\d+/v1/chat/completions: HTTP 401: scripted 401"):
        engine.generate(["q"], SamplingParams(n=1))
    assert engine.requests == 1
    t2 = teacher_factory({}, script=["500"] * 3)
    engine = OpenAIChatEngine(t2.url, model="m", max_retries=2, sleep=lambda s: None)
    with pytest.raises(ReasonlabError, match=r"gave up after 3 tries \(last: HTTP 500\)"):
        engine.generate(["q"], SamplingParams(n=1))


def test_rate_limiter_spaces_request_starts():
    now, slept = [0.0], []

    def sleep(s):
        slept.append(s)
        now[0] += s

    limiter = RateLimiter(120, clock=lambda: now[0], sleep=sleep)
    for _ in range(3):
        limiter.wait()
    assert slept == [0.5, 0.5]
    now[0] += 10.0  # idle for a while: no wait
    limiter.wait()
    assert slept == [0.5, 0.5]


def test_traces_cli_distils_from_an_http_teacher(teacher_factory, tmp_path):
    task = get_task("arithmetic")
    problems = task.problems("train", 4, seed=0)
    t = teacher_factory({task.prompt(p): p.answer for p in problems}, script=["503"], separate_reasoning=True)
    out = tmp_path / "traces.jsonl"
    proc = run_cli("traces", "--teacher", t.url, "--task", "arithmetic", "--n", "4", "--samples", "2",
                   "--out", str(out), "backoff=0.01", "keep=all", "batch=4", "template=tiny")
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert summary["kept"] == len(rows) == 4 and summary["acceptance_rate"] == 0.5  # even seeds are right
    assert summary["flops"] is None and summary["usd_api"] > 0 and summary["generated_tokens"] == 80
    assert {r["teacher"] for r in rows} == {"tiny-r1"}
    assert all(re.match(r"<think>\nworked it out", r["completion"][0]["content"]) for r in rows)
    assert {r["problem"] for r in rows} == {p.id for p in problems}


def test_traces_from_http_resume_without_resampling_finished_problems(teacher_factory, tmp_path):
    task = get_task("arithmetic")
    problems = task.problems("train", 3, seed=0)
    t = teacher_factory({task.prompt(p): p.answer for p in problems})
    cfg = TracesConfig(teacher=t.url, n=3, samples=2, batch=1, out=str(tmp_path / "t.jsonl"))
    generate_traces(cfg, log=lambda m: None)
    first = len(t.bodies)
    generate_traces(cfg, log=lambda m: None)
    assert len(t.bodies) == first == 3  # one request per problem, none again


def test_payloads_follow_the_template(teacher_factory):
    """Chat templates send system + user (a prefill as a continued assistant message); raw ones go
    to /completions; a vLLM server is asked to keep stop strings; others get cut answers closed."""
    from reasonlab.rollout.http import ServerPrompt, _completions
    from reasonlab.templates import BUILTIN

    task = get_task("arithmetic")
    p = task.problems("eval", 1)[0]
    engine = OpenAIChatEngine("http://127.0.0.1:9/v1", model="m")
    params = SamplingParams(max_new_tokens=8)
    path, body = engine._payload(engine.prompt(BUILTIN["chat-think"], task, p), params)
    assert path == "/chat/completions" and body["stop"] == ["</answer>"] and "include_stop_str_in_output" not in body
    assert [m["role"] for m in body["messages"]] == ["system", "user"] and body["messages"][1]["content"] == p.question
    path, body = engine._payload(engine.prompt(BUILTIN["tinyzero-countdown-chat"], get_task("countdown"),
                                               get_task("countdown").problems("eval", 1)[0]), params)
    assert body["messages"][-1] == {"role": "assistant", "content": "Let me solve this step by step.\n<think>"}
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
    path, body = engine._payload(engine.prompt(BUILTIN["r1-zero"], task, p), params)
    assert path == "/completions" and body["prompt"].endswith("Assistant: <think>") and "messages" not in body
    engine.vllm = True
    assert engine._payload(ServerPrompt(({"role": "user", "content": "q"},)), params)[1]["include_stop_str_in_output"]
    cut = {"choices": [{"message": {"content": "<think>x</think><answer>280"}, "finish_reason": "stop"},
                       {"message": {"content": "<think>x</think><answer>28"}, "finish_reason": "length"},
                       {"text": "<think>y</think><answer>3", "finish_reason": "stop"}]}
    assert [c.text for c in _completions(cut, ("</answer>",))] == [
        "<think>x</think><answer>280</answer>", "<think>x</think><answer>28", "<think>y</think><answer>3</answer>"]
    assert _completions(cut, ())[0].text == "<think>x</think><answer>280"  # no stop asked: left as sent


def test_a_vllm_server_is_recognised_from_its_model_list(teacher_factory):
    t = teacher_factory({"q": "7"})
    assert OpenAIChatEngine(t.url, sleep=lambda s: None).vllm is False
    t.owned_by = "vllm"
    assert OpenAIChatEngine(t.url, sleep=lambda s: None).vllm is True


def test_a_served_model_gets_the_template_recorded_where_the_server_loaded_it(teacher_factory, tmp_path):
    from reasonlab.sft.traces import teacher_template
    from reasonlab.templates import BUILTIN, record

    model_dir = tmp_path / "r1-zero"
    model_dir.mkdir()
    record(model_dir, BUILTIN["tiny"])
    t = teacher_factory({"q": "7"})
    t.root = str(model_dir)
    template, source = teacher_template(TracesConfig(teacher=t.url), OpenAIChatEngine(t.url))
    assert template.name == "tiny" and str(model_dir) in source
    t.root = str(tmp_path / "elsewhere")  # a path the server has and this machine does not
    template, source = teacher_template(TracesConfig(teacher=t.url), OpenAIChatEngine(t.url))
    assert template.name == "chat-think" and "no recorded template" in source
    t.root = str(model_dir)  # a template given by name always wins
    assert teacher_template(TracesConfig(teacher=t.url, template="r1-zero"), OpenAIChatEngine(t.url))[0].name == "r1-zero"

