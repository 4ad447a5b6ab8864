"""Cassette loading: provcert's JSON format against vcrpy's default YAML loading, same interactions, same run.

    python bench/bench_cassette_load.py [--interactions 1000] [--repeat 7]

Both files hold the same N interactions (JSON requests; half streamed SSE responses of ~40 chunks, half JSON
completions). The baseline is what vcrpy does by default: ``FilesystemPersister.load_cassette`` with its YAML
serializer (libyaml's CSafeLoader when available). Reported: the median of each, and the ratio of medians (the
test asserts the ratio, never wall-clock time).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vcr.persisters.filesystem import FilesystemPersister
from vcr.request import Request
from vcr.serialize import serialize
from vcr.serializers import yamlserializer

from harness import cassettes as fmt
from harness.recording import AtomicPersister, ProvcertSerializer


def make_interactions(n: int, chunks_per_stream: int = 40) -> list[fmt.Interaction]:
    out = []
    for i in range(n):
        body = {
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": f"question {i}: " + "tell me about the sea " * 8}],
            "max_completion_tokens": 64,
            "stream": i % 2 == 0,
        }
        request = fmt.RecordedRequest(
            "POST",
            "https://api.openai.com/v1/chat/completions",
            {"content-type": ["application/json"], "authorization": ["Bearer [REDACTED]"]},
            json.dumps(body).encode(),
        )
        headers = {"x-request-id": [f"req_{i:032x}"], "openai-processing-ms": ["120"]}
        if i % 2 == 0:
            chunks = [
                b"data: "
                + json.dumps(
                    {
                        "id": f"chatcmpl-{i}",
                        "object": "chat.completion.chunk",
                        "created": 1,
                        "model": "gpt-4o-mini",
                        "choices": [{"index": 0, "delta": {"content": f"word {j} "}, "finish_reason": None}],
                    },
                    separators=(",", ":"),
                ).encode()
                + b"\n\n"
                for j in range(chunks_per_stream)
            ] + [b"data: [DONE]\n\n"]
            response = fmt.RecordedResponse(
                200,
                {**headers, "content-type": ["text/event-stream; charset=utf-8"]},
                b"".join(chunks),
                "OK",
                chunks,
                [j * 0.01 for j in range(len(chunks))],
            )
        else:
            completion = {
                "id": f"chatcmpl-{i}",
                "object": "chat.completion",
                "created": 1,
                "model": "gpt-4o-mini",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "the sea " * 60}}],
                "usage": {"prompt_tokens": 20, "completion_tokens": 120, "total_tokens": 140},
            }
            response = fmt.RecordedResponse(
                200,
                {**headers, "content-type": ["application/json"]},
                json.dumps(completion, indent=2).encode(),
                "OK",
            )
        out.append(fmt.Interaction(request, response))
    return out


def write_vcr_yaml(path: Path, interactions: list[fmt.Interaction]) -> None:
    requests = [
        Request(
            i.request.method, i.request.uri, i.request.body, {k: v[0] for k, v in i.request.headers.items()}
        )
        for i in interactions
    ]
    responses: list[dict[str, Any]] = [
        {
            "status": {"code": i.response.status, "message": i.response.reason},
            "headers": i.response.headers,
            "body": {"string": i.response.body},
        }
        for i in interactions
    ]
    path.write_text(serialize({"requests": requests, "responses": responses}, yamlserializer))


def interleaved_medians(fns: dict[str, Callable[[], Any]], repeat: int) -> dict[str, float]:
    """Median seconds of each function, timed in turns so that machine noise hits them alike."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def run(n: int = 1000, repeat: int = 7, chunks_per_stream: int = 40) -> dict[str, float]:
    interactions = make_interactions(n, chunks_per_stream)
    with tempfile.TemporaryDirectory() as tmp:
        ours, theirs = Path(tmp) / "c.cassette.json", Path(tmp) / "c.yaml"
        fmt.save(ours, interactions)
        write_vcr_yaml(theirs, interactions)
        loaded = fmt.load(ours)
        assert len(loaded.interactions) == n and loaded.interactions[0].response.chunks is not None
        yaml_requests, _ = FilesystemPersister.load_cassette(theirs, yamlserializer)
        assert len(yaml_requests) == n
        persister = AtomicPersister()
        medians = interleaved_medians(
            {
                "yaml": lambda: FilesystemPersister.load_cassette(theirs, yamlserializer),
                "provcert": lambda: fmt.load(ours),
                "via_vcr": lambda: persister.load_cassette(ours, ProvcertSerializer()),
            },
            repeat,
        )
        vcr_yaml, provcert, via_vcr = medians["yaml"], medians["provcert"], medians["via_vcr"]
        return {
            "interactions": n,
            "vcrpy_yaml_median_s": vcr_yaml,
            "provcert_median_s": provcert,
            "provcert_via_vcrpy_persister_median_s": via_vcr,
            "ratio": vcr_yaml / provcert,
            "ratio_via_vcrpy_persister": vcr_yaml / via_vcr,
            "yaml_bytes": theirs.stat().st_size,
            "provcert_bytes": ours.stat().st_size,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--interactions", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--chunks-per-stream", type=int, default=40)
    args = parser.parse_args()
    print(json.dumps(run(args.interactions, args.repeat, args.chunks_per_stream), indent=2))


if __name__ == "__main__":
    main()
