"""The provcert pytest plugin: options, provider parametrization, fixtures, Allure labels and the certificate.

Loaded wherever provcert is installed (pytest11 entry point). Its fixtures are inert unless a test asks for them, so
the project's own tests and the certification suite share one plugin.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import allure
import httpx
import pytest
import pytest_asyncio

from adapters.base import Adapter, Timeouts, shared_ssl_context
from adapters.errors import register_secret, scrub
from adapters.registry import ProviderEntry, Registry, RegistryError, load_adapter_class, load_registry
from harness.allure_report import AllureUnavailable, find_allure_cli
from harness.checks import CHECKS, NO_EVIDENCE, begin_evidence, recorded_evidence, take_evidence
from harness.golden_plugin import LEDGER_KEY
from harness.reporting import ResultCollector
from mockserver.client import MockClient, MockSession

#: golden cassettes and live recording: options, fixtures, the spend summary
pytest_plugins = ["harness.golden_plugin"]

COLLECTOR_KEY = pytest.StashKey[ResultCollector]()
REGISTRY_KEY = pytest.StashKey[Registry]()
PROVIDERS_KEY = pytest.StashKey[list[str]]()
STAGING_KEY = pytest.StashKey[Path | None]()
ALLURE_CLI_KEY = pytest.StashKey[list[str] | None]()
OUTPUTS_KEY = pytest.StashKey[dict[str, Any]]()
#: user_properties key that carries (provider, check id) on a report, so results reach the controller under xdist
DOD_PROPERTY = "provcert_dod"
#: user_properties key that carries the evidence lines a passing check recorded (harness.checks.evidence)
EVIDENCE_PROPERTY = "provcert_evidence"


# ---------------------------------------------------------------- options and configuration
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("provcert", "provcert certification")
    group.addoption(
        "--provider",
        default=None,
        help="provider id to certify, a comma-separated list, or 'all' (default: all registered providers)",
    )
    group.addoption(
        "--mock-url", default=None, help="use a running mock server (python -m mockserver) at this URL"
    )
    group.addoption(
        "--registry",
        action="append",
        default=[],
        help="extra registry YAML file(s) merged over the built-in one",
    )
    group.addoption(
        "--reports-dir", default="reports", help="where certificates and Allure results are written"
    )
    group.addoption(
        "--allure-html",
        action="store_true",
        default=False,
        help="also render each provider's Allure results as one self-contained HTML file "
        "(<reports-dir>/<provider>/allure-report/index.html) with the Allure CLI pinned in tools/allure",
    )
    group.addoption(
        "--allure-cli",
        default=None,
        help="the Allure 2 command line to use for --allure-html (default: tools/allure, then PROVCERT_ALLURE_CLI, "
        "then allure 2.x on PATH)",
    )


def _is_certification_run(config: pytest.Config) -> bool:
    if config.getoption("provider") is not None:
        return True
    return any("certify" in Path(str(arg).split("::")[0]).parts for arg in config.args)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "dod(check_id): the DoD certification check this test implements")
    try:
        registry = load_registry()
        for extra in config.getoption("registry"):
            registry = registry.merge(load_registry(Path(extra)))
    except RegistryError as exc:
        raise setup_error(f"invalid provider registry: {_one_line_registry_error(exc)}") from None
    certifying = _is_certification_run(config)
    providers = _selected_providers(config.getoption("provider"), registry)
    if certifying and not _is_xdist_worker(config):
        # before any check runs: what would otherwise fail every check of a provider, or crash the run
        _check_adapters_import(registry, providers)
        _check_mock_url(config.getoption("mock_url"))
    config.stash[REGISTRY_KEY] = registry
    config.stash[PROVIDERS_KEY] = providers
    config.stash[COLLECTOR_KEY] = ResultCollector()
    config.stash[STAGING_KEY] = None
    config.stash[ALLURE_CLI_KEY] = None
    config.stash[OUTPUTS_KEY] = {}
    config.pluginmanager.register(CertificationRun(config), "provcert-certification-run")
    if config.getoption("allure_html") and certifying and not _is_xdist_worker(config):
        if getattr(config.option, "allure_report_dir", None):
            raise setup_error("--allure-html renders provcert's own per-provider results: drop --alluredir")
        try:
            config.stash[ALLURE_CLI_KEY] = find_allure_cli(
                [config.rootpath, Path(__file__).resolve().parents[1]], config.getoption("allure_cli")
            )
        except AllureUnavailable as exc:
            raise setup_error(f"--allure-html: {exc}") from None
    if certifying and not getattr(config.option, "allure_report_dir", None):
        staging = Path(config.getoption("reports_dir")) / ".allure-staging"
        config.option.allure_report_dir = str(staging)
        # under xdist the controller cleans the staging directory once; a worker cleaning it would race the others
        config.option.clean_alluredir = not _is_xdist_worker(config)
        config.stash[STAGING_KEY] = staging


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def setup_error(message: str) -> pytest.UsageError:
    """A setup error: pytest exits 4 before any check runs, printing this one line (no traceback).

    Raised from ``pytest_configure``, so ``pytest_sessionfinish`` never runs: no certificate is written and an
    existing one is left as it was. A broken setup is the certifier's problem, not a failure of the adapter, and
    must not be published as one.
    """
    return pytest.UsageError("provcert: " + " ".join(scrub(message).split()))


def _one_line_registry_error(exc: RegistryError) -> str:
    problems = "; ".join(f"{path}: {reason}" if path else reason for path, reason in exc.problems)
    return f"{exc.source}: {problems}" if problems else str(exc)


def _check_adapters_import(registry: Registry, providers: list[str]) -> None:
    """Import every selected provider's adapter now, naming the real cause (``No module named ...``) if one fails."""
    for provider in providers:
        entry = registry.get(provider)
        try:
            load_adapter_class(entry)
        except RegistryError as exc:
            cause = exc.__cause__
            if isinstance(cause, ImportError):
                reason = str(cause)  # "No module named 'acme_provcert'": the real cause, as Python words it
            elif cause is not None:
                reason = f"{type(cause).__name__}: {cause}"
            else:  # imported, but not a module:Class naming an Adapter subclass
                reason = "; ".join(r for _, r in exc.problems)
            raise setup_error(
                f"cannot import adapter for provider {provider!r} ({entry.adapter_path}): {reason}"
            ) from None


def _check_mock_url(url: str | None) -> None:
    """``--mock-url`` must answer as a provcert mock server before any check relies on it."""
    if not url:
        return
    client = MockClient(url)
    try:
        client.health()
    except Exception as exc:  # any failure to reach it is the same setup error; the cause is named
        raise setup_error(f"--mock-url {url} is not a provcert mock server: {exc}") from None
    finally:
        client.close()


def _selected_providers(raw: str | None, registry: Registry) -> list[str]:
    known = registry.ids()
    if raw is None or raw.strip() == "all":
        return list(known)
    wanted = [p.strip() for p in raw.split(",") if p.strip()]
    unknown = [p for p in wanted if p not in known]
    if unknown or not wanted:
        raise setup_error(
            f"unknown provider {', '.join(unknown) or '(none given)'}; known providers: {', '.join(known)}"
        )
    return wanted


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "provider_id" in metafunc.fixturenames:
        providers = metafunc.config.stash[PROVIDERS_KEY]
        metafunc.parametrize("provider_id", providers, ids=providers, scope="session")


# ---------------------------------------------------------------- fixtures: registry, mock server
@pytest.fixture(scope="session")
def provcert_registry(pytestconfig: pytest.Config) -> Registry:
    return pytestconfig.stash[REGISTRY_KEY]


@pytest.fixture(scope="session")
def mock_client(pytestconfig: pytest.Config) -> Iterator[MockClient]:
    """The mock server's admin client: the embedded server by default, or the one given with --mock-url."""
    url = pytestconfig.getoption("mock_url")
    if url:
        client = MockClient(url)
        try:
            client.health()
        except (httpx.HTTPError, RuntimeError) as exc:
            raise pytest.UsageError(f"--mock-url {url} is not a provcert mock server: {exc}") from None
        yield client
        client.close()
        return
    from mockserver.testing import MockServer

    with MockServer() as server:
        client = MockClient(server.url)
        yield client
        client.close()


@pytest.fixture
def mock(mock_client: MockClient) -> Iterator[MockSession]:
    """A fresh, isolated mock session for one test; its journal is attached to the report when the test fails."""
    session = MockSession(mock_client, mock_client.new_session())
    yield session
    mock_client.clear(session.id)


def _attach_journal(session: MockSession) -> None:
    try:
        entries = session.journal()
    except Exception as exc:  # the report must not hide the original failure
        allure.attach(f"could not read the journal: {exc}", "journal", allure.attachment_type.TEXT)
        return
    allure.attach(json.dumps(entries, indent=2, default=str), "mock journal", allure.attachment_type.JSON)
    for entry in entries:
        wire = entry.get("wire")
        if wire:
            allure.attach(
                wire, f"wire bytes #{entry.get('seq')} ({entry.get('path')})", allure.attachment_type.TEXT
            )


# ---------------------------------------------------------------- fixtures: the adapter under test
@pytest.fixture
def entry(provcert_registry: Registry, provider_id: str) -> ProviderEntry:
    return provcert_registry.get(provider_id)


class FakeCredentials:
    """Serves a fake key for any credential_ref, as a real resolver would: at call time, so it can rotate."""

    def __init__(self, provider_id: str) -> None:
        self.provider_id = provider_id
        self.resolved: list[str] = []
        self.rotate()

    def rotate(self) -> str:
        self.current = f"sk-provcert-FAKE-{self.provider_id}-{secrets.token_hex(12)}"
        register_secret(self.current)
        return self.current

    async def resolve(self, ref: str) -> str:
        self.resolved.append(ref)
        return self.current


@pytest.fixture
def credentials(provider_id: str) -> FakeCredentials:
    return FakeCredentials(provider_id)


#: Short bounds so the timeout checks never really wait long; the ratios to the mock's delays are what matters.
SUITE_TIMEOUTS = Timeouts(connect=2.0, read=5.0, stream_idle=5.0)


class AdapterFactory:
    """Builds adapters for the entry under test, all pointed at the mock and recording every URL they request."""

    def __init__(
        self, entry: ProviderEntry, base_url: str, session: MockSession, credentials: FakeCredentials
    ):
        self.entry = entry
        self.base_url = base_url
        self.session = session
        self.credentials = credentials
        self.requested_urls: list[str] = []
        self._made: list[tuple[Adapter, httpx.AsyncClient]] = []

    async def _record(self, request: httpx.Request) -> None:
        self.requested_urls.append(str(request.url))

    def __call__(
        self,
        *,
        timeouts: Timeouts | None = None,
        base_url: str | None = None,
        entry: ProviderEntry | None = None,
        headers: dict[str, str] | None = None,
    ) -> Adapter:
        entry = entry or self.entry
        client = httpx.AsyncClient(
            verify=shared_ssl_context(),
            headers={**self.session.headers, **(headers or {})},
            event_hooks={"request": [self._record]},
            trust_env=False,
        )
        cls = load_adapter_class(entry)
        adapter = cls(
            entry,
            base_url=base_url or self.base_url,
            http_client=client,
            credentials=self.credentials,  # type: ignore[arg-type]
            timeouts=timeouts or SUITE_TIMEOUTS,
        )
        self._made.append((adapter, client))
        return adapter

    async def aclose(self) -> None:
        for adapter, client in self._made:
            await adapter.aclose()
            await client.aclose()


@pytest_asyncio.fixture
async def make_adapter(
    entry: ProviderEntry, mock: MockSession, credentials: FakeCredentials
) -> AsyncIterator[AdapterFactory]:
    factory = AdapterFactory(entry, mock.client.url + entry.mock_path, mock, credentials)
    yield factory
    await factory.aclose()


@pytest_asyncio.fixture
async def adapter(make_adapter: AdapterFactory) -> Adapter:
    return make_adapter()


# ---------------------------------------------------------------- fixtures: gateway and telemetry
class RecordingSleep:
    """Stands in for asyncio.sleep in the gateway: records each requested delay and yields without waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


@pytest.fixture
def span_exporter() -> Any:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    return InMemorySpanExporter()


@pytest.fixture
def tracer_provider(span_exporter: Any) -> Any:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    return provider


@pytest.fixture
def gateway_sleep() -> RecordingSleep:
    return RecordingSleep()


def gate_open(entry: ProviderEntry) -> ProviderEntry:
    """The entry with its rollout gate open and its fallbacks cut: a provider registered disabled, as a canary or
    at a percentage certifies on its merits; only REG-ROLLOUT and RTY-FALLBACK apply a gate, on purpose."""
    return entry.model_copy(
        update={
            "rollout": entry.rollout.model_copy(update={"status": "enabled", "percentage": 100}),
            "fallback": (),
        }
    )


@pytest.fixture
def make_gateway(
    provcert_registry: Registry, tracer_provider: Any, gateway_sleep: RecordingSleep, entry: ProviderEntry
) -> Callable[..., Any]:
    """Gateways over given adapters; by default over a registry where the provider under test is gate-open."""
    from adapters.gateway import Gateway

    isolated = provcert_registry.with_entries(gate_open(entry))

    def build(adapters: dict[str, Adapter], registry: Registry | None = None, seed: int = 7) -> Gateway:
        return Gateway(
            registry or isolated,
            adapters,
            tracer_provider=tracer_provider,
            sleep=gateway_sleep,
            rng=random.Random(seed),
        )

    return build


@pytest.fixture
def gateway(
    make_gateway: Callable[..., Any], adapter: Adapter, entry: ProviderEntry, provcert_registry: Registry
) -> Any:
    """A gateway over the adapter under test alone, gate open and fallbacks cut, so retries and telemetry are the
    adapter's own (RTY-FALLBACK and REG-ROLLOUT build their own chains)."""
    return make_gateway({entry.provider_id: adapter})


@dataclass
class FallbackChain:
    """The provider under test as a primary with one fallback (a copy of it, served by its own mock session)."""

    gateway: Any
    primary: ProviderEntry
    fallback: ProviderEntry
    fallback_session: str
    client: MockClient

    def fallback_journal(self) -> list[dict[str, Any]]:
        return self.client.journal(self.fallback_session)


@pytest.fixture
def fallback_chain(
    make_gateway: Callable[..., Any],
    make_adapter: AdapterFactory,
    mock_client: MockClient,
    provcert_registry: Registry,
    entry: ProviderEntry,
) -> Iterator[Callable[[dict[str, Any] | None], FallbackChain]]:
    """Builds a primary -> fallback chain through the gateway. ``rollout`` (fields of the primary's rollout) applies
    a gate to the primary; without it the primary is gate-open. The fallback answers "ok" to anything."""
    sessions: list[str] = []

    def build(rollout: dict[str, Any] | None) -> FallbackChain:
        fallback = gate_open(entry).model_copy(update={"provider_id": f"{entry.provider_id}-fallback"})
        primary = gate_open(entry).model_copy(update={"fallback": (fallback.provider_id,)})
        if rollout is not None:
            primary = primary.model_copy(update={"rollout": entry.rollout.model_copy(update=rollout)})
        session = mock_client.new_session("fallback")
        sessions.append(session)
        mock_client.queue(session, {"preset": "ok", "times": 1000})
        gateway = make_gateway(
            {
                primary.provider_id: make_adapter(entry=primary),
                fallback.provider_id: make_adapter(entry=fallback, headers={"x-mock-session": session}),
            },
            registry=provcert_registry.with_entries(primary, fallback),
        )
        return FallbackChain(gateway, primary, fallback, session, mock_client)

    yield build
    for session in sessions:
        mock_client.clear(session)


# ---------------------------------------------------------------- labels, results, certificate
@pytest.fixture(autouse=True)
def _provcert_labels(request: pytest.FixtureRequest) -> None:
    callspec = getattr(request.node, "callspec", None)
    provider = callspec.params.get("provider_id") if callspec else None
    if provider and request.node.get_closest_marker("dod"):
        allure.dynamic.parent_suite(provider)
        allure.dynamic.suite(Path(str(request.node.fspath)).stem)
        allure.dynamic.tag(provider)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Evidence recorded from here (fixtures included) to the end of the call belongs to this test."""
    begin_evidence()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    yield  # raises when the test failed or was skipped: nothing more to say then
    if item.get_closest_marker("dod") and not recorded_evidence():
        # a pass that says nothing of what it verified is shown as such in Allure (as in the certificate)
        with allure.step(NO_EVIDENCE):
            pass


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    if report.when == "call":
        lines = take_evidence()
        if lines:  # travels with the report, so it reaches the xdist controller too
            report.user_properties.append((EVIDENCE_PROPERTY, lines))
    session = getattr(item, "funcargs", {}).get("mock")
    if report.when == "call" and report.failed and isinstance(session, MockSession):
        # attached now, while the test (not a fixture teardown) is allure's current step
        _attach_journal(session)
    marker = item.get_closest_marker("dod")
    provider = _provider_of(item)
    if marker and provider:
        # recorded from pytest_runtest_logreport, which also runs on the xdist controller
        report.user_properties.append((DOD_PROPERTY, (provider, marker.args[0])))
    return report


def _provider_of(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    provider = callspec.params.get("provider_id") if callspec else None
    return provider if isinstance(provider, str) else None


def _counts(collector: ResultCollector, provider: str) -> dict[str, int]:
    verdicts = collector.verdicts(provider, CHECKS)
    return {
        s: sum(1 for v in verdicts.values() if v.status == s)
        for s in ("pass", "fail", "not applicable", "not run")
    }


def _verdict(counts: dict[str, int]) -> str:
    if counts["fail"]:
        return "NOT CERTIFIED"
    return f"INCOMPLETE ({counts['not run']} checks not run)" if counts["not run"] else "CERTIFIED"


class CertificationRun:
    """Per-run hooks that need the config: recording verdicts, and a progress line as each provider completes.

    Verdicts are recorded from ``pytest_runtest_logreport``, which also runs on the xdist controller (the report
    carries its provider and check id in ``user_properties``). Progress counts each provider's collected checks
    down and prints one line when the last of them finishes: between pytest's own lines, after its progress
    percentage, never inside them; the last provider's line is the summary's. (Under xdist the controller
    collects nothing, so it prints no progress; the summary still comes.)
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.collector = config.stash[COLLECTOR_KEY]
        self.pending: dict[str, set[str]] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        evidence = [
            str(line)
            for name, value in report.user_properties
            if name == EVIDENCE_PROPERTY and isinstance(value, tuple | list)
            for line in value
        ]
        for name, value in report.user_properties:
            if name == DOD_PROPERTY and isinstance(value, tuple | list) and len(value) == 2:
                provider, check_id = (str(v) for v in value)
                self.collector.record(provider, check_id, report.nodeid, report, evidence=evidence)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.pending = {}
        for item in session.items:
            provider = _provider_of(item)
            if provider and item.get_closest_marker("dod"):
                self.pending.setdefault(provider, set()).add(item.nodeid)

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        for provider, nodeids in self.pending.items():
            if nodeid in nodeids:
                nodeids.discard(nodeid)
                if not nodeids:
                    self._provider_done(provider)
                return

    def _provider_done(self, provider: str) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        done = sum(1 for ids in self.pending.values() if not ids)
        if reporter is None or done == len(self.pending):
            return  # after the last provider, the per-provider summary follows at once
        if self.config.option.verbose <= 0:
            # close pytest's line of dots as pytest would ("... [ 50%]"), then let it start afresh after ours
            fill = getattr(reporter, "_write_progress_information_filling_space", None)
            if (
                reporter.currentfspath is not None
                and getattr(reporter, "_show_progress_info", False)
                and callable(fill)
            ):
                fill()
            reporter.currentfspath = None
            if getattr(getattr(reporter, "_tw", None), "width_of_current_line", 0):
                reporter.line("")
        c = _counts(self.collector, provider)
        reporter.ensure_newline()
        reporter.write_line(
            f"provcert: {provider} checked ({done}/{len(self.pending)} providers): {c['pass']} passed, "
            f"{c['fail']} failed, {c['not applicable']} not applicable",
            bold=True,
            red=bool(c["fail"]),
            green=not c["fail"],
        )


# ---------------------------------------------------------------- the end of the run: reports on disk, exit code
@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    collector = config.stash[COLLECTOR_KEY]
    if not collector.providers() or _is_xdist_worker(config):
        return
    from harness.publish import publish_run

    outputs = publish_run(
        collector,
        reports=Path(config.getoption("reports_dir")),
        registry=config.stash[REGISTRY_KEY],
        mock_url=config.getoption("mock_url"),
        # live checks run only with --live *and* CERTIFY_LIVE=1 (harness.golden_plugin)
        live=bool(getattr(config.option, "live", False)) and os.environ.get("CERTIFY_LIVE") == "1",
        staging=config.stash[STAGING_KEY],
        allure_cli=config.stash[ALLURE_CLI_KEY],
        # the run's own spend ledger (None unless live was requested): "live" only when it holds sent calls
        ledger=config.stash.get(LEDGER_KEY, None),
        live_upstream=getattr(config.option, "live_upstream", None),
        cassettes=Path(raw) if (raw := getattr(config.option, "cassettes_dir", None)) else None,
        cwd=config.invocation_params.dir,
    )
    config.stash[OUTPUTS_KEY].update(outputs)
    # CI gates on the exit code: any failed applicable check fails the run (an xfail-ed check too); a check that
    # is not applicable, or not run, never does.
    if collector.failed(CHECKS) and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if outputs.get("html_errors") and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.INTERNAL_ERROR


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    collector = config.stash.get(COLLECTOR_KEY, None)
    if collector is None or not collector.providers() or _is_xdist_worker(config):
        return
    reports = Path(config.getoption("reports_dir"))
    outputs = config.stash.get(OUTPUTS_KEY, {})
    html: dict[str, Path | str] = outputs.get("html", {})
    terminalreporter.section("provcert certification")
    for provider in collector.providers():
        counts = _counts(collector, provider)
        verdict = _verdict(counts)
        terminalreporter.write_line(
            f"{provider}: {verdict} - {counts['pass']} passed, {counts['fail']} failed, "
            f"{counts['not applicable']} not applicable -> {reports / provider / 'certificate.md'}",
            green=counts["fail"] == 0,
            red=counts["fail"] > 0,
        )
        if isinstance(html.get(provider), Path):
            terminalreporter.write_line(f"    Allure HTML: {html[provider]}")
        elif provider in html:
            terminalreporter.write_line(f"    Allure HTML not generated: {html[provider]}", red=True)
    matrix = outputs.get("matrix")
    if matrix is not None:
        fleet = matrix["fleet"]
        terminalreporter.write_line(
            f"matrix ({fleet['providers']} provider{'' if fleet['providers'] == 1 else 's'} on disk: "
            f"{fleet['certified']} certified, "
            f"{fleet['not certified']} not certified, {fleet['incomplete']} incomplete) -> {reports / 'matrix.md'}"
        )
        for item in matrix["skipped"]:
            terminalreporter.write_line(
                f"    left out of the matrix: {item['path']}: {item['reason']}", yellow=True
            )
