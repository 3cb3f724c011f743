"""Gradio 6 UI: chat (streaming, tool steps, sources), discount estimator, product search, model/data card.

API endpoints (``gradio_client`` and MCP tools): ``chat``, ``answer_question``, ``predict_discount``,
``search_products``. Everything reads components from a :class:`serving.runtime.Runtime`, so the UI renders
immediately and shows "warming up" until the models are loaded.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Iterator

import gradio as gr
import pandas as pd

from agent.protocol import fmt_number, fmt_pct, fmt_price
from core.errors import MDIError, ModelUnavailableError, ValidationError
from serving.runtime import Runtime

log = logging.getLogger(__name__)

EXAMPLES = [
    "Show me smartwatches under ₹3,000 rated 4 or more",
    "What do customers say about the Auralis Plus 950 smartwatch?",
    "What discount would a smartwatch priced at ₹2,499 with a 4.1 rating and 3,200 ratings get?",
    "Why would a USB cable at ₹599 rated 4.3 with 1,200 ratings get that discount?",
    "Which category has the highest average discount?",
    "How many products does each brand have?",
]
SORTS = ["relevance", "rating", "price_low", "price_high", "discount"]


def _error_text(exc: Exception) -> str:
    if isinstance(exc, ModelUnavailableError):
        return f"⏳ {exc.message}. Please try again in a few seconds."
    if isinstance(exc, ValidationError):
        fields = exc.required_fields + [f"{k}: {v}" for k, v in exc.invalid_fields.items()]
        return f"⚠️ {exc.message}" + (f" ({'; '.join(fields)})" if fields else "")
    if isinstance(exc, MDIError):
        return f"⚠️ {exc.message}"
    log.exception("UI handler failed")
    return "⚠️ Sorry, something went wrong. Please try again."


def sources_markdown(sources: list[dict[str, Any]]) -> str:
    """The sources table shown under an answer (product, price, rating, score)."""
    if not sources:
        return ""
    lines = ["| # | Product | Price | Rating | Score |", "|---|---|---|---|---|"]
    for i, s in enumerate(sources, start=1):
        name = str(s.get("product_name", "?")).replace("|", "/")
        if len(name) > 80:
            name = name[:77] + "..."
        price = fmt_price(s.get("discounted_price"))
        if s.get("actual_price") is not None:
            price += f" (list {fmt_price(s['actual_price'])})"
        score = s.get("score")
        lines.append(f"| {i} | {name} `{s.get('product_id', '')}` | {price} | {fmt_number(s.get('rating'))} | "
                     f"{'' if score is None else f'{float(score):.3f}'} |")
    return "\n".join(lines)


def _footer(answer: Any) -> str:
    label = "model" if answer.path == "model" else f"fallback ({answer.fallback_reason})"
    grounded = "grounded in tool results" if answer.grounded else "NOT grounded"
    return f"\n\n<sub>path: {label} · {grounded} · {answer.seconds:.1f}s</sub>"


# ------------------------------------------------------------------------------------------------- handlers
class Handlers:
    """The UI's functions over a runtime (plain methods: unit-testable without a browser)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    # chat -----------------------------------------------------------------------------------------------
    def chat(self, message: str, history: list[dict[str, Any]], request: gr.Request | None = None
             ) -> Iterator[list[gr.ChatMessage]]:
        """Ask the catalog assistant (streams tool steps, then the answer with its sources)."""
        session_id = getattr(request, "session_hash", None) or None
        try:
            agent = self.runtime.agent()
            messages: list[gr.ChatMessage] = []
            text = ""
            for event in agent.stream(message, session_id=session_id):
                if event.kind == "step" and event.step is not None:
                    step = event.step
                    messages.append(gr.ChatMessage(
                        role="assistant", content=f"```\n{step.rendered[:2000]}\n```",
                        metadata={"title": step.title, "status": "done",
                                  "duration": step.seconds, "id": f"step{len(messages)}"}))
                    yield messages + ([gr.ChatMessage(role="assistant", content=text)] if text else [])
                elif event.kind == "token":
                    text += event.text
                    yield messages + [gr.ChatMessage(role="assistant", content=text)]
                elif event.kind == "reset":
                    text = ""
                    yield messages + [gr.ChatMessage(role="assistant", content="_checking the answer…_")]
                elif event.kind == "final" and event.answer is not None:
                    answer = event.answer
                    body = answer.answer
                    table = sources_markdown(answer.sources)
                    if table:
                        body += "\n\n**Sources**\n\n" + table
                    body += _footer(answer)
                    yield messages + [gr.ChatMessage(role="assistant", content=body)]
        except Exception as exc:  # noqa: BLE001 - shown to the user politely
            yield [gr.ChatMessage(role="assistant", content=_error_text(exc))]

    def answer_question(self, question: str, top_k: int = 5, session_id: str = "") -> dict[str, Any]:
        """Answer a catalog question with the agent. Returns {answer, sources, tool_calls, answer_path, grounded}
        (answer_path: "model" or "fallback").

        Args:
            question: the question in plain language, e.g. "smartwatches under ₹3,000 rated 4+"
            top_k: how many products to return as sources (1-20)
            session_id: optional conversation id; follow-up questions are resolved against its history
        """
        try:
            agent = self.runtime.agent()
            out = agent.answer(question, session_id=session_id or None, top_k=int(top_k)).to_dict()
            # "answer_path", not "path": gradio_client treats any dict with a string "path" as a file to download
            result = {k: out[k] for k in ("answer", "sources", "tool_calls", "grounded", "refused", "fallback_reason")}
            result["answer_path"] = out["path"]
            return result
        except Exception as exc:  # noqa: BLE001
            return {"error": _error_text(exc)}

    # discount -------------------------------------------------------------------------------------------
    def predict_discount(self, category: str, actual_price: float, rating: float, rating_count: float,
                         product_name: str = "") -> tuple[dict[str, Any], pd.DataFrame, str]:
        """Predict a product's discount % and explain it (top SHAP contributions).

        Args:
            category: category path (A|B|C) or leaf category, e.g. "SmartWatches"
            actual_price: list price in ₹
            rating: average star rating (0-5)
            rating_count: number of ratings
            product_name: optional product name
        """
        empty = pd.DataFrame({"feature": [], "contribution": []})
        try:
            from agent.tools import validate_args
            payload = {"category": category, "actual_price": actual_price, "rating": rating,
                       "rating_count": None if rating_count is None else int(rating_count)}
            if product_name and product_name.strip():
                payload["product_name"] = product_name.strip()
            args = validate_args("explain_discount", {k: v for k, v in payload.items() if v not in (None, "")})
            (service,) = self.runtime.require("discount")
            result = service.explain(args)
        except Exception as exc:  # noqa: BLE001
            return {"error": _error_text(exc)}, empty, _error_text(exc)
        frame = pd.DataFrame({"feature": [c["feature"] for c in result.get("contributions", [])],
                              "contribution": [float(c["value"]) for c in result.get("contributions", [])]})
        return result, frame, self.discount_summary(result)

    def discount_summary(self, result: dict[str, Any]) -> str:
        service = self.runtime.get("discount")
        lines = [f"### Predicted discount: {fmt_pct(result.get('predicted_discount_percentage'))}",
                 f"Base (average) discount {fmt_pct(result.get('base_value'))}; the bars show how each "
                 "feature moves the estimate (percentage points).",
                 f"Model version: `{result.get('model_version', getattr(service, 'version', '?'))}`"]
        metrics = _test_metrics(service)
        if metrics:
            lines.append("Test metrics: " + ", ".join(f"{k} {_fmt_metric(v)}" for k, v in metrics.items()))
        return "\n\n".join(lines)

    # search ---------------------------------------------------------------------------------------------
    def search_products(self, query: str, max_price: float | None = None, min_rating: float | None = None,
                        category: str = "", sort_by: str = "relevance", top_k: int = 5
                        ) -> tuple[dict[str, Any], pd.DataFrame]:
        """Search the product catalog with optional filters.

        Args:
            query: what to look for, e.g. "wireless earphones with long battery"
            max_price: only products priced at most this (₹); 0 or empty = no limit
            min_rating: only products rated at least this (0-5); 0 or empty = no limit
            category: only products whose category contains this text
            sort_by: relevance, rating, price_low, price_high or discount
            top_k: how many products (1-20)
        """
        columns = ["product", "price", "list price", "discount", "rating", "ratings", "score", "product_id"]
        try:
            from agent.tools import validate_args
            raw = {"query": query, "max_price": max_price or None, "min_rating": min_rating or None,
                   "category": category or None, "sort_by": sort_by or "relevance", "top_k": int(top_k or 5)}
            args = validate_args("search_products", {k: v for k, v in raw.items() if v is not None})
            (search,) = self.runtime.require("search")
            result = search.search(args)
        except Exception as exc:  # noqa: BLE001
            return {"error": _error_text(exc)}, pd.DataFrame(columns=columns)
        rows = [[h.get("product_name"), h.get("discounted_price"), h.get("actual_price"),
                 h.get("discount_percentage"), h.get("rating"), h.get("rating_count"),
                 round(float(h.get("score") or 0), 4), h.get("product_id")] for h in result.get("results", [])]
        return result, pd.DataFrame(rows, columns=columns)

    # status and card ------------------------------------------------------------------------------------
    def banner(self) -> str:
        info = self.runtime.readiness()
        if info["ready"]:
            return ""
        icon = "⏳" if info["status"] == "warming_up" else "⚠️"
        return f"{icon} **{info['status'].replace('_', ' ')}**: {info['reason']}"

    def model_card(self) -> str:
        """Catalog size, model versions and metrics, adapter, agent path counts."""
        rt = self.runtime
        out = ["## Data"]
        catalog = rt.get("catalog")
        if catalog is not None:
            s = catalog.summary()
            out.append(f"- Catalog: `{Path(str(s['source'])).name}` — {fmt_number(s['products'])} products, "
                       f"{fmt_number(s['rows'])} rows ({fmt_number(s['duplicate_rows'])} duplicate listings), "
                       f"sha256 `{str(s['sha256'])[:12]}`")
            cats = ", ".join(f"{k} ({v})" for k, v in list(s["top_categories"].items())[:6])
            out.append(f"- Top categories: {cats}")
        else:
            out.append(f"- Catalog: {rt.reason('catalog')}")
        out.append("\n## Models")
        for name, label in (("discount", "Discount model"), ("search", "Retrieval index"), ("llm", "Language model")):
            comp = rt.state[name]
            line = f"- **{label}**: " + (f"`{comp.version}`" if comp.status == "ready" else rt.reason(name))
            out.append(line)
            if name == "discount" and comp.status == "ready":
                metrics = _test_metrics(comp.obj)
                if metrics:
                    out.append("  - test metrics: " + ", ".join(f"{k} {_fmt_metric(v)}" for k, v in metrics.items()))
            if name == "llm" and comp.status == "ready":
                card = _adapter_card(comp.obj)
                if card:
                    out.append(f"  - adapter metrics: {card}")
        snap = rt.metrics.snapshot()
        out.append("\n## Agent (this process)")
        out.append(f"- answers: {snap['answers_by_path'] or 'none yet'}; fallback reasons: "
                   f"{snap['fallback_reasons'] or 'none'}; refusals: {snap['refusals'] or 'none'}")
        return "\n".join(out)

    def categories(self) -> list[str]:
        catalog = self.runtime.get("catalog")
        if catalog is None:
            return []
        return sorted(set(catalog.frame["leaf_category"].astype(str)))


def _test_metrics(service: Any) -> dict[str, Any]:
    card = getattr(service, "card", None)
    if callable(card):
        card = card()
    if not isinstance(card, dict):
        return {}
    metrics = card.get("metrics", card)
    test = metrics.get("test") if isinstance(metrics, dict) else None
    if isinstance(test, dict):
        return {k: v for k, v in test.items() if isinstance(v, (int, float))}
    return {k: v for k, v in (metrics or {}).items() if isinstance(v, (int, float))} if isinstance(metrics, dict) else {}


def _fmt_metric(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _adapter_card(llm: Any) -> str:
    adapter = getattr(llm, "adapter", None)
    if not adapter:
        return ""
    folder = Path(str(adapter))
    for name in ("manifest.json", "adapter_card.json", "metrics.json"):
        path = folder / name
        if path.is_file():
            try:
                raw = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            metrics = raw.get("metrics", raw) if isinstance(raw, dict) else {}
            flat = {k: v for k, v in metrics.items() if isinstance(v, (int, float))} if isinstance(metrics, dict) else {}
            return ", ".join(f"{k} {_fmt_metric(v)}" for k, v in list(flat.items())[:8]) or f"see {path}"
    return ""


# ------------------------------------------------------------------------------------------------- layout
def build_ui(runtime: Runtime) -> gr.Blocks:
    """The Gradio Blocks app (mount it with ``gr.mount_gradio_app``)."""
    h = Handlers(runtime)
    with gr.Blocks(title="Marketing Data Intelligence") as demo:
        gr.Markdown("# Marketing Data Intelligence\nAsk about products, reviews, discounts and catalog statistics. "
                    "Every number comes from the catalog tools; each answer says whether the model or the "
                    "grounded fallback wrote it.")
        banner = gr.Markdown(h.banner(), elem_id="status-banner")
        timer = gr.Timer(3.0)
        timer.tick(h.banner, outputs=banner, api_visibility="private", queue=False)

        with gr.Tab("Chat", id="chat"):
            gr.ChatInterface(
                fn=h.chat, chatbot=gr.Chatbot(height=520, label="Catalog assistant", elem_id="chatbot"),
                textbox=gr.Textbox(placeholder="Ask about products, discounts or catalog statistics…",
                                   elem_id="chat-input", submit_btn=True),
                examples=EXAMPLES, run_examples_on_click=True, api_name="chat",
                api_description="Chat with the catalog assistant (streams tool steps and the answer).")

        with gr.Tab("Discount estimator", id="discount"):
            with gr.Row():
                with gr.Column():
                    d_cat = gr.Dropdown(choices=h.categories(), label="Category", allow_custom_value=True,
                                        value="SmartWatches", elem_id="d-category")
                    d_price = gr.Number(label="List price (₹)", value=2499, minimum=0, elem_id="d-price")
                    d_rating = gr.Slider(0, 5, value=4.1, step=0.1, label="Rating", elem_id="d-rating")
                    d_count = gr.Number(label="Number of ratings", value=3200, precision=0, minimum=0,
                                        elem_id="d-count")
                    d_name = gr.Textbox(label="Product name (optional)", elem_id="d-name")
                    d_btn = gr.Button("Estimate discount", variant="primary", elem_id="d-button")
                with gr.Column():
                    d_summary = gr.Markdown(elem_id="d-summary")
                    d_plot = gr.BarPlot(x="feature", y="contribution", title="Feature contributions (points)",
                                        sort="-y", height=300, elem_id="d-plot")
                    d_json = gr.JSON(label="Raw result", open=False)
            d_btn.click(h.predict_discount, inputs=[d_cat, d_price, d_rating, d_count, d_name],
                        outputs=[d_json, d_plot, d_summary], api_name="predict_discount")

        with gr.Tab("Product search", id="search"):
            with gr.Row():
                s_query = gr.Textbox(label="Query", value="smartwatch with calling", scale=3, elem_id="s-query")
                s_cat = gr.Dropdown(choices=[""] + h.categories(), label="Category", value="",
                                    allow_custom_value=True)
            with gr.Row():
                s_max = gr.Number(label="Max price (₹, 0 = any)", value=0, minimum=0)
                s_rating = gr.Slider(0, 5, value=0, step=0.1, label="Min rating")
                s_sort = gr.Dropdown(SORTS, value="relevance", label="Sort by")
                s_k = gr.Slider(1, 20, value=5, step=1, label="Results")
            s_btn = gr.Button("Search", variant="primary", elem_id="s-button")
            s_table = gr.Dataframe(label="Results", interactive=False, wrap=True)
            s_json = gr.JSON(visible=False)
            s_btn.click(h.search_products, inputs=[s_query, s_max, s_rating, s_cat, s_sort, s_k],
                        outputs=[s_json, s_table], api_name="search_products")

        with gr.Tab("Model & data card", id="card"):
            card = gr.Markdown(h.model_card())
            refresh = gr.Button("Refresh")
            refresh.click(h.model_card, outputs=card, api_visibility="private")
            demo.load(h.model_card, outputs=card, api_visibility="private")

        # API-only endpoint (gradio_client / MCP): the agent's structured answer.
        gr.api(h.answer_question, api_name="answer_question")
        demo.load(h.banner, outputs=banner, api_visibility="private", queue=False)

        def _refresh_choices():
            cats = h.categories()
            return gr.Dropdown(choices=cats), gr.Dropdown(choices=[""] + cats)

        demo.load(_refresh_choices, outputs=[d_cat, s_cat], api_visibility="private", queue=False)
    return demo
