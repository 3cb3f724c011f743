"""Gradio UI: handler functions (fast) and, against a live server on 127.0.0.1, the gradio_client API endpoints
(chat, answer_question, predict_discount, search_products) and the MCP server (slow)."""
from __future__ import annotations

import asyncio
import threading
import time

import gradio as gr
import pytest

from agent.fakes import FormulaDiscount, fake_components
from app import AppSettings, create_app
from serving.runtime import Runtime
from serving.server import BackgroundServer
from serving.ui import Handlers, build_ui, sources_markdown


@pytest.fixture(scope="module")
def handlers(demo_catalog):
    return Handlers(Runtime(AppSettings(), components=fake_components(demo_catalog)))


def test_chat_streams_tool_steps_then_answer_with_sources(handlers):
    outputs = list(handlers.chat("Auralis smartwatch with calling", []))
    final = outputs[-1]
    assert len(outputs) > 2  # streamed
    step, answer = final[0], final[-1]
    assert isinstance(step, gr.ChatMessage) and step.metadata["title"].startswith("🛠️ search_products(")
    assert "Auralis Plus 950" in step.content
    assert "**Sources**" in answer.content and "| # | Product | Price | Rating | Score |" in answer.content
    assert "B05PFZBLUL" in answer.content and "path: model" in answer.content


def test_chat_while_warming_up_says_so(demo_catalog):
    comps = {k: v for k, v in fake_components(demo_catalog).items() if k != "llm"}
    h = Handlers(Runtime(AppSettings(), components=comps))
    (messages,) = list(h.chat("kettles", []))
    assert "warming up" in messages[0].content
    assert "warming up" in h.banner() and "language model" in h.banner()


def test_discount_and_search_handlers(handlers):
    result, frame, summary = handlers.predict_discount("SmartWatches", 2499, 4.1, 3200, "")
    assert result["model_version"] == "formula-fake-1" and list(frame.columns) == ["feature", "contribution"]
    assert len(frame) == len(result["contributions"]) and "Predicted discount: " in summary and "mae" in summary
    result, frame, summary = handlers.predict_discount("SmartWatches", -5, 4.1, None, "")
    assert "error" in result and frame.empty and "actual_price" in summary
    result, table = handlers.search_products("electric kettle", 1500, 4.0, "", "price_low", 3)
    assert 0 < len(table) <= 3 and (table["price"] <= 1500).all() and (table["rating"] >= 4.0).all()
    assert list(table["price"]) == sorted(table["price"])


def test_model_card_and_api_dict(handlers):
    card = handlers.model_card()
    assert "320 products" in card and "formula-fake-1" in card and "mae 1.230" in card
    out = handlers.answer_question("Auralis smartwatch with calling", 2, "")
    assert out["answer_path"] == "model" and len(out["sources"]) == 2 and "path" not in out
    assert sources_markdown([]) == ""


def test_blocks_declare_the_api_names(handlers):
    demo = build_ui(handlers.runtime)
    names = {d.api_name for d in demo.fns.values() if getattr(d, "api_name", None)}
    assert {"chat", "predict_discount", "search_products", "answer_question"} <= names


# ------------------------------------------------------------------------------------------ live server
@pytest.fixture(scope="module")
def live_server(demo_catalog):
    release = threading.Event()

    def slow_discount(_rt):  # the discount model "warms up" until the test releases it
        release.wait(30)
        return FormulaDiscount()

    comps = {k: v for k, v in fake_components(demo_catalog).items() if k != "discount"}
    app = create_app(AppSettings(), components=comps, loaders={"discount": slow_discount})
    with BackgroundServer(app) as server:
        server.release = release
        yield server
    release.set()


@pytest.mark.slow
def test_gradio_client_endpoints(live_server):
    import httpx
    from gradio_client import Client

    assert httpx.get(live_server.url + "/ready").status_code == 503  # warming up, but serving
    client = Client(live_server.url + "/ui/", verbose=False)
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/chat", "/predict_discount", "/search_products", "/answer_question"} <= set(api)

    result, _plot, summary = client.predict("SmartWatches", 2499, 4.1, 3200, "", api_name="/predict_discount")
    assert "warming up" in summary and "error" in result
    live_server.release.set()
    for _ in range(100):
        if httpx.get(live_server.url + "/ready").status_code == 200:
            break
        time.sleep(0.05)
    result, plot, summary = client.predict("SmartWatches", 2499, 4.1, 3200, "", api_name="/predict_discount")
    assert result["model_version"] == "formula-fake-1" and "Predicted discount" in summary

    result, table = client.predict("electric kettle", 1500, 4, "", "price_low", 3, api_name="/search_products")
    assert 0 < len(result["results"]) <= 3
    assert all(r["discounted_price"] <= 1500 and r["rating"] >= 4 for r in result["results"])

    out = client.predict("Auralis smartwatch with calling", 3, "sess-1", api_name="/answer_question")
    assert out["answer_path"] == "model" and out["sources"][0]["product_id"] == "B05PFZBLUL"
    assert out["tool_calls"][0]["name"] == "search_products"

    messages = client.predict("Auralis smartwatch with calling", api_name="/chat")
    assert messages[0]["metadata"]["title"].startswith("🛠️ search_products(")
    assert "Sources" in messages[-1]["content"]


@pytest.mark.slow
def test_mcp_server_lists_and_calls_tools(live_server):
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    live_server.release.set()

    async def run():
        async with streamablehttp_client(live_server.url + "/ui/gradio_api/mcp/") as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = {t.name for t in (await session.list_tools()).tools}
                res = await session.call_tool("answer_question", {"question": "Auralis smartwatch with calling",
                                                                  "top_k": 2, "session_id": ""})
                return tools, res

    tools, res = asyncio.run(run())
    assert {"chat", "predict_discount", "search_products", "answer_question"} <= tools
    text = res.content[0].text
    assert "B05PFZBLUL" in text and "search_products" in text
