"""A teacher behind any OpenAI-compatible chat-completions endpoint (DeepSeek's API, a vLLM or
SGLang server, OpenAI itself): how people distil from a model they cannot load.

Prompts come from a template (`prompt()` gives a `ServerPrompt`): chat templates go to
`/chat/completions` as system + user messages, and the server applies its own chat template; a
prefill is sent as a final assistant message with `continue_final_message` (vLLM and SGLang
continue it); raw templates go to `/completions` as text. A bare string is one user message.

Stop strings: servers cut the text at a stop string (and at eos ids, `</answer>` among them in
the tiny world) and leave it out. A vLLM server (it says `owned_by: vllm` in `/models`) is asked
to keep it (`include_stop_str_in_output`); with any other server, a completion that stopped
inside an open `<answer>` is closed, since only the requested stop can have ended it there.

Reasoning comes back either
inline (`<think>…</think>` in `content`) or in a separate `reasoning_content` (DeepSeek) or
`reasoning` (vLLM's reasoning parsers) field; the separate form is folded into the completion as
`<think>\n…\n</think>\n` + content, so both read the same downstream. Servers that ignore `n`
(DeepSeek's API returns one choice) are asked again until the K samples are there.

Robustness: every request has a timeout; 408/409/429/5xx, timeouts and dropped connections are
retried with exponential backoff (or the server's `Retry-After`), other HTTP errors fail at once
with a one-line error naming the URL; requests are spread out to at most `requests_per_minute`,
and up to `concurrency` prompts are in flight at once. Token counts come from the server's
`usage` (the completion total is split over the choices by text length, since servers report
one total per request).
"""

from __future__ import annotations

import json
import random
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from reasonlab.errors import ReasonlabError
from reasonlab.rollout.base import Completion, RolloutEngine, SamplingParams

RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


def is_url(teacher: str) -> bool:
    """
    >>> is_url("http://127.0.0.1:8000/v1"), is_url("runs/r1/final")
    (True, False)
    """
    return teacher.startswith(("http://", "https://"))


class RateLimiter:
    """Spaces request starts at least 60/rpm seconds apart across threads (rpm 0: no limit)."""

    def __init__(self, requests_per_minute: float, clock=time.monotonic, sleep=time.sleep):
        self.interval = 60.0 / requests_per_minute if requests_per_minute > 0 else 0.0
        self.clock, self.sleep, self._next, self._lock = clock, sleep, 0.0, threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = self.clock()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            self.sleep(start - now)


@dataclass(frozen=True)
class ServerPrompt:
    """A templated prompt in a server's terms: chat messages (and a prefill), or raw text."""

    messages: tuple = ()
    prefill: str = ""
    text: str = ""  #: raw templates: the whole prompt, for `/completions`

    def shown(self) -> str:
        """A readable form for sample logs."""
        if self.text:
            return self.text
        return "".join(f"<{m['role']}>{m['content']}\n" for m in self.messages) + "<assistant>" + self.prefill


def close_cut_answer(text: str, stops) -> str:
    """Close an `<answer>` that a server's stop at `</answer>` cut off (the stop string itself is
    left out of the text by default).

    >>> close_cut_answer("<think>x</think><answer>280", ("</answer>",))
    '<think>x</think><answer>280</answer>'
    >>> close_cut_answer("<think>x</think><answer>280</answer>", ("</answer>",))
    '<think>x</think><answer>280</answer>'
    """
    if "</answer>" not in stops:
        return text
    region = text.rsplit("</think>", 1)[-1]
    if region.count("<answer>") == 1 and "</answer>" not in region:
        return text + "</answer>"
    return text


def merge_reasoning(message: dict) -> str:
    """The completion text of a chat message, with separately returned reasoning folded in.

    >>> merge_reasoning({"content": "<answer>4</answer>", "reasoning_content": "2+2=4"})
    '<think>\\n2+2=4\\n</think>\\n<answer>4</answer>'
    >>> merge_reasoning({"content": "<think>\\n2+2=4\\n</think>\\n<answer>4</answer>"})
    '<think>\\n2+2=4\\n</think>\\n<answer>4</answer>'
    """
    content = message.get("content") or ""
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if reasoning and "<think>" not in content:
        return f"<think>\n{reasoning.strip()}\n</think>\n{content.strip()}"
    return content


class OpenAIChatEngine(RolloutEngine):
    """`RolloutEngine` over HTTP. `n_params` is 0 (unknown), so FLOPs are not estimated."""

    def __init__(self, base_url: str, model: str = "", api_key: str | None = None, timeout: float = 120.0,
                 max_retries: int = 5, backoff: float = 1.0, requests_per_minute: float = 0.0,
                 concurrency: int = 4, sleep=time.sleep):
        self.base_url, self.api_key, self.timeout = base_url.rstrip("/"), api_key, timeout
        self.max_retries, self.backoff, self.concurrency, self.sleep = max_retries, backoff, concurrency, sleep
        self.limiter = RateLimiter(requests_per_minute, sleep=sleep)
        self.requests = 0  #: HTTP requests sent, retries included
        self.vllm = False  #: set from `/models`: the server keeps stop strings when asked
        self._models: list[dict] | None = None  #: `/models` as the server listed it (asked once)
        self.model = model or self._only_model()

    def format_prompt(self, user: str, chat: bool | None = None) -> str:
        return user

    def prompt(self, template, task, problem) -> ServerPrompt:
        if not template.chat:
            return ServerPrompt(text=template.render(None, task, problem))
        return ServerPrompt(tuple(template.messages(task, problem)), template.prefill)

    def generate(self, prompts: list[str], params: SamplingParams) -> list[list[Completion]]:
        """`params.n` completions per prompt; prompt i is sampled with seed `params.seed + i`."""
        jobs = [(p, None if params.seed is None else params.seed + i) for i, p in enumerate(prompts)]
        with ThreadPoolExecutor(max(1, min(self.concurrency, len(jobs)))) as pool:
            return list(pool.map(lambda job: self._samples(job[0], params, job[1]), jobs))

    def _payload(self, prompt, params: SamplingParams) -> tuple[str, dict]:
        """The endpoint and request body for one prompt (a `ServerPrompt` or a user message)."""
        if isinstance(prompt, str):
            prompt = ServerPrompt(({"role": "user", "content": prompt},))
        body = {"model": self.model, "max_tokens": params.max_new_tokens, "temperature": params.temperature,
                "top_p": params.top_p}
        if params.stop:
            body["stop"] = list(params.stop)
        if self.vllm:
            body["include_stop_str_in_output"] = True
        if prompt.text:
            return "/completions", {**body, "prompt": prompt.text}
        messages = list(prompt.messages)
        if prompt.prefill:
            messages.append({"role": "assistant", "content": prompt.prefill})
            body.update(continue_final_message=True, add_generation_prompt=False)
        return "/chat/completions", {**body, "messages": messages}

    def _samples(self, prompt, params: SamplingParams, seed: int | None) -> list[Completion]:
        out: list[Completion] = []
        path, body = self._payload(prompt, params)
        while len(out) < params.n:
            payload = {**body, "n": params.n - len(out)}
            if seed is not None:
                payload["seed"] = seed + len(out)
            got = _completions(self._request(path, payload), params.stop)
            if not got:
                raise ReasonlabError(f"teacher {self.base_url}: the server returned no choices")
            out += got[: params.n - len(out)]
        return out

    def served_root(self) -> str | None:
        """Where the server loaded the model from, when it says (vLLM lists it as `root` in
        `/models`: the model directory it was started with)."""
        found = next((m for m in self._listing() if m.get("id") == self.model), {})
        return found.get("root") or None

    def _listing(self) -> list[dict]:
        if self._models is None:
            self._models = self._request("/models", None).get("data", [])
        return self._models

    def _only_model(self) -> str:
        data = self._listing()
        models = [m["id"] for m in data]
        self.vllm = any(m.get("owned_by") == "vllm" for m in data)
        if len(models) != 1:
            raise ReasonlabError(f"teacher_model: {self.base_url} serves {models or 'no models'}; name one")
        return models[0]

    def _request(self, path: str, payload: dict | None) -> dict:
        url, last = self.base_url + path, ""
        for attempt in range(self.max_retries + 1):
            self.limiter.wait()
            self.requests += 1
            try:
                return self._send(url, payload)
            except urllib.error.HTTPError as e:
                if e.code not in RETRY_STATUS:
                    raise ReasonlabError(f"teacher {url}: HTTP {e.code}: {_body(e)}") from None
                last, wait = f"HTTP {e.code}", _retry_after(e)
            except (urllib.error.URLError, TimeoutError, ConnectionError, json.JSONDecodeError) as e:
                last, wait = f"{type(e).__name__}: {getattr(e, 'reason', e)}", None
            if attempt < self.max_retries:
                self.sleep(wait if wait is not None else self.backoff * 2**attempt * (0.5 + random.random()))
        raise ReasonlabError(f"teacher {url}: gave up after {self.max_retries + 1} tries (last: {last})")

    def _send(self, url: str, payload: dict | None) -> dict:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = None if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(url, data=data, headers=headers, method="GET" if data is None else "POST")
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            return json.loads(resp.read())


def _completions(body: dict, stops=()) -> list[Completion]:
    choices = body.get("choices") or []
    texts = [c["text"] if "text" in c else merge_reasoning(c.get("message") or {}) for c in choices]
    texts = [close_cut_answer(t, stops) if c.get("finish_reason") == "stop" else t for c, t in zip(choices, texts)]
    usage = body.get("usage") or {}
    total, chars = usage.get("completion_tokens"), sum(len(t) for t in texts) or 1
    out = []
    for c, text in zip(choices, texts):
        tokens = round(total * len(text) / chars) if total is not None else None
        out.append(Completion(text=text, token_ids=[], prompt_tokens=usage.get("prompt_tokens", 0),
                              finish_reason="length" if c.get("finish_reason") == "length" else "stop",
                              reported_tokens=tokens))
    return out


def _retry_after(e: urllib.error.HTTPError) -> float | None:
    try:
        return max(0.0, float(e.headers.get("Retry-After")))
    except (TypeError, ValueError):
        return None


def _body(e: urllib.error.HTTPError) -> str:
    """The server's error message (OpenAI's `{"error": {"message": …}}`), else its raw body."""
    text = e.read().decode(errors="replace") if e.fp else str(e.reason)
    try:
        err = json.loads(text).get("error")
        message = err.get("message") if isinstance(err, dict) else err
    except (ValueError, AttributeError):
        message = None
    return str(message or text)[:200].replace("\n", " ")
