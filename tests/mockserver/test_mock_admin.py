"""The admin API under /_mock/: health, presets, session queues, journal; errors name their problem."""

from __future__ import annotations

import httpx
from mock_helpers import HTTP, chat_body, headers

from mockserver.scenarios import PRESETS
from mockserver.testing import MockServer


def test_health(server: MockServer) -> None:
    r = HTTP.get(f"{server.url}/_mock/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"
    assert r.json()["providers"]["openai"] == "/openai"


def test_scenarios_lists_every_preset_with_its_spec(server: MockServer) -> None:
    presets = HTTP.get(f"{server.url}/_mock/scenarios").json()["presets"]
    assert set(presets) == set(PRESETS)
    assert presets["rate_limit"]["error"] == "rate_limit"
    assert presets["abort_mid_stream"]["abort_after"] == 3


def test_queue_show_and_clear(server: MockServer, sid: str) -> None:
    url = f"{server.url}/_mock/sessions/{sid}"
    r = HTTP.post(f"{url}/scenarios", json={"scenarios": [{"preset": "rate_limit", "times": 2}, "ok"]})
    assert r.status_code == 200
    assert r.json() == {"session": sid, "added": 2, "queued": 2, "answers": 3, "evicted_sessions": 0}
    queue = HTTP.get(url).json()["queue"]
    assert [(q["scenario"]["name"], q["remaining"]) for q in queue] == [("rate_limit", 2), ("ok", 1)]
    r = HTTP.post(f"{url}/scenarios", json=["timeout"])
    assert "queue" not in r.json(), "the enqueue reply must not echo the queue"
    assert (r.json()["added"], r.json()["queued"], r.json()["answers"]) == (1, 3, 4)
    assert [q["scenario"]["name"] for q in HTTP.get(url).json()["queue"]] == ["rate_limit", "ok", "timeout"]
    assert HTTP.delete(url).json()["cleared"] is True
    assert HTTP.get(url).json()["queue"] == []


def test_queue_errors_name_the_problem(server: MockServer, sid: str) -> None:
    url = f"{server.url}/_mock/sessions/{sid}/scenarios"
    r = HTTP.post(url, content=b"{nope")
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]
    r = HTTP.post(url, json=["ok", "no_such_thing"])
    assert r.status_code == 400
    assert "scenarios[1]" in r.json()["error"]["message"] and "no_such_thing" in r.json()["error"]["message"]
    r = HTTP.post(url, json=[{"chunks": 0}])
    assert r.status_code == 400 and "chunks" in r.json()["error"]["message"]
    r = HTTP.post(url, json=[])
    assert r.status_code == 400 and "non-empty" in r.json()["error"]["message"]
    assert HTTP.get(f"{server.url}/_mock/sessions/{sid}").json()["queue"] == []


def test_queue_is_consumed_in_order_with_times(server: MockServer, sid: str, chat_url: str) -> None:
    server.queue(sid, {"preset": "server_error", "times": 2}, "not_found")
    statuses = [HTTP.post(chat_url, json=chat_body(), headers=headers(sid)).status_code for _ in range(4)]
    assert statuses == [500, 500, 404, 200]
    sources = [e["scenario"]["source"] for e in server.journal(sid)]
    assert sources == ["queue", "queue", "queue", "default"]


def test_header_wins_over_queue_and_sessions_are_isolated(
    server: MockServer, sid: str, chat_url: str
) -> None:
    other = server.new_session()
    server.queue(sid, "server_error")
    assert HTTP.post(chat_url, json=chat_body(), headers=headers(other)).status_code == 200
    assert HTTP.post(chat_url, json=chat_body(), headers=headers(sid, "not_found")).status_code == 404
    assert HTTP.post(chat_url, json=chat_body(), headers=headers(sid)).status_code == 500
    assert [e["status"] for e in server.journal(sid)] == [404, 500]
    assert [e["status"] for e in server.journal(other)] == [200]


def test_bad_scenario_header_is_a_400_naming_it(server: MockServer, sid: str, chat_url: str) -> None:
    r = HTTP.post(chat_url, json=chat_body(), headers=headers(sid, "{broken"))
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["type"] == "mock_scenario_error"
    assert "x-mock-scenario" in err["message"] and "not valid JSON" in err["message"]
    r = HTTP.post(chat_url, json=chat_body(), headers=headers(sid, "rate_limitt"))
    assert r.status_code == 400 and "rate_limitt" in r.json()["error"]["message"]


def test_journal_filter_since_and_clear(server: MockServer, sid: str, chat_url: str) -> None:
    for _ in range(3):
        HTTP.post(chat_url, json=chat_body(), headers=headers(sid))
    entries = server.journal(sid)
    assert len(entries) == 3
    seqs = [e["seq"] for e in entries]
    assert seqs == sorted(seqs)
    later = HTTP.get(f"{server.url}/_mock/journal", params={"session": sid, "since": seqs[0]}).json()[
        "entries"
    ]
    assert [e["seq"] for e in later] == seqs[1:]
    r = HTTP.delete(f"{server.url}/_mock/journal", params={"session": sid})
    assert r.json()["entries_dropped"] == 3
    assert server.journal(sid) == []
    r = HTTP.get(f"{server.url}/_mock/journal", params={"wait": "soon"})
    assert r.status_code == 400 and "wait" in r.json()["error"]["message"]


def test_delete_session_clears_its_journal_only(server: MockServer, sid: str, chat_url: str) -> None:
    other = server.new_session()
    HTTP.post(chat_url, json=chat_body(), headers=headers(sid))
    HTTP.post(chat_url, json=chat_body(), headers=headers(other))
    server.clear(sid)
    assert server.journal(sid) == []
    assert len(server.journal(other)) == 1


def test_unknown_route_is_json_404_naming_path_and_prefixes(server: MockServer, sid: str) -> None:
    r = HTTP.post(f"{server.url}/openai/v1/completions", json={}, headers={"x-mock-session": sid})
    assert r.status_code == 404
    body = r.json()
    assert body["path"] == "/openai/v1/completions"
    assert "/openai/v1/completions" in body["error"]["message"] and "/openai" in body["error"]["message"]
    from mockserver.personalities import discover

    assert body["providers"] == {name: cls.prefix for name, cls in discover().items()}
    assert body["providers"]["openai"] == "/openai"
    r = HTTP.get(f"{server.openai_base_url}/chat/completions", headers={"x-mock-session": sid})
    assert r.status_code == 405 and "not allowed" in r.json()["error"]["message"]
    assert [e["status"] for e in server.journal(sid)] == [404, 405]


def test_mockserver_helper_start_is_fast_and_isolated() -> None:
    import time

    t0 = time.monotonic()
    with MockServer(seed=7) as srv:
        started = time.monotonic() - t0
        assert HTTP.get(f"{srv.url}/_mock/health").status_code == 200
        assert srv.journal() == []
    assert started < 0.2
    assert srv.new_session() != srv.new_session()


def test_stop_is_prompt_while_a_request_hangs() -> None:
    import threading
    import time

    srv = MockServer().start()
    errors: list[BaseException] = []

    def hang() -> None:
        try:
            httpx.post(f"{srv.openai_base_url}/chat/completions", json=chat_body(),
                       headers=headers("h", "timeout"), timeout=10)  # fmt: skip
        except httpx.HTTPError as exc:
            errors.append(exc)

    t = threading.Thread(target=hang)
    t.start()
    time.sleep(0.1)
    t0 = time.monotonic()
    srv.stop()
    assert time.monotonic() - t0 < 1.0
    t.join(5)
    assert errors, "the hanging client should see its connection closed"
