"""Domain tools: the discount model, product retrieval and catalog analytics.

Each tool the agent can call is a plain typed function with a docstring; their argument contracts live in
:mod:`tools.specs` and the list the agent uses is assembled in :mod:`agent.tools`.
"""
