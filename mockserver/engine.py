"""The provider-neutral scenario engine: timing and faults for every personality, and the sent-bytes journal.

A request goes: journal entry opened → body screened (:mod:`mockserver.hostile`: JSON nested too deep or a
lone surrogate is the mock's own 400) → ``x-mock-scenario`` header parsed (a bad one is the mock's own 400) →
personality auth → personality body validation → scenario selected (header, session queue, ``ok``) → hang,
reset or ``headers_delay`` → error response, or the answer plan (:mod:`mockserver.plan`), whole or streamed.

Streams are sent frame by frame from the personality's renderers, on a schedule that interleaves keep-alives
and empty deltas with the content chunks. Fault points (``abort_after``, ``error_after``, ``malformed_after``,
``stall_after``) fire when that many content chunks have been sent (or after the last one if the number is
larger). An abort closes the TCP connection without the chunked-encoding terminator, so clients see an
incomplete body (httpx: ``RemoteProtocolError``) rather than a clean end. Hangs and stalls poll the transport,
because aiohttp does not cancel handlers when the client leaves; both are capped so a forgotten client cannot
pin the server.

Every journal field is updated before the bytes it describes are written, so a client that has seen something
can always find it in the journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from aiohttp import web

from mockserver.framing import dumps
from mockserver.hostile import BodyError, check_json_body, read_body
from mockserver.journal import JournalEntry
from mockserver.personalities.base import (
    Frame,
    Personality,
    Rejected,
    Rendered,
    RequestContext,
    StreamState,
    ToolFragment,
)
from mockserver.plan import ChatRequest, Plan, make_plan
from mockserver.scenarios import DEFAULT_STATUS, MAX_WAIT_SECONDS, Scenario, ScenarioError
from mockserver.sessions import header_scenario, select, session_of
from mockserver.state import STATE_KEY, MockState

#: Longest a hang or a stall keeps a connection open when the client never gives up (seconds).
WAIT_CAP = MAX_WAIT_SECONDS
#: How often hangs and stalls look at the transport to notice the client has gone (seconds).
POLL_INTERVAL = 0.02

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Fault = Literal["abort", "error", "malformed", "stall"]
Item = tuple[Literal["content", "empty", "keepalive"], int]


def read_asked(personality: Personality, ctx: RequestContext, chat: ChatRequest) -> dict[str, Any] | None:
    """The personality's reading of what was asked, for the journal. A reader that trips over an odd body must not
    turn a valid request into a 500: the journal then says what went wrong instead."""
    try:
        asked = personality.asked(ctx, chat)
    except Exception as exc:  # any reader bug is reported in the journal, never to the client
        return {"unreadable": f"{type(exc).__name__}: {exc}"[:200]}
    return asked.to_dict() if asked is not None else None


def mock_error(status: int, message: str, kind: str = "mock_scenario_error") -> Rendered:
    """The mock's own error (not a provider's): bad scenario header, unknown route."""
    body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return Rendered(status, {"Content-Type": "application/json"}, dumps(body).encode())


def client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def wait_for_disconnect(request: web.Request, cap: float = WAIT_CAP) -> bool:
    """Sleep until the client closes the connection (True) or ``cap`` seconds pass (False)."""
    deadline = time.monotonic() + cap
    while not client_gone(request):
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(POLL_INTERVAL)
    return True


async def pause(request: web.Request, seconds: float) -> bool:
    """Sleep ``seconds`` unless the client leaves first; returns False if it left."""
    if seconds <= 0:
        return not client_gone(request)
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if client_gone(request):
            return False
        await asyncio.sleep(min(left, POLL_INTERVAL * 5))
    return not client_gone(request)


def reset_connection(request: web.Request) -> None:
    """Reset the TCP connection (RST via SO_LINGER 0), as a crashed or overloaded front end does."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def with_content_type(headers: dict[str, str], scenario: Scenario) -> dict[str, str]:
    """Apply the scenario's Content-Type override (the body is unchanged: only the label lies)."""
    if scenario.content_type is None:
        return headers
    out = {k: v for k, v in headers.items() if k.lower() != "content-type"}
    out["Content-Type"] = scenario.content_type
    return out


def retyped(rendered: Rendered, scenario: Scenario) -> Rendered:
    if scenario.content_type is None:
        return rendered
    return dataclasses.replace(rendered, headers=with_content_type(rendered.headers, scenario))


def drop_connection(request: web.Request) -> None:
    """Close the TCP connection after flushing what was written, without any HTTP-level end of body."""
    transport = request.transport
    if transport is not None:
        transport.close()


def build_schedule(content: int, empties: int, keepalives: int) -> list[Item]:
    """Interleave content chunks with empty deltas (after the first one) and keep-alives (the first up front).

    Slot ``s`` holds what is sent just before content chunk ``s``; slot ``content`` is after the last chunk.
    """
    slots: list[list[Item]] = [[] for _ in range(content + 1)]
    for k in range(keepalives):
        slots[min(content, (k * (content + 1)) // keepalives)].append(("keepalive", k))
    for j in range(empties):
        slots[min(content, 1 + (j * max(content - 1, 1)) // empties)].append(("empty", j))
    out: list[Item] = []
    for s, slot in enumerate(slots):
        out.extend(slot)
        if s < content:
            out.append(("content", s))
    return out


def first_fault(scenario: Scenario, content: int) -> tuple[int, Fault] | None:
    """The earliest stream fault and the chunk count at which it fires (capped at ``content``)."""
    points: list[tuple[int, Fault]] = []
    candidates: list[tuple[int | None, Fault]] = [
        (scenario.stall_after, "stall"),
        (scenario.abort_after, "abort"),
        (scenario.error_after, "error"),
        (scenario.malformed_after, "malformed"),
    ]
    for value, fault in candidates:
        if value is not None:
            points.append((min(value, content), fault))
    return min(points, key=lambda p: p[0]) if points else None


class FrameSender:
    """Writes frames to a prepared stream response, journaling each one just before its bytes go out."""

    def __init__(self, response: web.StreamResponse, entry: JournalEntry) -> None:
        self.response = response
        self.entry = entry

    @property
    def state(self) -> StreamState:
        return StreamState(self.entry.chunks_sent, self.entry.text_sent)

    async def send(self, frame: Frame | None) -> None:
        if frame is None:
            return
        entry = self.entry
        entry.record_wire(frame.data)
        entry.frames_sent += 1
        if frame.kind in ("content", "tool"):
            entry.chunks_sent += 1
        entry.text_sent += frame.text
        if frame.tool is not None:
            self._add_tool(frame.tool)
        if frame.usage is not None:
            entry.usage_sent = frame.usage
        if frame.finish_reason is not None:
            entry.finish_reason_sent = frame.finish_reason
        if frame.kind == "terminator":
            entry.terminated = True
        await self.response.write(frame.data)

    async def send_all(self, frames: list[Frame]) -> None:
        for frame in frames:
            await self.send(frame)

    def _add_tool(self, fragment: ToolFragment) -> None:
        calls = self.entry.tool_calls_sent
        while len(calls) <= fragment.index:
            calls.append({"index": len(calls), "id": None, "name": None, "arguments": ""})
        call = calls[fragment.index]
        if fragment.id is not None:
            call["id"] = fragment.id
        if fragment.name is not None:
            call["name"] = fragment.name
        call["arguments"] += fragment.arguments


class Engine:
    """Runs one personality's requests against the shared state; :meth:`handler` gives the aiohttp handler."""

    def __init__(self, personality: Personality) -> None:
        self.personality = personality

    def handler(self) -> Handler:
        return self.handle

    async def handle(self, request: web.Request) -> web.StreamResponse:
        state = request.app[STATE_KEY]
        p = self.personality
        entry = state.journal.open(
            session=session_of(request.headers),
            provider=p.name,
            method=request.method,
            path=request.path,
            query=request.query.items(),
            headers=request.headers.items(),
        )
        ctx = RequestContext(request=request, request_id=p.new_request_id(), response_id=p.new_response_id())
        entry.planned_request_id = ctx.request_id
        try:
            return await self._handle(request, state, entry, ctx)
        except ConnectionError:
            # The client left while we were writing: nothing more can be sent, and nobody to answer.
            entry.client_disconnected = True
            return web.Response(status=499)
        finally:
            entry.finish()

    async def _handle(
        self, request: web.Request, state: MockState, entry: JournalEntry, ctx: RequestContext
    ) -> web.StreamResponse:
        p = self.personality
        try:
            raw = await read_body(request)
        except BodyError as exc:
            refused = await send_rendered(request, entry, mock_error(400, str(exc), "mock_request_error"))
            refused.force_close()  # the rest of the body is unread: the connection cannot carry another request
            return refused
        entry.record_request(raw)
        try:
            check_json_body(raw)
        except BodyError as exc:
            return await send_rendered(request, entry, mock_error(400, str(exc), "mock_request_error"))
        try:
            header = header_scenario(request.headers)
        except ScenarioError as exc:
            return await send_rendered(request, entry, mock_error(400, str(exc)))
        denied = p.authenticate(ctx)
        if denied is not None:
            return await send_rendered(request, entry, denied)
        try:
            chat = p.parse_chat(ctx, raw)
        except Rejected as rejected:
            return await send_rendered(request, entry, rejected.rendered)
        ctx.chat = chat
        entry.stream = chat.stream
        entry.asked = read_asked(p, ctx, chat)
        selection = select(header, state.sessions, entry.session)
        scenario = selection.scenario
        ctx.scenario = scenario
        entry.scenario = selection.as_dict()
        problem = p.scenario_problem(scenario)
        if problem is not None:
            return await send_rendered(request, entry, mock_error(400, problem))

        if scenario.hang:
            return await self._hang(request, entry)
        if scenario.reset:
            entry.aborted = True
            reset_connection(request)
            return web.Response(status=499)
        if not await pause(request, scenario.headers_delay):
            return _gone(entry)
        if scenario.error is not None:
            status = scenario.status_for_error() or 500
            entry.error_kind = scenario.error
            rendered = p.render_error(scenario.error, status, scenario, ctx)
            return await send_rendered(request, entry, retyped(rendered, scenario))

        plan = make_plan(chat, scenario, state.seed, p.new_tool_call_id)
        entry.usage_truth = plan.usage.as_dict()
        if chat.stream:
            return await self._stream(request, entry, ctx, scenario, plan)
        return await self._complete(request, entry, ctx, scenario, plan)

    async def _hang(self, request: web.Request, entry: JournalEntry) -> web.StreamResponse:
        """Never send headers. Return once the client has gone (or at the cap, dropping the connection)."""
        if await wait_for_disconnect(request):
            return _gone(entry)
        drop_connection(request)
        return web.Response(status=499)

    async def _complete(
        self, request: web.Request, entry: JournalEntry, ctx: RequestContext, scenario: Scenario, plan: Plan
    ) -> web.StreamResponse:
        """A non-streamed answer. Generation time is simulated as ttft + chunk_delay between chunks.

        Stream faults map onto a whole body: ``error_after`` answers with that error; ``abort_after`` drops
        the connection halfway through the body; ``stall_after`` sends headers and then nothing;
        ``malformed_after`` and ``malformed_body`` send a truncated (invalid) JSON body.
        """
        p = self.personality
        generation = scenario.ttft + scenario.chunk_delay * max(plan.content_chunks - 1, 0)
        if not await pause(request, generation):
            return _gone(entry)
        if scenario.error_after is not None:
            kind = scenario.error_after_kind
            entry.error_kind = kind
            rendered = p.render_error(kind, DEFAULT_STATUS[kind], scenario, ctx)
            return await send_rendered(request, entry, retyped(rendered, scenario))
        rendered = retyped(p.render_completion(ctx, plan), scenario)
        malformed = scenario.malformed_after is not None or scenario.malformed_body
        if scenario.abort_after is None and scenario.stall_after is None and not malformed:
            return await send_rendered(request, entry, rendered)
        body = rendered.body
        cut = body[: len(body) // 2]
        response = web.StreamResponse(status=rendered.status, headers=rendered.headers)
        response.content_length = len(body) if scenario.abort_after is not None else len(cut)
        entry.headers_sent(rendered.status, rendered.headers)
        await response.prepare(request)
        if scenario.stall_after is not None and not malformed:
            entry.stalled = True
            await self._stall(request, entry)
            return response
        entry.record_wire(cut)
        if scenario.abort_after is not None:
            entry.aborted = True
            entry.aborted_after_chunks = 0
            await response.write(cut)
            drop_connection(request)
            return response
        entry.malformed = True
        await response.write(cut)
        await response.write_eof()
        return response

    async def _stream(
        self, request: web.Request, entry: JournalEntry, ctx: RequestContext, scenario: Scenario, plan: Plan
    ) -> web.StreamResponse:
        p = self.personality
        headers = with_content_type({**p.base_headers(ctx, 200, scenario), **p.stream_headers(ctx)}, scenario)
        response = web.StreamResponse(status=200, headers=headers)
        entry.headers_sent(200, headers)
        await response.prepare(request)
        sender = FrameSender(response, entry)
        if not await pause(request, scenario.ttft):
            return _gone(entry)
        if scenario.malformed_body:
            return await self._fault(request, response, sender, ctx, scenario, plan, "malformed")
        await sender.send_all(p.stream_open(ctx, plan))
        total = plan.content_chunks
        tools = plan.tool_schedule(p.interleaves_tool_calls)
        fault = first_fault(scenario, total)
        for kind, index in build_schedule(total, scenario.empty_chunks, scenario.keepalives):
            if kind == "keepalive":
                await sender.send(p.stream_keepalive(ctx))
            elif kind == "empty":
                await sender.send(p.stream_empty(ctx, plan))
            else:
                if fault is not None and fault[0] == index:
                    return await self._fault(request, response, sender, ctx, scenario, plan, fault[1])
                if index > 0 and not await pause(request, scenario.chunk_delay):
                    return _gone(entry)
                await sender.send(self._content_frame(ctx, plan, tools, index, sender.state))
        if fault is not None:
            return await self._fault(request, response, sender, ctx, scenario, plan, fault[1])
        for frame in p.stream_finish(ctx, plan, sender.state):
            if frame.kind == "terminator" and scenario.omit_terminator:
                continue
            await sender.send(frame)
        await response.write_eof()
        return response

    def _content_frame(
        self, ctx: RequestContext, plan: Plan, tools: list[tuple[int, int]], index: int, state: StreamState
    ) -> Frame:
        """Content chunk ``index``: a piece of text, or the tool fragment the schedule puts there (a call's
        header with its id and name, or a piece of its arguments), keyed by the call's index."""
        p = self.personality
        if not plan.tool_calls:
            return p.stream_content(ctx, plan, plan.pieces[index], state)
        number, k = tools[index]
        call = plan.tool_calls[number]
        if k == 0:
            fragment = ToolFragment(index=number, arguments="", id=call.id, name=call.name)
        else:
            fragment = ToolFragment(index=number, arguments=call.fragments[k - 1])
        return p.stream_tool(ctx, plan, fragment, state)

    async def _fault(
        self,
        request: web.Request,
        response: web.StreamResponse,
        sender: FrameSender,
        ctx: RequestContext,
        scenario: Scenario,
        plan: Plan,
        fault: Fault,
    ) -> web.StreamResponse:
        entry = sender.entry
        p = self.personality
        if fault == "abort":
            entry.aborted = True
            entry.aborted_after_chunks = entry.chunks_sent
            drop_connection(request)
            return response
        if fault == "stall":
            entry.stalled = True
            await self._stall(request, entry)
            return response
        if fault == "error":
            entry.inband_error = scenario.error_after_kind
            await sender.send_all(p.stream_error(ctx, plan, scenario.error_after_kind, sender.state))
        else:
            entry.malformed = True
            await sender.send(p.stream_malformed(ctx, plan))
        await response.write_eof()
        return response

    async def _stall(self, request: web.Request, entry: JournalEntry) -> None:
        """Go silent with the connection open until the client leaves (or the cap, then drop it)."""
        if await wait_for_disconnect(request):
            entry.client_disconnected = True
        else:
            drop_connection(request)


async def send_rendered(request: web.Request, entry: JournalEntry, rendered: Rendered) -> web.StreamResponse:
    """Send a whole response, journaling it first."""
    entry.headers_sent(rendered.status, rendered.headers)
    entry.record_wire(rendered.body)
    entry.text_sent = rendered.text
    entry.tool_calls_sent = [dict(t) for t in rendered.tool_calls]
    entry.usage_sent = rendered.usage
    entry.finish_reason_sent = rendered.finish_reason
    if rendered.error_kind is not None:
        entry.error_kind = rendered.error_kind
    entry.retry_hint = rendered.retry_hint
    entry.frames_sent = 1 if rendered.body else 0
    if rendered.status < 400 and rendered.finish_reason is not None:
        entry.chunks_sent = 1 if rendered.text or rendered.tool_calls else 0
        entry.terminated = True
    return web.Response(status=rendered.status, headers=rendered.headers, body=rendered.body)


def _gone(entry: JournalEntry) -> web.StreamResponse:
    """What a handler returns when the client has left: nothing more will reach it."""
    entry.client_disconnected = True
    return web.Response(status=499)
