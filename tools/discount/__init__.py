"""XGBoost discount model: features, training/evaluation, artifact, service and CLI.

Public API (import from the submodules; nothing heavy is imported here):

* ``tools.discount.service``: ``load_discount_service(model_dir) -> DiscountService`` (``predict``, ``explain``,
  ``predict_frame``, ``version``, ``metrics``, ``card``, ``metadata``), ``parse_discount_request(payload)``.
* ``tools.discount.build``: ``ensure_discount_model(catalog, out_dir, force) -> str``.
* ``tools.discount.artifact``: ``load_artifact``, ``bin_shares`` (drift binning), ``SCHEMA_VERSION``.
* CLI: ``python -m tools.discount train|evaluate|predict``.
"""
