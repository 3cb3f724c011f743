"""The agent's tools: plain typed functions (one list, :data:`TOOL_FUNCTIONS`) bound to the loaded services, and
their LangChain ``StructuredTool`` form with ``args_schema`` from :mod:`tools.specs`.

Each function takes the services and the validated argument model and returns the JSON-able result documented on
the argument model. A service that is not loaded raises :class:`~core.errors.ModelUnavailableError`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

import pandas as pd
from pydantic import ValidationError as PydanticValidationError

from core.errors import ModelUnavailableError, ValidationError
from tools.specs import TOOL_ARGS, CatalogStatsArgs, ExplainDiscountArgs, PredictDiscountArgs, SearchProductsArgs


class SearchService(Protocol):
    def search(self, args: SearchProductsArgs) -> dict[str, Any]: ...


class DiscountServiceLike(Protocol):
    version: str

    def predict(self, args: PredictDiscountArgs) -> dict[str, Any]: ...

    def explain(self, args: ExplainDiscountArgs) -> dict[str, Any]: ...


@dataclass
class AgentServices:
    """The loaded components the tools call (any may be None while warming up or when missing)."""

    search: SearchService | None = None
    discount: DiscountServiceLike | None = None
    catalog_frame: pd.DataFrame | None = None


def search_products(services: AgentServices, args: SearchProductsArgs) -> dict[str, Any]:
    """Find catalog products matching a free-text description, with optional price/rating/category filters."""
    if services.search is None:
        raise ModelUnavailableError("the product search index is not loaded")
    return services.search.search(args)


def predict_discount(services: AgentServices, args: PredictDiscountArgs) -> dict[str, Any]:
    """Estimate the discount percentage for a product from its category, list price, rating and rating count."""
    if services.discount is None:
        raise ModelUnavailableError("the discount model is not loaded")
    return services.discount.predict(args)


def explain_discount(services: AgentServices, args: ExplainDiscountArgs) -> dict[str, Any]:
    """Explain a discount estimate: base value plus the top-5 feature contributions (TreeSHAP)."""
    if services.discount is None:
        raise ModelUnavailableError("the discount model is not loaded")
    return services.discount.explain(args)


def catalog_stats(services: AgentServices, args: CatalogStatsArgs) -> dict[str, Any]:
    """Counts, averages and top-N groups (category, brand, price band) over the loaded catalog."""
    if services.catalog_frame is None:
        raise ModelUnavailableError("the catalog is not loaded")
    from tools.analytics import catalog_stats as compute
    return compute(services.catalog_frame, args)


#: THE list of agent tools (name = function name; argument model = ``tools.specs.TOOL_ARGS[name]``).
TOOL_FUNCTIONS: list[Callable[[AgentServices, Any], dict[str, Any]]] = [
    search_products, predict_discount, explain_discount, catalog_stats,
]


def validate_args(name: str, arguments: dict[str, Any]):
    """Validate raw tool arguments against the contract. Raises ValidationError naming the bad fields."""
    model = TOOL_ARGS.get(name)
    if model is None:
        raise ValidationError(f"unknown tool {name!r}", invalid_fields={"name": f"unknown tool {name!r}"})
    try:
        return model.model_validate(arguments)
    except PydanticValidationError as exc:
        required, invalid = [], {}
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "arguments"
            if err["type"] == "missing":
                required.append(field)
            else:
                invalid[field] = err["msg"]
        raise ValidationError(f"invalid arguments for {name}", required_fields=required,
                              invalid_fields=invalid) from exc


class AgentTools:
    """The tool functions bound to one set of services."""

    def __init__(self, services: AgentServices) -> None:
        self.services = services
        self._by_name = {fn.__name__: fn for fn in TOOL_FUNCTIONS}

    @property
    def names(self) -> list[str]:
        return list(self._by_name)

    def call(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """Validate ``arguments`` and run tool ``name`` (ValidationError / ModelUnavailableError propagate)."""
        args = validate_args(name, arguments)
        return self._by_name[name](self.services, args)

    def as_langchain(self) -> list[Any]:
        """LangChain ``StructuredTool``s (same functions, ``args_schema`` from the contracts)."""
        from langchain_core.tools import StructuredTool

        out = []
        for fn in TOOL_FUNCTIONS:
            model = TOOL_ARGS[fn.__name__]

            def run(_fn=fn, _model=model, **kwargs: Any) -> dict[str, Any]:
                return _fn(self.services, _model(**kwargs))

            out.append(StructuredTool.from_function(
                func=run, name=fn.__name__,
                description=(fn.__doc__ or "").strip(), args_schema=model))
        return out


def build_tools(search: SearchService | None = None, discount: DiscountServiceLike | None = None,
                catalog_frame: pd.DataFrame | None = None) -> AgentTools:
    """Bind the tool functions to loaded services."""
    return AgentTools(AgentServices(search=search, discount=discount, catalog_frame=catalog_frame))
