"""Synthetic data: glossary, scenarios, generator, dedup, split by scenario, intents, LLM client."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import random
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from harness.cli import main
from harness.data.synth.dedup import dedup, jaccard, shingles
from harness.data.synth.expand import intent_items, telecom_items
from harness.data.synth.generator import generate_examples
from harness.data.synth.glossary import DEFAULT_GLOSSARY, load_glossary
from harness.data.synth.intents import (
    DEFAULT_INTENTS,
    build_intent_scenarios,
    generate_intents,
    load_intent_set,
    split_intents,
)
from harness.data.synth.llm import ExpanderChat, LLMConfig, LLMItem, RateLimiter, run_items
from harness.data.synth.pipeline import SynthOptions, run_synth
from harness.data.synth.scenario_split import split_by_scenario
from harness.data.synth.scenarios import build_scenarios
from harness.errors import SlmbenchError

SECRET = "sk-test-9f8e7d6c5b4a-DO-NOT-LEAK"
KEY_ENV = "SLMBENCH_SYNTH_TEST_KEY"


@pytest.fixture(scope="module")
def glossary():
    return load_glossary()


@pytest.fixture(scope="module")
def telecom_small(glossary):
    """Three examples for each of the 1,560 shipped scenarios."""
    return generate_examples(build_scenarios(glossary), seed=42, per_scenario=3)


def _write_yaml(path: Path, data) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _tiny_glossary() -> dict:
    return {
        "domain": "telecom",
        "contexts": [{"name": f"ctx {i}", "customer": f"I am customer type {i}",
                      "note": f"Note {i}."} for i in range(4)],
        "terms": [
            {"term": "roaming", "definition": "Roaming is using a partner network abroad.",
             "causes": [{"cause": f"cause {k} applies", "symptom": f"my phone shows fault {k}",
                         "fix": f"do step {k}"} for k in range(3)]},
            {"term": "APN", "definition": "The APN is the data connection setting.",
             "causes": [{"cause": "the APN is wrong", "symptom": "my data does not load",
                         "fix": "reset the APN"}]},
        ],
    }


# --- glossary and scenarios ---------------------------------------------------------------


def test_shipped_glossary_size(glossary):
    assert len(glossary.terms) == 52
    assert len(glossary.contexts) >= 10
    assert all(len(t.causes) >= 3 for t in glossary.terms)
    scenarios = build_scenarios(glossary)
    n_causes = sum(len(t.causes) for t in glossary.terms)
    assert len(scenarios) == n_causes * len(glossary.contexts) == glossary.n_scenarios >= 1500
    assert len({s.id for s in scenarios}) == len(scenarios)


def test_scenario_count_is_terms_x_causes_x_contexts_and_ids_are_stable(tmp_path):
    data = _tiny_glossary()
    first = build_scenarios(load_glossary(_write_yaml(tmp_path / "g.yaml", data)))
    assert len(first) == (3 + 1) * 4
    # ids hash the parts, not their position: reordering the file keeps every id
    data["terms"].reverse()
    data["contexts"].reverse()
    again = build_scenarios(load_glossary(_write_yaml(tmp_path / "g2.yaml", data)))
    assert {s.id for s in again} == {s.id for s in first}


@pytest.mark.parametrize("edit, needle", [
    (lambda d: d["terms"].append({**d["terms"][0], "term": "  ROAMING "}), "'ROAMING'"),
    (lambda d: d["terms"][1].update(term="   "), "term #2: empty 'term'"),
    (lambda d: d["terms"][0]["causes"][1].update(cause=""), "'roaming': cause #2: empty 'cause'"),
    (lambda d: d["contexts"][2].update(customer=" "), "context #3: empty 'customer'"),
    (lambda d: d["terms"][1].update(causes=[]), "'APN': needs a non-empty list 'causes'"),
])
def test_bad_glossary_is_a_one_line_error_naming_the_row(tmp_path, edit, needle):
    data = _tiny_glossary()
    edit(data)
    path = _write_yaml(tmp_path / "bad_glossary.yaml", data)
    with pytest.raises(SlmbenchError) as info:
        load_glossary(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message and needle in message
    if "ROAMING" in needle:
        assert "duplicate term" in message and "'roaming'" in message


# --- generator ------------------------------------------------------------------------------


def test_examples_have_the_record_schema(telecom_small):
    assert len(telecom_small) == 1560 * 3
    kinds = {r["kind"] for r in telecom_small}
    assert kinds == {"qa", "conversation"}
    for r in telecom_small[:300]:
        assert {"id", "scenario", "question", "answer", "kind", "term", "cause",
                "context"} <= r.keys()
        assert r["question"] and r["answer"]
        if r["kind"] == "conversation":
            roles = [m["role"] for m in r["messages"]]
            assert roles[:4] == ["user", "assistant", "user", "assistant"]
            assert r["messages"][0]["content"] == r["question"]
            assert r["messages"][3]["content"] == r["answer"]
        else:
            assert "messages" not in r
            assert r["term"] in r["question"] and r["cause"] in r["question"]


def test_generation_is_deterministic_per_seed(glossary):
    scenarios = build_scenarios(glossary)[:200]
    a = generate_examples(scenarios, seed=42, per_scenario=4)
    b = generate_examples(list(reversed(scenarios)), seed=42, per_scenario=4)
    c = generate_examples(scenarios, seed=43, per_scenario=4)
    assert json.dumps(a) == json.dumps(generate_examples(scenarios, seed=42, per_scenario=4))
    assert sorted(r["id"] for r in a) == sorted(r["id"] for r in b)  # order-independent
    assert [r["scenario"] for r in a] == [r["scenario"] for r in c]
    changed = sum(x["question"] != y["question"] for x, y in zip(a, c, strict=True))
    assert changed > 0.9 * len(a)  # another seed picks other phrasing


def test_synth_run_is_byte_identical_for_a_seed(tmp_path):
    def run(out, seed):
        report = run_synth(SynthOptions(domain="telecom", out=tmp_path / out, seed=seed,
                                        per_scenario=2))
        files = {n: (tmp_path / out / f"{n}.jsonl").read_bytes()
                 for n in ("train", "validation", "test")}
        return report, files

    report, first = run("a", 42)
    _, second = run("b", 42)
    _, other = run("c", 7)
    assert first == second
    assert first != other
    assert report["scenarios"] == {"total": 1560, "train": 936, "validation": 312, "test": 312}
    assert report["examples"]["total"] == sum(report["examples"][n] for n in first)
    assert report["dedup"]["total"] == 3120
    assert report["source_sha256"] == load_glossary().sha256
    assert report["seed"] == 42 and report["failed_llm_items"] == 0
    saved = json.loads((tmp_path / "a" / "synth_report.json").read_text())
    assert saved == json.loads(json.dumps(report))


# --- split by scenario ----------------------------------------------------------------------


def test_no_scenario_leaks_between_splits_and_order_does_not_matter(telecom_small):
    parts = split_by_scenario(telecom_small, seed=42)
    sets = {n: {r["scenario"] for r in rows} for n, rows in parts.items()}
    assert not sets["train"] & sets["test"]
    assert not sets["train"] & sets["validation"]
    assert not sets["validation"] & sets["test"]
    assert [len(s) for s in sets.values()] == [936, 312, 312]
    assert sum(len(v) for v in parts.values()) == len(telecom_small)
    shuffled = list(telecom_small)
    random.Random(5).shuffle(shuffled)
    assert split_by_scenario(shuffled, seed=42) == parts
    assert split_by_scenario(telecom_small, seed=1) != parts


def test_split_keeps_scenarios_fixed_when_dedup_empties_one(telecom_small):
    all_ids = sorted({r["scenario"] for r in telecom_small})
    full = split_by_scenario(telecom_small, scenario_ids=all_ids)
    dropped = all_ids[0]
    rest = [r for r in telecom_small if r["scenario"] != dropped]
    partial = split_by_scenario(rest, scenario_ids=all_ids)
    for name in full:
        assert partial[name] == [r for r in full[name] if r["scenario"] != dropped]


# --- dedup ----------------------------------------------------------------------------------


def _near_copy(text: str, rng: random.Random) -> str:
    words = text.split()
    i = rng.randrange(1, len(words) - 1)
    words[i] = "really"  # one word changed, plus case and punctuation noise
    return " ".join(words).upper().replace(".", " !")


def test_dedup_drops_planted_near_duplicates_and_keeps_distinct(telecom_small):
    rng = random.Random(0)
    qa = [r for r in telecom_small if r["kind"] == "qa"]
    base = rng.sample(qa, 400)
    planted = []
    for k, r in enumerate(base[:40]):
        copy = {**r, "id": f"zz-near-{k:02d}", "question": _near_copy(r["question"], rng)}
        planted.append(copy)
        assert jaccard(shingles(r["question"] + "\n" + r["answer"]),
                       shingles(copy["question"] + "\n" + copy["answer"])) >= 0.8
    exact = [{**r, "id": f"zz-exact-{k}"} for k, r in enumerate(base[40:50])]
    pool = base + planted + exact
    rng.shuffle(pool)
    kept, report = dedup(pool)
    kept_ids = {r["id"] for r in kept}
    assert report.exact == 10 and report.near == 40 and report.dropped == 50
    assert kept_ids == {r["id"] for r in base}  # the originals sort first and are kept
    assert report.kept == len(kept) == 400
    again, _ = dedup(list(reversed(pool)))
    assert {r["id"] for r in again} == kept_ids  # input order does not matter


def test_dedup_keeps_every_distinct_template_example(telecom_small):
    kept, report = dedup(telecom_small)
    assert report.dropped == 0 and len(kept) == len(telecom_small)


# --- e-commerce intents ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def intent_records():
    return generate_intents(seed=42)


def test_intent_set_covers_every_label_in_every_language():
    intent_set = load_intent_set()
    assert len(intent_set.intents) >= 10
    assert {"en", "es", "de", "fr"} <= set(intent_set.languages)
    for lang in intent_set.languages.values():
        assert set(lang.templates) == set(intent_set.intents)
        assert all(len(t) >= 5 for t in lang.templates.values())


def test_intent_records_schema_sizes_and_balance(intent_records):
    labels = load_intent_set().labels
    assert 2000 <= len(intent_records) <= 5000
    for r in intent_records:
        assert r["answer"] in labels and r["labels"] == labels
        assert r["subject"] in {"en", "es", "de", "fr"}
        assert r["question"].strip() and r["scenario"] and r["choices"] == []
    assert len({r["id"] for r in intent_records}) == len(intent_records)
    for code in ("en", "es", "de", "fr"):
        for label in labels:
            n = sum(1 for r in intent_records if r["subject"] == code and r["answer"] == label)
            assert n >= 30, (code, label, n)
    # not trivial: some utterances mention another intent's words (distractor clauses)
    assert any("discount code" in r["question"] and r["answer"] != "discount_code"
               for r in intent_records)


def test_intent_generation_is_deterministic_and_split_has_no_leak(intent_records):
    assert json.dumps(generate_intents(seed=42)) == json.dumps(intent_records)
    assert json.dumps(generate_intents(seed=3)) != json.dumps(intent_records)
    parts = split_intents(intent_records, seed=42)
    sets = {n: {r["scenario"] for r in rows} for n, rows in parts.items()}
    assert not sets["train"] & sets["test"] and not sets["validation"] & sets["test"]
    assert 300 <= len(parts["test"]) <= 1000
    shuffled = list(intent_records)
    random.Random(1).shuffle(shuffled)
    assert split_intents(shuffled, seed=42) == parts


def test_intent_set_missing_or_extra_label_is_a_one_line_error(tmp_path):
    data = yaml.safe_load(DEFAULT_INTENTS.read_text(encoding="utf-8"))
    del data["languages"]["de"]["templates"]["refund_status"]
    path = _write_yaml(tmp_path / "intents.yaml", data)
    with pytest.raises(SlmbenchError) as info:
        load_intent_set(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    assert "'refund_status'" in message and "'de'" in message

    data = yaml.safe_load(DEFAULT_INTENTS.read_text(encoding="utf-8"))
    data["languages"]["fr"]["templates"]["gift_wrap"] = ["Pouvez-vous emballer {product} ?"]
    path = _write_yaml(tmp_path / "intents2.yaml", data)
    with pytest.raises(SlmbenchError) as info:
        load_intent_set(path)
    message = str(info.value)
    assert "\n" not in message and "'gift_wrap'" in message and "'fr'" in message

    data = yaml.safe_load(DEFAULT_INTENTS.read_text(encoding="utf-8"))
    data["languages"]["es"]["templates"]["order_status"].append("¿Dónde está {pedido}?")
    with pytest.raises(SlmbenchError, match=r"'es'.*unknown slot \{pedido\}"):
        load_intent_set(_write_yaml(tmp_path / "intents3.yaml", data))


# --- LLM expansion against a real local HTTP server -----------------------------------------


class ScriptedServer:
    """An OpenAI-compatible ``/v1/chat/completions`` whose reply depends on the prompt text.

    ``flaky``: 429 (Retry-After: 3), then 500 echoing the Authorization header, then ok.
    ``slow``: first attempt outlasts the client timeout, then ok. ``broken``: a malformed
    body. ``garbled``: a valid response whose content is not the JSON asked for. Anything
    else: ok at once. ``content(prompt)`` builds the completion text.
    """

    def __init__(self, content=None) -> None:
        self.hits: dict[str, int] = {}
        self.auth: set[str] = set()
        self.lock = threading.Lock()
        self.content = content or (lambda prompt: json.dumps({"text": prompt[-12:]}))
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def _send(self, status, body: bytes, headers=()):
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (the timeout case)

            def do_POST(self):  # noqa: N802 - http.server API
                length = int(self.headers.get("Content-Length", 0))
                request = json.loads(self.rfile.read(length))
                prompt = request["messages"][-1]["content"]
                tag = next((t for t in ("flaky", "slow", "broken", "garbled")
                            if f"[{t}]" in prompt), "ok")
                with server.lock:
                    server.auth.add(self.headers.get("Authorization", ""))
                    n = server.hits[prompt] = server.hits.get(prompt, 0) + 1
                if self.path != "/v1/chat/completions":
                    return self._send(404, b"{}")
                if tag == "flaky" and n == 1:
                    return self._send(429, b'{"error": "slow down"}', [("Retry-After", "3")])
                if tag == "flaky" and n == 2:
                    echo = f"internal error for {self.headers.get('Authorization')}"
                    return self._send(500, echo.encode())
                if tag == "slow" and n == 1:
                    time.sleep(1.0)
                if tag == "broken":
                    return self._send(200, b'{"choices": [ this is not json')
                content = "Sorry, I can't." if tag == "garbled" else server.content(prompt)
                body = {"id": "x", "object": "chat.completion", "model": request["model"],
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": content}}],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 5,
                                  "total_tokens": 15}}
                self._send(200, json.dumps(body).encode(), [("Content-Type", "application/json")])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def total(self) -> int:
        return sum(self.hits.values())


@pytest.fixture
def api_key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                 "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    return SECRET


def _no_secret_under(root: Path) -> None:
    files = [p for p in root.rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path


def _items(tags):
    def parse(text):
        return [{"id": text, "text": json.loads(text)["text"]}]
    return [LLMItem(key=t, messages=[{"role": "user", "content": f"item [{t}] {t}"}],
                    parse=parse) for t in tags]


_HTTPX = any(importlib.util.find_spec(m) is not None for m in ("httpx", "httpx2"))
TRANSPORTS = ["urllib", pytest.param("httpx", marks=pytest.mark.skipif(
    not _HTTPX, reason="neither httpx nor httpx2 is installed"))]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_llm_retries_cache_failures_and_no_key_on_disk(tmp_path, api_key, transport):
    sleeps: list[float] = []

    def client():
        return ExpanderChat(LLMConfig(base_url=server.url, model="test-model",
                                    api_key_env=KEY_ENV, rps=1000, price_per_1k=2.0,
                                    cache_dir=tmp_path / "cache", log_path=tmp_path / "log.jsonl",
                                    max_retries=3, backoff_base=0.01, timeout=0.5,
                                    transport=transport), sleep=sleeps.append)

    tags = ["good", "flaky", "broken", "slow", "garbled", "other"]
    with ScriptedServer() as server:
        first = client()
        records = run_items(first, _items(tags))
        calls_first = server.total()
        rep = first.report
        assert {r["text"] for r in records} == {f"item [{t}] {t}"[-12:] for t in
                                               ("good", "flaky", "slow", "other")}
        # flaky: 429 then 500 then ok; slow: a timeout then ok; broken: one call, no retry
        assert server.hits["item [flaky] flaky"] == 3 and server.hits["item [slow] slow"] == 2
        assert server.hits["item [broken] broken"] == 1
        assert calls_first == 3 + 2 + 1 + 1 + 1 + 1
        assert rep.retries == 3 and rep.http_calls == calls_first
        assert 3.0 in sleeps  # Retry-After honoured
        assert 0.02 in sleeps  # exponential backoff (0.01 * 2**1) after the 500
        assert rep.succeeded == 4 and rep.failed == 2
        assert rep.failures == {"malformed response": 1, "unusable completion": 1}
        assert rep.prompt_tokens == 50 and rep.completion_tokens == 25
        assert rep.cost == pytest.approx(75 / 1000 * 2.0)
        assert server.auth == {f"Bearer {SECRET}"}

        second = client()
        again = run_items(second, _items(tags))
        # the cache answers every item that got a valid response; only broken is re-asked
        assert server.total() - calls_first == 1
        assert second.report.cache_hits == 5 and second.report.http_calls == 1
        assert sorted(r["text"] for r in again) == sorted(r["text"] for r in records)

    lines = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    ok = [x for x in lines if x.get("outcome") == "ok"]
    assert len(ok) == 5 and all(x["prompt_tokens"] == 10 and x["completion_tokens"] == 5
                                for x in ok)
    assert {x["outcome"] for x in lines} >= {"ok", "retry", "failed", "cached", "unusable"}
    assert any("[REDACTED]" in x.get("detail", "") for x in lines)  # the echoed key
    _no_secret_under(tmp_path)


def test_llm_connection_refused_is_retried_then_counted(tmp_path, api_key):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sleeps: list[float] = []
    client = ExpanderChat(LLMConfig(base_url=f"http://127.0.0.1:{port}/v1", model="m",
                                  api_key_env=KEY_ENV, rps=1000, max_retries=2, backoff_base=0.5,
                                  backoff_max=0.75, log_path=tmp_path / "log.jsonl",
                                  transport="urllib"), sleep=sleeps.append)
    assert run_items(client, _items(["good", "other"])) == []
    assert client.report.failures == {"retries exhausted (connection error)": 2}
    backoffs = [s for s in sleeps if s >= 0.01]  # the rest are the rate limiter's
    assert client.report.http_calls == 6 and backoffs == [0.5, 0.75, 0.5, 0.75]
    _no_secret_under(tmp_path)


def test_rate_limiter_spaces_requests():
    now = [100.0]
    slept: list[float] = []

    def sleep(s):
        slept.append(s)
        now[0] += s

    limiter = RateLimiter(2.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(4):
        limiter.wait()
    assert slept == [0.5, 0.5, 0.5]


def test_pipeline_with_llm_expansion_and_cli(tmp_path, api_key, capsys):
    def content(prompt):
        # Distinct per prompt and the same in every process (str hash() is salted per run,
        # and two prompts colliding mod 997 made one utterance a duplicate: a flaky 9 != 10).
        tag = hashlib.sha256(prompt.encode()).hexdigest()[:12]
        return json.dumps({"utterances": [f"LLM utterance one {tag}",
                                          f"LLM utterance two {tag} {len(prompt)}"]})

    with ScriptedServer(content) as server:
        argv = ["data", "synth", "ecommerce", "--out", str(tmp_path / "out"), "--contexts", "2",
                "--per-scenario", "2", "--llm-base-url", server.url, "--llm-model", "m",
                "--llm-api-key-env", KEY_ENV, "--llm-rps", "500", "--llm-max-items", "5"]
        assert main(argv) == 0
        calls = server.total()
        assert calls == 5
        first = {n: (tmp_path / "out" / f"{n}.jsonl").read_bytes()
                 for n in ("train", "validation", "test")}
        assert main(argv) == 0
        assert server.total() == calls  # a re-run is answered from the cache
    out = capsys.readouterr().out
    assert "synth ecommerce: 112 scenarios" in out and "llm: 5/5 items ok" in out
    report = json.loads((tmp_path / "out" / "synth_report.json").read_text())
    assert report["generated"]["llm"] == 10 and report["failed_llm_items"] == 0
    assert report["llm"]["cache_hits"] == 5 and report["llm"]["model"] == "m"
    assert first == {n: (tmp_path / "out" / f"{n}.jsonl").read_bytes() for n in first}
    rows = {n: [json.loads(x) for x in first[n].decode().splitlines()] for n in first}
    llm_rows = [r for n in rows for r in rows[n] if r["origin"] == "llm"]
    assert len(llm_rows) == 10
    where = {r["scenario"]: n for n in rows for r in rows[n] if r["origin"] == "template"}
    assert all(where[r["scenario"]] == n for n in rows for r in rows[n])  # no leak
    _no_secret_under(tmp_path)


def test_cli_bad_glossary_exits_2_with_one_line(tmp_path, capsys):
    data = _tiny_glossary()
    data["terms"].append({**data["terms"][1], "term": "apn"})
    path = _write_yaml(tmp_path / "dup.yaml", data)
    assert main(["data", "synth", "telecom", "--out", str(tmp_path / "o"),
                 "--glossary", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "duplicate term" in err and "'apn'" in err
    assert not (tmp_path / "o").exists()


def test_shipped_resources_exist():
    assert DEFAULT_GLOSSARY.is_file() and DEFAULT_INTENTS.is_file()


def test_telecom_llm_prompt_and_parser(glossary):
    scenarios = build_scenarios(glossary)
    items = telecom_items(scenarios, n=2, seed=42, limit=4)
    assert len(items) == 4
    # a seeded sample of scenarios that does not depend on their order
    reordered = telecom_items(list(reversed(scenarios)), 2, 42, 4)
    assert {i.key for i in reordered} == {i.key for i in items}
    item = items[0]
    sc = next(s for s in scenarios if s.id == item.key)
    prompt = item.messages[-1]["content"]
    assert sc.term.term in prompt and sc.cause.fix in prompt
    text = '```json\n{"examples": [{"question": "Q one?", "answer": "A one."}, ' \
           '{"question": "Q two?", "answer": "A two."}]}\n```'
    rows = item.parse(text)
    assert [r["question"] for r in rows] == ["Q one?", "Q two?"]
    assert all(r["scenario"] == sc.id and r["origin"] == "llm" and r["kind"] == "qa"
               for r in rows)
    for bad in ("not json", '{"examples": []}', '{"examples": [{"question": "", "answer": "x"}]}'):
        with pytest.raises(ValueError):
            item.parse(bad)
    intent_set = load_intent_set()
    shop = intent_items(intent_set, build_intent_scenarios(intent_set, 42, 1), n=3, limit=2)
    rows = shop[0].parse('{"utterances": ["uno", "dos"]}')
    assert {r["answer"] for r in rows} <= set(intent_set.intents) and len(rows) == 2
    assert rows[0]["labels"] == intent_set.labels
