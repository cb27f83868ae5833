"""``azinfer prices --refresh``: the Azure Retail Prices API's answer, served on loopback, becomes a price table."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from azinfer import AzureError, plan_project
from azinfer.cli import main
from azinfer.plan.cost import load_prices, shipped_prices
from azinfer.retail_prices import fetch_price_table, write_price_table
from azinfer.testing import write_project

ANSWER = json.loads((Path(__file__).parent / "data" / "retail_prices" / "container-apps-eastus.json").read_text())
BASE = json.loads((Path(__file__).resolve().parent.parent / "azinfer" / "data" / "prices.json").read_text())


@pytest.fixture()
def api() -> Iterator[tuple[str, list[dict[str, list[str]]]]]:
    """The two recorded pages on 127.0.0.1; the first page's NextPageLink points at the second."""
    queries: list[dict[str, list[str]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            url = urlsplit(self.path)
            queries.append(parse_qs(url.query))
            if url.path == "/broken":
                self.send_response(503)
                self.end_headers()
                return
            page: dict[str, Any] = dict(ANSWER["pages"][1 if url.path == "/next" else 0])
            if page["NextPageLink"]:
                page["NextPageLink"] = f"http://127.0.0.1:{self.server.server_port}/next?skip=100"
            body = json.dumps(page).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/api/retail/prices", queries
    finally:
        server.shutdown()
        thread.join(timeout=10)


def test_refresh_reads_every_page_and_picks_the_newest_consumption_price(api: Any) -> None:
    url, queries = api
    table, missing = fetch_price_table("eastus", "USD", BASE, endpoint=url, timeout=10, today=date(2026, 12, 4))
    assert len(queries) == 2
    assert "serviceName eq 'Azure Container Apps' and armRegionName eq 'eastus'" in queries[0]["$filter"][0]
    assert queries[0]["currencyCode"] == ["USD"]
    figures = table["figures"]
    assert figures["serverlessA100GpuSecond"]["unitPrice"] == 0.000688  # the newer of two prices
    assert figures["serverlessT4GpuSecond"]["unitPrice"] == 0.000095  # the reservation price is not taken
    assert figures["consumptionVcpuSecond"]["unitPrice"] == 0.000024  # active, not idle
    assert not figures["consumptionGibSecond"]["estimate"] and table["date"] == "2026-12-04"
    # No dedicated A100 meter in the answer: the refreshed table's figure is kept, still an estimate.
    assert missing == ["dedicatedA100InstanceHour"]
    assert figures["dedicatedA100InstanceHour"] == BASE["figures"]["dedicatedA100InstanceHour"]


def test_the_written_table_is_one_plan_reads(api: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url, _ = api
    out = tmp_path / "prices.json"
    assert main(["prices", "--refresh", "--endpoint", url, "--out", str(out)]) == 0
    assert "kept from the table refreshed" in capsys.readouterr().err
    table = load_prices(out)
    assert table.figures["serverlessA100GpuSecond"].estimate is False
    plan = plan_project(write_project(tmp_path / "p"), prices=table)
    assert plan.cost is not None and plan.cost.table.source.startswith(str(out))
    assert main(["plan", str(tmp_path / "p"), "--offline", "--prices", str(out)]) == 0
    assert "Azure Retail Prices API" in capsys.readouterr().out


def test_a_failing_api_is_an_azure_error_and_writes_nothing(api: Any, tmp_path: Path) -> None:
    url, _ = api
    with pytest.raises(AzureError, match="Retail Prices API"):
        fetch_price_table("eastus", "USD", BASE, endpoint=url.replace("/api/retail/prices", "/broken"), timeout=10)
    assert main(["prices", "--refresh", "--endpoint", url.replace("/api/retail/prices", "/broken"),
                 "--out", str(tmp_path / "p.json")]) == 1
    assert not (tmp_path / "p.json").exists()


def test_a_table_is_written_whole(tmp_path: Path) -> None:
    path = write_price_table(tmp_path / "t.json", BASE)
    assert json.loads(path.read_text()) == BASE
    assert [p.name for p in tmp_path.iterdir()] == ["t.json"]  # no temporary file left behind
    assert shipped_prices().currency == "USD"
