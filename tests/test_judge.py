"""LLM-as-a-judge against a real scripted HTTP server on 127.0.0.1 (no models, no client mocks).

Each test starts a ``ThreadingHTTPServer`` implementing ``/v1/chat/completions`` whose
replies are scripted by the response text being judged: ``score=N`` gives every criterion
N, ``GARBAGE`` an unreadable reply, ``FLAKY`` an unreadable first reply then a good one,
``FAIL500`` HTTP 500, ``RATE429`` one 429 with ``Retry-After``, ``SLOW`` a reply slower than
the client's timeout, ``ECHO`` a 500 whose body echoes the Authorization header.
"""

from __future__ import annotations

import json
import math
import re
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from harness.errors import SlmbenchError
from harness.judge.agreement import agreement_rate, cohen_kappa, judges_agreement
from harness.judge.client import HttpJudgeClient, LocalJudgeClient, parse_judge_spec
from harness.judge.pairwise import combine, parse_pairwise
from harness.judge.parsing import VerdictError
from harness.judge.rubric import CRITERIA, parse_rubric
from harness.judge.runner import JudgeJob, run_judge
from harness.openai_compat.cache import ReplyCache
from harness.openai_compat.client import ChatCallError
from harness.openai_compat.transport import parse_retry_after
from harness.runs import store
from harness.significance import spearman

KEY_ENV = "SLMBENCH_TEST_JUDGE_KEY"
SECRET = "sk-test-SECRET-9f8e7d6c5b4a"


@pytest.fixture(autouse=True)
def _no_hardware_probe(monkeypatch):
    monkeypatch.setattr(store, "hardware", lambda: {"machine": "test"})
    monkeypatch.setattr(store, "git_state", lambda: {"sha": None, "dirty": None})
    monkeypatch.setenv(KEY_ENV, SECRET)


# --- the scripted judge server ---------------------------------------------------------------

@dataclass
class Reply:
    status: int = 200
    body: Any = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


def completion(text: str) -> Reply:
    return Reply(200, {"id": "cmpl-1", "object": "chat.completion", "model": "scripted",
                       "choices": [{"index": 0, "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": text}}]})


class ScriptedJudge:
    def __init__(self, script: Callable[[dict[str, Any], ScriptedJudge], Reply]) -> None:
        self.script = script
        self.requests: list[dict[str, Any]] = []
        self.seen: Counter[str] = Counter()
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                if self.path != "/v1/chat/completions":
                    reply = Reply(404, {"error": "not found"})
                else:
                    with outer.lock:
                        outer.requests.append({"body": body, "headers": dict(self.headers)})
                    reply = outer.script(body, self.headers, outer)
                time.sleep(reply.delay)
                data = (reply.body if isinstance(reply.body, str)
                        else json.dumps(reply.body)).encode()
                try:
                    self.send_response(reply.status)
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def count(self) -> int:
        with self.lock:
            return len(self.requests)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    servers = []

    def start(script):
        server = ScriptedJudge(script)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def closed_port_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/v1"


def judged_text(body: dict[str, Any]) -> str:
    user = body["messages"][1]["content"]
    return user.split("[Response to judge]\n", 1)[1]


def verdict_json(score: int, model: str = "") -> str:
    payload = {c: {"score": score, "reason": f"{c} looks {score} to {model or 'me'}."}
               for c in CRITERIA}
    return f"Here is my assessment:\n```json\n{json.dumps(payload, indent=1)}\n```\nThanks."


def rubric_script(body: dict[str, Any], headers: Any, server: ScriptedJudge) -> Reply:
    text = judged_text(body)
    reasked = len(body["messages"]) > 2
    with server.lock:
        server.seen[text] += 1
        seen = server.seen[text]
    if "GARBAGE" in text or ("FLAKY" in text and not reasked):
        return completion("I think the answer is quite good overall, nice work!")
    if "FAIL500" in text:
        return Reply(500, {"error": {"message": "internal error"}})
    if "ECHO" in text:
        return Reply(500, {"error": f"bad auth {headers.get('Authorization')}"})
    if "RATE429" in text and seen == 1:
        return Reply(429, {"error": "slow down"}, {"Retry-After": "1"})
    if "SLOW" in text:
        slow = completion(verdict_json(5))
        slow.delay = 1.5
        return slow
    match = re.search(r"score=(\d+)", text)
    score = int(match.group(1)) if match else 6
    if body["model"] == "judge-b":
        score = min(10, score + 1)
    return completion(verdict_json(score, body["model"]))


def client(url: str, model: str = "judge-a", **kw: Any) -> HttpJudgeClient:
    options = {"api_key_env": KEY_ENV, "timeout": 3.0, "max_retries": 2, "rps": 0,
               "backoff": 0.01, "max_workers": 2} | kw
    return HttpJudgeClient(url, model, **options)


def write_items(path: Path, responses: dict[str, str], question: str = "How do I reset my "
                "router?") -> Path:
    with path.open("w") as fh:
        for key, response in responses.items():
            fh.write(json.dumps({"id": key, "question": f"{question} ({key})",
                                 "response": response,
                                 "reference": "Hold reset for 10 s."}) + "\n")
    return path


def verdicts(folder: Path) -> dict[tuple[str, str], dict[str, Any]]:
    run = store.load_run(folder)
    assert not run.problems
    return {(r["key"], r["judge"]): r for r in run.jsonl("verdicts.jsonl")}


# --- rubric over HTTP ------------------------------------------------------------------------

def test_rubric_scores_parsed_and_key_sent(serve, tmp_path):
    server = serve(rubric_script)
    items = write_items(tmp_path / "items.jsonl", {"q1": "Press reset, score=8",
                                                   "q2": "Unplug it, score=5"})
    folder, manifest = run_judge(JudgeJob(items, [client(server.url)], store=tmp_path / "runs"))
    found = verdicts(folder)
    assert found[("q1", "judge-a")]["status"] == "judged"
    assert found[("q1", "judge-a")]["scores"] == {c: 8.0 for c in CRITERIA}
    assert found[("q1", "judge-a")]["reasons"]["clarity"] == "clarity looks 8 to judge-a."
    assert found[("q2", "judge-a")]["overall"] == 5.0
    assert manifest["summary"]["per_judge"]["judge-a"] == {
        "judge_score": 6.5, "n_judged": 2, "n_unjudged": 0,
        "criteria": {c: 6.5 for c in CRITERIA}}
    assert server.count == 2
    first = server.requests[0]
    assert first["headers"]["Authorization"] == f"Bearer {SECRET}"
    assert first["body"]["model"] == "judge-a" and first["body"]["temperature"] == 0
    assert first["body"]["response_format"] == {"type": "json_object"}  # JSON mode by default
    user = first["body"]["messages"][1]["content"]
    assert "How do I reset my router?" in user and "Hold reset for 10 s." in user


def test_rubric_parser_tolerance():
    fenced = parse_rubric("```json\n{'correctness': 7, 'helpfulness': 8, 'domain accuracy': "
                          "'9/10', 'clarity': {'score': 0, 'reason': 'messy'},}\n```")
    assert fenced.scores == {"correctness": 7, "helpfulness": 8, "domain_accuracy": 9,
                             "clarity": 1}  # 0 is clamped to the scale's 1
    assert fenced.reasons["clarity"] == "messy" and fenced.overall == 6.25
    prose = parse_rubric('My verdict: {"scores": {"correctness": 6, "helpfulness": 6, '
                         '"domain_accuracy": 7, "clarity": 9}, "reasons": {"correctness": '
                         '"mostly right"}, "overall": 99} -- end')
    assert prose.overall == 7.0 and prose.reasons["correctness"] == "mostly right"
    lines = parse_rubric("Correctness: 4/10 - wrong band\nHelpfulness: 5\n"
                         "Domain accuracy: 6 - ok\nClarity: 7")
    assert lines.scores["correctness"] == 4 and lines.reasons["correctness"] == "wrong band"
    with pytest.raises(VerdictError, match="outside 1-10"):
        parse_rubric('{"correctness": 85, "helpfulness": 8, "domain_accuracy": 9, "clarity": 9}')
    with pytest.raises(VerdictError, match="no score for clarity"):
        parse_rubric('{"correctness": 8, "helpfulness": 8, "domain_accuracy": 9}')
    with pytest.raises(VerdictError):
        parse_rubric("Looks great to me!")


def test_unparseable_retried_then_unjudged_rest_judged(serve, tmp_path):
    server = serve(rubric_script)
    items = write_items(tmp_path / "items.jsonl", {"good": "score=9", "bad": "GARBAGE",
                                                   "flaky": "FLAKY score=4",
                                                   "none": "   "})
    folder, manifest = run_judge(JudgeJob(items, [client(server.url)], max_retries=2,
                                          store=tmp_path / "runs"))
    found = verdicts(folder)
    bad = found[("bad", "judge-a")]
    assert bad["status"] == "unjudged"
    assert bad["reason"] == ("unparseable verdict after 3 attempts: no JSON object in the reply")
    assert server.seen["GARBAGE"] == 3  # 1 + max_retries, then given up
    reask = [r for r in server.requests if judged_text(r["body"]) == "GARBAGE"][-1]
    assert "could not be used" in reask["body"]["messages"][-1]["content"]
    assert found[("flaky", "judge-a")]["status"] == "judged"
    assert found[("flaky", "judge-a")]["overall"] == 4.0
    assert found[("good", "judge-a")]["overall"] == 9.0
    assert found[("none", "judge-a")]["reason"] == "no response recorded"
    assert manifest["summary"]["per_judge"]["judge-a"]["n_unjudged"] == 2
    assert manifest["summary"]["per_judge"]["judge-a"]["judge_score"] == 6.5


def test_http_failures_retried_then_unjudged(serve, tmp_path, caplog):
    server = serve(rubric_script)
    items = write_items(tmp_path / "items.jsonl", {"a": "FAIL500", "b": "RATE429 score=7",
                                                   "c": "SLOW", "d": "score=3"})
    start = time.monotonic()
    folder, _ = run_judge(JudgeJob(items, [client(server.url, timeout=0.4)], max_retries=2,
                                   store=tmp_path / "runs"))
    found = verdicts(folder)
    assert found[("a", "judge-a")]["status"] == "unjudged"
    assert found[("a", "judge-a")]["reason"].startswith("judge judge-a: HTTP 500")
    assert found[("a", "judge-a")]["reason"].endswith("(gave up after 3 attempts)")
    assert server.seen["FAIL500"] == 3
    assert found[("b", "judge-a")]["overall"] == 7.0  # 429 honoured, then judged
    assert server.seen["RATE429 score=7"] == 2
    assert time.monotonic() - start >= 0.95  # Retry-After: 1 was waited
    assert found[("c", "judge-a")]["reason"] == ("judge judge-a: timed out after 0.4s "
                                                 "(gave up after 3 attempts)")
    assert found[("d", "judge-a")]["overall"] == 3.0
    assert "HTTP 429" in caplog.text and SECRET not in caplog.text


def test_judge_down_marks_items_unjudged(tmp_path):
    items = write_items(tmp_path / "items.jsonl", {f"q{i}": "score=5" for i in range(7)})
    judge = client(closed_port_url(), max_retries=1, max_workers=1)
    folder, manifest = run_judge(JudgeJob(items, [judge], store=tmp_path / "runs"))
    reasons = [r["reason"] for r in verdicts(folder).values()]
    assert all(r.startswith("judge judge-a: connection failed") for r in reasons[:5])
    assert reasons[5:] == ["judge judge-a skipped: 5 consecutive calls failed (server "
                           "unreachable?)"] * 2  # the breaker spares the rest
    assert manifest["summary"]["per_judge"]["judge-a"]["n_unjudged"] == 7
    assert judge.calls == 10


def test_retry_after_and_rate_limit():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past


def test_rate_limit_spaces_requests(serve):
    server = serve(rubric_script)
    judge = client(server.url, rps=10)
    start = time.monotonic()
    for _ in range(6):
        judge.chat([{"role": "system", "content": "x"},
                    {"role": "user", "content": "[Response to judge]\nscore=5"}])
    assert time.monotonic() - start >= 0.45  # 5 gaps of 0.1 s
    assert server.count == 6


# --- cache -----------------------------------------------------------------------------------

def test_second_run_makes_no_calls(serve, tmp_path):
    server = serve(rubric_script)
    items = write_items(tmp_path / "items.jsonl", {"q1": "score=8", "q2": "FLAKY score=3",
                                                   "q3": "GARBAGE"})
    job = dict(source=items, max_retries=1, store=tmp_path / "runs")
    folder, first = run_judge(JudgeJob(judges=[client(server.url)], **job))
    calls = server.count
    assert calls == first["calls"] == 1 + 2 + 2
    again, second = run_judge(JudgeJob(judges=[client(server.url)], **job))
    # The unjudged item is asked again (a failure is never cached); the rest are hits.
    assert server.count - calls == second["calls"] == 2
    assert second["cache_hits"] == 2 and again == folder
    assert verdicts(folder)[("q2", "judge-a")]["overall"] == 3.0
    server.script = lambda body, headers, srv: completion(verdict_json(6))
    third_items = write_items(tmp_path / "items.jsonl", {"q1": "score=8", "q2": "FLAKY score=3"})
    before = server.count
    _, third = run_judge(JudgeJob(judges=[client(server.url)], **job | {"source": third_items}))
    assert server.count == before and third["calls"] == 0 and third["cache_hits"] == 2
    # Another judge model (or url) is another key: no stale verdict is reused.
    run_judge(JudgeJob(judges=[client(server.url, model="judge-b")], **job))
    assert server.count > before


def test_cache_survives_reopen(tmp_path):
    path = tmp_path / "c" / "v.sqlite"
    with ReplyCache(path) as cache:
        cache.put("k1", "m", "v", "reply one")
    with ReplyCache(path) as cache:
        assert cache.get("k1") == "reply one" and cache.get("k2") is None
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(SlmbenchError, match="delete it"):
        ReplyCache(path)


# --- pairwise --------------------------------------------------------------------------------

def pair_texts(body: dict[str, Any]) -> tuple[str, str]:
    user = body["messages"][1]["content"]
    first = user.split("[Response 1]\n", 1)[1].split("\n\n[Response 2]\n", 1)[0]
    return first, user.split("[Response 2]\n", 1)[1]


def consistent_script(body, headers, server):
    first, second = pair_texts(body)
    good = ("GOOD" in first, "GOOD" in second)
    winner = {(True, False): "1", (False, True): "2"}.get(good, "tie")
    return completion(f'Verdict follows. {{"winner": "{winner}", "reason": "one is right"}}')


def biased_script(body, headers, server):
    return completion('{"winner": "1", "reason": "the first one reads better"}')


@pytest.fixture
def pair_files(tmp_path):
    a = write_items(tmp_path / "a.jsonl", {"q1": "GOOD: reset it", "q2": "bad: reinstall",
                                           "q3": "GOOD: hold reset", "q4": "only in A"})
    b = write_items(tmp_path / "b.jsonl", {"q1": "bad: call us", "q2": "GOOD: reset it",
                                           "q3": "GOOD: reset button"})
    return a, b


def test_pairwise_consistent_judge_kept(serve, tmp_path, pair_files):
    server = serve(consistent_script)
    a, b = pair_files
    folder, manifest = run_judge(JudgeJob(a, [client(server.url)], mode="pairwise", against=b,
                                          store=tmp_path / "runs"))
    found = verdicts(folder)
    assert [found[(k, "judge-a")]["winner"] for k in ("q1", "q2", "q3")] == ["A", "B", "tie"]
    assert all(found[(k, "judge-a")]["consistent"] for k in ("q1", "q2", "q3"))
    assert server.count == 6  # both orders of 3 shared items; q4 has no partner
    stats = manifest["summary"]["per_judge"]["judge-a"]
    assert stats["position_bias_rate"] == 0.0 and stats["judge_score"] == 0.5
    assert (stats["wins_a"], stats["wins_b"], stats["ties"]) == (1, 1, 1)
    asked = Counter(pair_texts(r["body"]) for r in server.requests)
    assert all(asked[(second, first)] == 1 for first, second in asked)  # both orders, once


def test_pairwise_position_biased_judge_is_tie(serve, tmp_path, pair_files):
    server = serve(biased_script)
    a, b = pair_files
    folder, manifest = run_judge(JudgeJob(a, [client(server.url)], mode="pairwise", against=b,
                                          store=tmp_path / "runs"))
    for row in verdicts(folder).values():
        assert row["winner"] == "tie" and row["consistent"] is False
        assert row["note"] == "tie (inconsistent)" and row["position_bias"] is True
    stats = manifest["summary"]["per_judge"]["judge-a"]
    assert stats["position_bias_rate"] == 1.0 and stats["inconsistent"] == 3


def test_pairwise_parsing_and_combine():
    assert parse_pairwise('```json\n{"Winner": "Response 2", "reason": "x"}\n```') == ("2", "x")
    assert parse_pairwise("After thought, the winner is [[1]].") == ("1", "")
    with pytest.raises(VerdictError):
        parse_pairwise('{"winner": "both are bad"}')
    assert combine("1", "2")["winner"] == "A" and combine("2", "1")["winner"] == "B"
    assert combine("tie", "tie") == {"winner": "tie", "consistent": True,
                                     "position_bias": False}
    assert combine("2", "2") == {"winner": "tie", "consistent": False, "position_bias": True}
    assert combine("1", "tie")["consistent"] is False


# --- agreement -------------------------------------------------------------------------------

def test_kappa_and_spearman_known_values():
    scores = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert cohen_kappa(scores, scores) == 1.0
    assert cohen_kappa(scores, scores, weights="quadratic") == 1.0
    assert spearman(scores, scores) == 1.0 and spearman(scores, scores[::-1]) == -1.0
    # po = 3/4; marginals (1/2, 1/2) and (1/4, 3/4) -> pe = 1/2; kappa = (3/4 - 1/2) / (1/2).
    assert cohen_kappa([1, 1, 2, 2], [1, 2, 2, 2]) == pytest.approx(0.5)
    # po = 2/3, pe = 2/9 -> 4/7; quadratic: observed 1/3, expected 21/9 -> 1 - 1/7.
    assert cohen_kappa([1, 2, 3], [1, 2, 4]) == pytest.approx(4 / 7)
    assert cohen_kappa([1, 2, 3], [1, 2, 4], weights="quadratic") == pytest.approx(6 / 7)
    assert agreement_rate([1, 2, 3], [1, 2, 4]) == pytest.approx(2 / 3)
    assert cohen_kappa([5, 5], [5, 5]) == 1.0 and cohen_kappa([5, 5], [4, 4]) == 0.0
    assert math.isnan(cohen_kappa([], []))
    sklearn = pytest.importorskip("sklearn.metrics")
    a, b = [3, 7, 7, 8, 2, 9, 5, 5, 6], [4, 7, 6, 8, 2, 10, 5, 3, 6]
    assert cohen_kappa(a, b) == pytest.approx(sklearn.cohen_kappa_score(a, b))
    assert cohen_kappa(a, b, weights="quadratic") == pytest.approx(
        sklearn.cohen_kappa_score(a, b, labels=list(range(1, 11)), weights="quadratic"))


def test_agreement_of_two_judges_in_a_run(serve, tmp_path):
    server = serve(rubric_script)  # judge-b scores every item one point higher
    items = write_items(tmp_path / "items.jsonl",
                        {f"q{i}": f"score={s}" for i, s in enumerate([2, 4, 6, 8])})
    _, manifest = run_judge(JudgeJob(items, [client(server.url, "judge-a"),
                                             client(server.url, "judge-b")],
                                     store=tmp_path / "runs"))
    (row,) = manifest["summary"]["agreement"]
    assert row["judges"] == ["judge-a", "judge-b"] and row["n"] == 4
    assert row["spearman"] == 1.0 and row["agreement_rate"] == 0.0
    # Hand-computed: shifted by one, no exact matches -> kappa = (0 - 0) / (1 - 0) = 0.
    assert row["cohen_kappa"] == 0.0
    # Quadratic: observed mean (a - b)^2 = 1; chance mean over all 16 pairs = 176 / 16 = 11.
    assert row["weighted_kappa"] == pytest.approx(1 - 1 / 11, abs=1e-4)
    assert judges_agreement({"x": {"k": "A"}, "y": {"k": "A"}}, categorical=True)[0][
        "agreement_rate"] == 1.0


def test_judge_is_ranked_against_the_tasks_own_metric(serve, tmp_path, capsys):
    from harness.judge.summary import print_summary

    server = serve(rubric_script)
    judged = [2, 4, 6, 8, 3, 5]  # what the scripted judge will score each item
    token_f1 = [0.1, 0.3, 0.5, 0.7, 0.2, 0.4]  # the same order: rho = 1
    items = tmp_path / "items.jsonl"
    with items.open("w") as fh:
        for i, (score, f1) in enumerate(zip(judged, token_f1, strict=True)):
            fh.write(json.dumps({"id": f"q{i}", "question": "Why no signal?",
                                 "response": f"score={score}", "reference_score": f1}) + "\n")
    folder, manifest = run_judge(JudgeJob(items, [client(server.url)], store=tmp_path / "runs"))
    stats = manifest["summary"]["per_judge"]["judge-a"]
    assert stats["spearman_vs_reference"] == 1.0 and stats["n_reference"] == 6
    assert manifest["config"]["judges"][0]["json_mode"] == "object"
    rows = store.load_run(folder).jsonl("verdicts.jsonl")
    assert sorted(r["reference_score"] for r in rows) == sorted(token_f1)

    reversed_items = tmp_path / "reversed.jsonl"
    reversed_items.write_text("".join(
        json.dumps({"id": f"q{i}", "question": "Why no signal?", "response": f"score={score}",
                    "reference_score": -f1}) + "\n"
        for i, (score, f1) in enumerate(zip(judged, token_f1, strict=True))))
    _, manifest = run_judge(JudgeJob(reversed_items, [client(server.url)],
                                     store=tmp_path / "runs"))
    assert manifest["summary"]["per_judge"]["judge-a"]["spearman_vs_reference"] == -1.0
    assert manifest["summary"]["per_judge"]["judge-a"]["modal_share"] == pytest.approx(1 / 6,
                                                                                  abs=1e-4)

    flat = tmp_path / "flat.jsonl"
    flat.write_text("".join(json.dumps({"id": f"q{i}", "question": "Why no signal?",
                                        "response": "score=1", "reference_score": f1}) + "\n"
                            for i, f1 in enumerate(token_f1)))
    folder, manifest = run_judge(JudgeJob(flat, [client(server.url)], store=tmp_path / "runs"))
    stats = manifest["summary"]["per_judge"]["judge-a"]
    assert stats["modal_share"] == 1.0 and stats["spearman_vs_reference"] is None
    print_summary(manifest, folder)
    assert "gave 100% of its 6 answers the very same scores" in capsys.readouterr().out

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "x", "response": "r", "reference_score": "high"}) + "\n")
    with pytest.raises(SlmbenchError, match=r"bad.jsonl:1: reference_score must be a number"):
        run_judge(JudgeJob(bad, [client(server.url)], store=tmp_path / "runs"))


# --- secrets ---------------------------------------------------------------------------------

def test_api_key_never_written_nor_in_errors(serve, tmp_path, caplog):
    def script(body, headers, server):
        text = judged_text(body)
        if "LEAK" in text:  # a misbehaving server puts the key into its verdict
            return completion(verdict_json(7).replace("correctness looks 7 to me.",
                                                      headers.get("Authorization")))
        return rubric_script(body, headers, server)

    server = serve(script)
    items = write_items(tmp_path / "items.jsonl", {"q1": "score=8", "q2": "ECHO", "q3": "LEAK"})
    runs = tmp_path / "runs"
    folder, manifest = run_judge(JudgeJob(items, [client(server.url)], max_retries=1,
                                          store=runs))
    assert all(r["headers"]["Authorization"] == f"Bearer {SECRET}" for r in server.requests)
    found = verdicts(folder)
    assert "bad auth Bearer ***" in found[("q2", "judge-a")]["reason"]
    assert found[("q3", "judge-a")]["reasons"]["correctness"] == "Bearer ***"
    written = [p for p in runs.rglob("*") if p.is_file()]
    assert {p.name for p in written} >= {"run.json", "verdicts.jsonl", "verdicts.sqlite"}
    for path in written:
        assert SECRET.encode() not in path.read_bytes(), path
    assert manifest["config"]["judges"][0]["api_key_env"] == KEY_ENV
    assert SECRET not in caplog.text
    with pytest.raises(ChatCallError) as err:
        client(server.url, max_retries=0).chat(
            [{"role": "system", "content": ""}, {"role": "user",
                                                 "content": "[Response to judge]\nECHO"}])
    assert SECRET not in str(err.value) and SECRET not in repr(err.value)
    with pytest.raises(ChatCallError) as err:
        client(closed_port_url(), max_retries=0).chat([{"role": "user", "content": "hi"}])
    assert SECRET not in str(err.value) and "connection failed" in str(err.value)
    assert SECRET not in repr(client(server.url)) and SECRET not in str(vars(client(server.url)))


def test_no_key_env_sends_no_authorization(serve, monkeypatch):
    server = serve(rubric_script)
    monkeypatch.delenv(KEY_ENV)
    client(server.url).chat([{"role": "s", "content": ""},
                             {"role": "user", "content": "[Response to judge]\nscore=5"}])
    assert "Authorization" not in server.requests[0]["headers"]


# --- store, run folders, CLI -----------------------------------------------------------------

def write_eval_run(root: Path) -> Path:
    folder = root / "eval" / "evalrun1"
    rows = [{"doc_id": 0, "id": "t0", "target": "Hold reset 10 s", "resps": [["score=8"]],
             "parsed": [["x"]], "score": 1.0, "prompt": "How to reset the ONT?"},
            {"doc_id": 1, "id": "t1", "target": "Reboot", "resps": [["score=4"]],
             "parsed": [["y"]], "score": 0.0}]
    store.write_samples(folder / "samples" / "support_gen.jsonl", rows)
    store.write_run(folder, "eval", "evalrun1", {"model": "fixture"},
                    ["samples/support_gen.jsonl"],
                    extra={"label": "lora-best-val", "tasks": {"support_gen": {
                        "metric": "exact_match,none", "samples": "samples/support_gen.jsonl"}}})
    return folder


def test_judge_run_of_an_eval_run_lands_in_store(serve, tmp_path):
    server = serve(rubric_script)
    runs = tmp_path / "runs"
    eval_folder = write_eval_run(runs)
    job = JudgeJob(eval_folder, [client(server.url)], store=runs)
    folder, _ = run_judge(job)
    assert folder.parent == runs / "judge"
    run = store.load_run(folder)
    assert run.kind == "judge" and not run.problems
    assert run.manifest["config"]["target_run_id"] == "evalrun1"
    assert run.manifest["config"]["mode"] == "rubric"
    assert run.manifest["config"]["rubric_version"] == "rubric-v1"
    assert run.manifest["label"] == "judge-a on lora-best-val"
    rows = run.jsonl("verdicts.jsonl")
    assert [(r["key"], r["task"], r["overall"], r["reference_score"]) for r in rows] == [
        ("support_gen/t0", "support_gen", 8.0, 1.0), ("support_gen/t1", "support_gen", 4.0, 0.0)]
    users = sorted((r["body"]["messages"][1]["content"] for r in server.requests),
                   key=lambda text: "score=4" in text)
    assert "How to reset the ONT?" in users[0] and "Hold reset 10 s" in users[0]
    assert "(not recorded" in users[1] and "Reboot" in users[1]
    assert any("no recorded prompt" in note for note in job.notes)
    judges, problems = store.find_runs(runs, kind="judge")
    assert [r.run_id for r in judges] == [run.run_id] and not problems
    assert len(store.find_runs(runs, kind="eval")[0]) == 1


def test_judge_sweep_joins_judge_scores_to_points(serve, tmp_path, capsys):
    from harness.cli import main
    from harness.report.leaderboard_data import collect

    server = serve(rubric_script)
    runs = tmp_path / "runs"
    sweep = runs / "sweeps" / "support"
    results = []
    for name, score, loss in (("r4", 3, 0.5), ("r16", 9, 0.7), ("r8", None, 0.6)):
        scores: dict[str, Any] = {}
        if score is not None:  # r8 was swept with --eval-limit 0: nothing to judge
            folder = runs / "eval" / f"eval_{name}"
            store.write_samples(folder / "samples" / "support.jsonl", [
                {"doc_id": 0, "id": "s0", "target": "Reboot", "resps": [[f"score={score}"]],
                 "score": 0.5, "question": "No signal?"}])
            store.write_run(folder, "eval", f"eval_{name}", {"model": "fixture"},
                            ["samples/support.jsonl"], extra={"label": name, "tasks": {
                                "support": {"metric": "token_f1,none",
                                            "samples": "samples/support.jsonl"}}})
            scores = {"support": {"metric": "token_f1,none", "value": 0.5, "n": 1},
                      "_run_id": f"eval_{name}"}
        result = {"run_id": name, "rank": int(name[1:]), "alpha": 2 * int(name[1:]),
                  "module_set": "all", "best_val_loss": loss, "best_val_answer_loss": loss,
                  "scores": scores}
        (sweep / name).mkdir(parents=True)
        (sweep / name / "result.json").write_text(json.dumps(result))
        results.append(result)
    store.write_samples(sweep / "results.jsonl", results)
    store.write_run(sweep, "sweep", "support", {"grid": "rank"}, ["results.jsonl"],
                    extra={"label": "support"})

    assert main(["judge", "--sweep", str(sweep), "--judge", f"{server.url}=judge-a",
                 "--store", str(runs), "--no-cache"]) == 0
    out = capsys.readouterr().out
    assert "r8: no eval run recorded" in out and "validation loss against judge" in out
    judged, _ = store.find_runs(runs, kind="judge")
    assert sorted(r.manifest["config"]["target_run_id"] for r in judged) == ["eval_r16",
                                                                              "eval_r4"]
    assert {r.manifest["label"] for r in judged} == {"judge-a on support/r4",
                                                     "judge-a on support/r16"}
    (swept,) = collect(runs).sweeps
    assert {r["run_id"]: r.get("judge_score") for r in swept.rows} == {
        "r4": 3.0, "r16": 9.0, "r8": None}
    with pytest.raises(SlmbenchError, match="no such sweep folder"):
        from harness.judge.sweep_targets import sweep_points
        sweep_points(tmp_path / "nowhere")


def test_cli_judge_prints_table(serve, tmp_path, capsys, monkeypatch):
    from harness.cli import main

    monkeypatch.setenv("COLUMNS", "200")
    server = serve(rubric_script)
    items = write_items(tmp_path / "items.jsonl", {"q1": "score=8", "q2": "GARBAGE"})
    code = main(["judge", "--items", str(items), "--judge", f"{server.url}=judge-a",
                 "--judge", f"{server.url}=judge-b", "--api-key-env", KEY_ENV,
                 "--max-retries", "1", "--rps", "0", "--store", str(tmp_path / "runs")])
    out = capsys.readouterr().out
    assert code == 0
    assert "judge-a" in out and "judge-b" in out and "8.000" in out and "9.000" in out
    assert "inter-judge agreement" in out and "unparseable verdict" in out
    assert SECRET not in out
    assert main(["judge", "--items", str(items), "--judge", "nourl"]) == 2
    assert main(["judge", "--items", str(tmp_path / "missing.jsonl"),
                 "--judge", f"{server.url}=m"]) == 2
    assert "no such run folder or items file" in capsys.readouterr().err


def test_judge_specs_and_local_backend_lazy(tmp_path):
    spec = parse_judge_spec("http://127.0.0.1:8080/v1=qwen2.5-7b-instruct")
    assert (spec.base_url, spec.model) == ("http://127.0.0.1:8080/v1", "qwen2.5-7b-instruct")
    with pytest.raises(SlmbenchError, match="BASE_URL=MODEL"):
        parse_judge_spec("qwen")
    with pytest.raises(SlmbenchError, match="not found"):
        LocalJudgeClient(tmp_path / "missing.gguf")
    fake = tmp_path / "judge.gguf"
    fake.write_bytes(b"GGUF")
    code = ("import sys; from harness.judge.client import parse_judge_spec; "
            f"j = parse_judge_spec('local:{fake}'); "
            "import harness.judge.runner, harness.cli; "
            "print(j.name, j.max_workers, 'llama_cpp' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1]).stdout
    assert out.split() == ["local:judge", "1", "False"]


def test_json_mode_can_be_turned_off_and_keys_the_cache_apart():
    from harness.judge.client import parse_judge_spec

    on = parse_judge_spec("http://127.0.0.1:9/v1=m")
    off = parse_judge_spec("http://127.0.0.1:9/v1=m", json_mode="off")
    schema = parse_judge_spec("http://127.0.0.1:9/v1=m", json_mode="schema")
    assert on.json_mode == "object" and off.json_mode == "off"
    # cached replies of one mode never serve another
    assert len({on.model_id, off.model_id, schema.model_id}) == 3


def test_schema_mode_sends_the_verdict_schema():
    from harness.judge.client import response_format
    from harness.judge.rubric import CRITERIA, RUBRIC_SCHEMA

    assert response_format("object", RUBRIC_SCHEMA) == {"type": "json_object"}
    assert response_format("off", RUBRIC_SCHEMA) is None
    fmt = response_format("schema", RUBRIC_SCHEMA)
    assert fmt["type"] == "json_object" and fmt["schema"]["required"] == list(CRITERIA)


def test_schema_bounds_a_verdict_inside_its_token_budget():
    """The worst reply the grammar allows (every reason at its limit, one token per character)
    still fits ``max_tokens``, so a looping small judge cannot be cut off mid-object."""
    from harness.judge.rubric import REASON_MAX_CHARS, RUBRIC_MAX_TOKENS, RUBRIC_SCHEMA

    longest = json.dumps({c: {"score": 10, "reason": "1." * (REASON_MAX_CHARS // 2)}
                          for c in CRITERIA})
    assert len(longest) <= RUBRIC_MAX_TOKENS
    assert parse_rubric(longest).overall == 10.0
    llama_grammar = pytest.importorskip("llama_cpp.llama_grammar")
    gbnf = llama_grammar.json_schema_to_gbnf(json.dumps(RUBRIC_SCHEMA))
    # Scores are a closed set and reasons are bounded in the grammar itself (not generic JSON).
    assert '"1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9" | "10"' in gbnf
    reason_rule = next(line for line in gbnf.splitlines()
                       if line.startswith("correctness-reason ::="))
    assert reason_rule.count("char") == REASON_MAX_CHARS
