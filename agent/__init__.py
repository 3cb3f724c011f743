"""The LangChain agent: one concept per file (protocol, prompts, state, tools wiring, graph, guard)."""
