"""The one client for OpenAI-compatible ``/chat/completions`` servers.

The synthetic-data expander and the LLM judge both call such servers. They share the
transport (``transport``), the retry loop and its one error type (``client``) and the reply
cache (``cache``); each keeps only its own policy on top (the expander's call log and cost,
the judge's JSON mode and circuit breaker).
"""
